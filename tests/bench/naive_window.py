"""The naive baseline window: every customer in a Python list behind a QSortFilterProxyModel.

This is what a first attempt usually looks like, kept here only to be measured against
(`python -m tests.bench.naive_window DB [--filter TEXT]`). It prints the same
`FIRST_PAINT {"ms", "rss_mib"}` line as the real app (ms since process creation), then,
with --filter, `NAIVE_FILTER {"ms"}`: one keystroke's worth of proxy filtering.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from typing import Any

import psutil
from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtWidgets import QApplication, QTableView

HEADERS = ("Name", "Company", "City", "Phone", "Status")


class ListModel(QAbstractTableModel):
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self._rows = rows

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return self._rows[index.row()][index.column() + 1]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None


class Probe(QObject):
    def __init__(self, view: QTableView, proxy: QSortFilterProxyModel, app: QApplication,
                 filter_text: str | None) -> None:
        super().__init__(view)
        self._view, self._proxy, self._app, self._filter = view, proxy, app, filter_text
        self._done = False
        view.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self._done and event.type() == QEvent.Type.Paint and self._proxy.rowCount():
            self._done = True
            QTimer.singleShot(0, self._report)
        return False

    def _report(self) -> None:
        painted_at = time.time()
        proc = psutil.Process()
        ms = (painted_at - proc.create_time()) * 1000.0
        rss = proc.memory_info().rss / (1024 * 1024)
        print("FIRST_PAINT " + json.dumps({"ms": round(ms, 1), "rss_mib": round(rss, 1),
                                           "epoch": painted_at}), flush=True)
        if self._filter:
            started = time.perf_counter()
            self._proxy.setFilterFixedString(self._filter)
            self._app.processEvents()
            print("NAIVE_FILTER " + json.dumps(
                {"ms": round((time.perf_counter() - started) * 1000, 1),
                 "rows": self._proxy.rowCount()}), flush=True)
        self._app.quit()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--filter", default=None)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication(sys.argv[:1])
    conn = sqlite3.connect(args.db)
    rows = conn.execute(
        "SELECT c.id, c.name, c.company, c.city, p.raw, c.status FROM customers c"
        " LEFT JOIN phone_numbers p ON p.customer_id = c.id AND p.position = 0"
        " AND p.deleted_at IS NULL WHERE c.deleted_at IS NULL ORDER BY c.name_key, c.id"
    ).fetchall()
    conn.close()
    model = ListModel(rows)
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setFilterKeyColumn(-1)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    view = QTableView()
    view.setModel(proxy)
    view.resize(1000, 700)
    probe = Probe(view, proxy, app, args.filter)
    view.show()
    code = app.exec()
    del probe
    return code


if __name__ == "__main__":
    sys.exit(main())
