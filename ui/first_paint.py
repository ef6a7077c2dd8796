"""Benchmark hook: report the first paint of the customer list with rows, then quit.

Measured from process creation (psutil), not from `main()`, so interpreter start-up and
imports count — that is what an agent waits for. Printed as one JSON line on stdout.
"""

from __future__ import annotations

import json
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QTableView


class FirstPaintProbe(QObject):
    def __init__(self, table: QTableView, app: QApplication) -> None:
        super().__init__(table)
        self._table = table
        self._app = app
        self._done = False
        table.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (not self._done and event.type() == QEvent.Type.Paint
                and self._table.model().rowCount() > 0):
            self._done = True
            # Report after this paint event has been handled (the rows are on screen).
            QTimer.singleShot(0, self._report)
        return False

    def _report(self) -> None:
        painted_at = time.time()  # before importing psutil: its import is not start-up
        import psutil

        proc = psutil.Process()
        ms = (painted_at - proc.create_time()) * 1000.0
        rss = proc.memory_info().rss / (1024 * 1024)
        sys.stdout.write("FIRST_PAINT " + json.dumps({"ms": round(ms, 1),
                                                      "rss_mib": round(rss, 1)}) + "\n")
        sys.stdout.flush()
        self._table.viewport().removeEventFilter(self)
        self._app.quit()
