"""Log records kept in memory until the log file is opened, then written to it in order.

Why: opening the rotating log file imports `logging.handlers` (with socket, pickle and
queue: ~15 ms of CPU), which the first frame on screen does not need. The few records of
the start-up before it are kept here and handed to the file's handler right after the
first frame — with their own times, through the file's filters (credential redaction).
"""

from __future__ import annotations

import logging


class EarlyLog(logging.Handler):
    """Attach to the root logger at start-up; `hand_over` to the real handler later."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def attach(self) -> EarlyLog:
        root = logging.getLogger()
        if root.level > self.level or root.level == logging.NOTSET:
            root.setLevel(self.level)
        root.addHandler(self)
        return self

    def hand_over(self, handler: logging.Handler) -> None:
        """Detach, then pass every kept record to `handler` in the order logged."""
        logging.getLogger().removeHandler(self)
        records, self.records = self.records, []
        for record in records:
            handler.handle(record)
