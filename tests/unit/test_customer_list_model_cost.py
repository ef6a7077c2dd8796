"""The customer list model's cheap per-cell path answers exactly what the rows say.

The model keeps fetched rows as tuples of display strings and answers `data()` with as
little Python as possible, because every painted cell costs seven `data()` calls with the
GIL held (the audio threads of a call wait for it). These tests pin the behaviour that
the cheap path must keep — every role of every cell, stale and invalid indexes, edits —
and the properties that make it cheap: no Python `flags()`, no more than seven `data()`
calls per painted cell, and loaded rows the garbage collector does not track.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QModelIndex, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from agent_desktop.customers import CustomerService
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerRow, CustomerSearch, PageKey, SearchPage
from agent_desktop.store.db import Database
from ui.customer_list_model import CUSTOMER_ID_ROLE, CustomerListModel
from ui.customer_list_panel import CustomerListPanel
from ui.labels import status_label

pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")

STATUSES = ("new", "contacted", "callback", "interested", "customer", "not_interested",
            "do_not_call", "vip-imported")  # the last: an unknown code, shown as it is
OTHER_ROLES = (Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.EditRole,
               Qt.ItemDataRole.StatusTipRole, Qt.ItemDataRole.FontRole,
               Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.BackgroundRole,
               Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.CheckStateRole,
               Qt.ItemDataRole.SizeHintRole, Qt.ItemDataRole.UserRole)


class ListSource:
    """A page source over fixed rows (offset page keys)."""

    def __init__(self, rows: list[CustomerRow]) -> None:
        self.rows = rows

    def page(self, query: str, after: PageKey | None, limit: int) -> SearchPage:
        start = int(after[0]) if after else 0  # type: ignore[call-overload]
        nxt = (start + limit,) if start + limit < len(self.rows) else None
        return SearchPage(self.rows[start:start + limit], nxt)


def _rows(n: int) -> list[CustomerRow]:
    return [CustomerRow(1000 + i, f"客户 {i}" if i % 3 == 0 else f"Name {i}",
                        "" if i % 4 == 0 else f"Company {i}", f"City {i % 7}",
                        f"+86 138 0000 {i:04d}", STATUSES[i % len(STATUSES)],
                        "" if i % 2 else "vip, 回访")
            for i in range(n)]


def _expected(r: CustomerRow, col: int, role: int) -> object:
    """What the list showed for each role before the fast path (the reference)."""
    values = (r.name, r.company, r.city, r.phone, r.status, r.tags)
    if role == Qt.ItemDataRole.DisplayRole:
        return status_label(r.status) if col == 4 else values[col]
    if role == Qt.ItemDataRole.ToolTipRole:
        return (values[col] or None) if col in (0, 1, 5) else None
    if role == CUSTOMER_ID_ROLE:
        return r.id
    return None


def test_every_role_of_every_cell_matches_the_rows(qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(57)
    model = CustomerListModel(ListSource(rows), page_size=20)
    model.set_query("")
    while model.canFetchMore():
        model.fetchMore()
    assert model.rowCount() == 57
    qtmodeltester.check(model)
    roles = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, CUSTOMER_ID_ROLE,
             *OTHER_ROLES)
    for i, r in enumerate(rows):
        for col in range(6):
            index = model.index(i, col)
            for role in roles:
                # Both ways a caller asks: through the index (C++ → Python, role an int)
                # and directly from Python (role an enum member).
                assert index.data(role) == _expected(r, col, role), (i, col, role)
                assert model.data(index, role) == _expected(r, col, role), (i, col, role)
    assert model.index(4, 4).data() == "Customer"  # the status shown translated
    assert model.index(7, 4).data() == "vip-imported"


def test_invalid_and_stale_indexes_answer_none() -> None:
    model = CustomerListModel(ListSource(_rows(5)), page_size=10)
    model.set_query("")
    for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, CUSTOMER_ID_ROLE):
        assert model.data(QModelIndex(), role) is None
        # An index made before the list shrank (a stale persistent index's row).
        assert model.data(model.createIndex(5, 0), role) is None
        assert model.data(model.createIndex(99, 1), role) is None
    assert model.flags(QModelIndex()) == Qt.ItemFlag.NoItemFlags


def test_flags_are_qts_own_and_mean_selectable_rows() -> None:
    # flags() runs once per painted cell: Qt's C++ answer, no Python call.
    assert "flags" not in CustomerListModel.__dict__
    model = CustomerListModel(ListSource(_rows(3)), page_size=10)
    model.set_query("")
    flags = model.flags(model.index(1, 2))
    assert flags & Qt.ItemFlag.ItemIsEnabled and flags & Qt.ItemFlag.ItemIsSelectable
    assert not flags & Qt.ItemFlag.ItemIsEditable


def test_refresh_row_shows_the_edit_with_its_label(qtbot) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(30)
    model = CustomerListModel(ListSource(rows), page_size=30)
    model.set_query("")
    edited = CustomerRow(rows[3].id, "Renamed", "", "Paris", "", "do_not_call", "x")
    with qtbot.waitSignal(model.dataChanged) as sig:
        model.refresh_row(edited, edited.id)
    assert sig.args[0].row() == 3 and sig.args[1].column() == 5
    assert [model.index(3, c).data() for c in range(6)] == [
        "Renamed", "", "Paris", "", "Do not call", "x"]
    assert model.index(3, 1).data(Qt.ItemDataRole.ToolTipRole) is None
    assert model.customer_id(3) == edited.id and model.row_of(edited.id) == 3
    model.refresh_row(None, edited.id)  # deleted: shown as it was until the next query
    assert model.index(3, 0).data() == "Renamed"
    assert model.loaded_ids() == [r.id for r in rows]


def test_loaded_rows_are_not_tracked_by_the_garbage_collector() -> None:
    model = CustomerListModel(ListSource(_rows(300)), page_size=100)
    model.set_query("")
    model.fetchMore()
    model.fetchMore()
    gc.collect()
    # Rows of str are untracked after a collection: a gen-2 pass (which holds the GIL)
    # does not walk the loaded list row by row. Private attributes, read on purpose.
    assert len(model._texts) == 300
    assert not any(gc.is_tracked(t) for t in model._texts)
    assert not any(gc.is_tracked(i) for i in model._ids)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "scroll.sqlite3")
    svc = CustomerService(d, PhoneNormalizer("CN"))
    for i in range(120):
        svc.create_customer({"name": f"Kunde {i:03d}", "company": f"Firm {i % 9}",
                             "city": "Hangzhou", "status": STATUSES[i % 7]},
                            phone=f"+86 139 0013 {8000 + i}")
    yield d
    d.close()


class CountingModel(CustomerListModel):
    """The real model, counting the Python calls the view makes while it paints."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls = {"data": 0, "display": 0}

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
        self.calls["data"] += 1
        if role == Qt.ItemDataRole.DisplayRole:
            self.calls["display"] += 1
        return super().data(index, role)


def test_wheel_scrolled_real_panel_paints_real_rows(qtbot, db: Database) -> None:  # type: ignore[no-untyped-def]
    """Scrolled as the agent does (wheel events through Qt's event loop) over a real
    search: pages arrive lazily, the cells painted are the search's rows, and each
    painted cell costs at most the seven data() calls the delegate makes."""
    search = CustomerSearch(db, PhoneNormalizer("CN"))
    model = CountingModel(search, page_size=25)
    panel = CustomerListPanel(model)
    qtbot.addWidget(panel)
    panel.resize(700, 420)
    with qtbot.waitExposed(panel):
        panel.show()
    panel.load()
    qtbot.wait(50)
    view = panel.table
    viewport = view.viewport()
    pos = QPointF(viewport.width() / 2, viewport.height() / 2)
    glob = QPointF(viewport.mapToGlobal(pos.toPoint()))
    bar = view.verticalScrollBar()
    for _ in range(20):  # one notch (3 rows) at a time, as a hand on a wheel
        QCoreApplication.postEvent(viewport, QWheelEvent(
            pos, glob, QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))
        before = bar.value()
        qtbot.waitUntil(lambda b=before: bar.value() > b, timeout=3000)
    assert bar.value() >= 40  # each notch moved the list (a notch at the end moves less)
    assert 25 < model.rowCount() < 120  # fetched as it scrolled, not all at once

    top = view.rowAt(0)
    last = view.rowAt(viewport.height() - 1)
    shown = [model.index(r, 0).data() for r in range(top, last + 1)]
    every = search.page("", None, 200).rows
    assert shown == [r.name for r in every[top:last + 1]]
    assert model.index(top, 4).data() == status_label(every[top].status)

    model.calls.update(data=0, display=0)
    viewport.grab()  # one full paint of what is visible
    cells = model.calls["display"]
    assert cells >= (last - top + 1) * 6 - 6  # every visible cell asked for its text
    assert model.calls["data"] <= 7 * cells
    QApplication.processEvents()
