"""First paint of the customer list: run deferred start-up work after it, and the benchmark
hook that reports it.

Why defer: an agent waits for rows on screen; the Today list, follow-up reminders, status-bar
figures and similar are not needed for that first frame, so they run right after it.
The benchmark measures from process creation (psutil), not from `main()`, so interpreter
start-up and imports count — that is what an agent waits for.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QTableView

log = logging.getLogger(__name__)


class StartupTimer:
    """Milliseconds per start-up phase, logged once the first frame is up (support and the
    first-paint budget need to know where start-up time goes)."""

    def __init__(self) -> None:
        self._t0 = self._last = time.perf_counter()
        self.phases: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = round((now - self._last) * 1000, 1)
        self._last = now

    def report(self) -> None:
        self.mark("first paint")
        total = round((self._last - self._t0) * 1000, 1)
        log.info("start-up %.0f ms after main(): %s", total,
                 ", ".join(f"{k} {v:.0f}" for k, v in self.phases.items()))


class AfterFirstPaint(QObject):
    """Calls `callback` once, just after `table` has painted (with rows if it has any)."""

    def __init__(self, table: QTableView, callback: Callable[[], None],
                 *, require_rows: bool = False) -> None:
        super().__init__(table)
        self._table = table
        self._callback = callback
        self._require_rows = require_rows
        self._done = False
        table.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (not self._done and event.type() == QEvent.Type.Paint
                and (not self._require_rows or self._table.model().rowCount() > 0)):
            self._done = True
            self._table.viewport().removeEventFilter(self)
            # Run after this paint event has been handled (the rows are on screen).
            QTimer.singleShot(0, self._callback)
        return False


class FirstPaintProbe(QObject):
    """Prints `FIRST_PAINT {"ms": …, "rss_mib": …}` once rows are painted, then quits."""

    def __init__(self, table: QTableView, app: QApplication) -> None:
        super().__init__(table)
        self._app = app
        self._hook = AfterFirstPaint(table, self._report, require_rows=True)

    def _report(self) -> None:
        painted_at = time.time()  # before importing psutil: its import is not start-up
        import psutil

        proc = psutil.Process()
        ms = (painted_at - proc.create_time()) * 1000.0
        rss = proc.memory_info().rss / (1024 * 1024)
        # `epoch` lets the launching process time from its own spawn: psutil's
        # create_time rests on /proc/stat's whole-second boot time (up to 1 s off).
        sys.stdout.write("FIRST_PAINT " + json.dumps({"ms": round(ms, 1),
                                                      "rss_mib": round(rss, 1),
                                                      "epoch": painted_at}) + "\n")
        sys.stdout.flush()
        self._app.quit()
