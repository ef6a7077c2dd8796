"""Rotating log file under the platformdirs log dir (or `--data-dir`/log).

Errors shown to the agent in plain words are logged here with their detail, so support can
read what pjsua2, the server or the disk actually said.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


class _RedactFilter(logging.Filter):
    """Last line of defence: never let a password or token reach the log file."""

    _KEYS = ("password", "passwd", "token", "secret", "authorization")

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage().lower()
        if any(f"{k}=" in msg or f'"{k}":' in msg for k in self._KEYS):
            record.msg = "[redacted: message contained a credential field]"
            record.args = None
        return True


def configure_logging(log_file: Path, level: int = logging.INFO) -> logging.Handler:
    """Attach a rotating handler to the root logger; returns it so callers can detach."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        log_file, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(_RedactFilter())
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(handler)
    return handler
