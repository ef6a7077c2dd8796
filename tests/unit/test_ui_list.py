"""The customer list: model contract, lazy keyset fetching, debounced search, keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QInputMethodEvent
from PySide6.QtWidgets import QApplication

from agent_desktop.customers import CustomerService
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerRow, CustomerSearch, PageKey, SearchPage
from agent_desktop.store.db import Database
from ui.customer_list_model import CUSTOMER_ID_ROLE, CustomerListModel
from ui.customer_list_panel import CustomerListPanel

# The offscreen platform plugin says this whenever a top-level widget is shown.
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")

NAMES = ["Zhang Wei", "Zhang Min", "Anna Schmidt", "王芳", "王伟", "李娜", "Carlos Ruiz",
         "Marie Dubois", "John Smith", "欧阳娜娜"]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "list.sqlite3")
    yield d
    d.close()


@pytest.fixture
def service(db: Database) -> CustomerService:
    svc = CustomerService(db, PhoneNormalizer("CN"))
    for i, name in enumerate(NAMES):
        svc.create_customer({"name": name, "company": f"Firm {i}", "city": "Shanghai"},
                            phone=f"+86 138 0013 {8000 + i}")
    for i in range(40):
        svc.create_customer({"name": f"Filler {i:03d}", "city": "Berlin"})
    return svc


@pytest.fixture
def search(db: Database, service: CustomerService) -> CustomerSearch:
    return CustomerSearch(db, PhoneNormalizer("CN"))


class CountingSource:
    """A fake page source over N synthetic rows that records every page request."""

    def __init__(self, n: int) -> None:
        self.rows = [CustomerRow(i, f"Name {i:05d}", "", "", "", "new", "")
                     for i in range(1, n + 1)]
        self.requests: list[tuple[str, PageKey | None, int]] = []

    def page(self, query: str, after: PageKey | None, limit: int) -> SearchPage:
        self.requests.append((query, after, limit))
        start = int(after[0]) if after else 0  # type: ignore[call-overload]
        chunk = self.rows[start:start + limit]
        nxt = (start + limit,) if start + limit < len(self.rows) else None
        return SearchPage(chunk, nxt)


def test_model_passes_qtmodeltester(qtmodeltester, search: CustomerSearch) -> None:  # type: ignore[no-untyped-def]
    model = CustomerListModel(search, page_size=7)
    model.set_query("")
    qtmodeltester.check(model)
    model.fetchMore()
    qtmodeltester.check(model)
    model.set_query("Zhang")
    qtmodeltester.check(model)


def test_lazy_fetch_loads_pages_not_all_rows(qtbot) -> None:  # type: ignore[no-untyped-def]
    source = CountingSource(100_000)
    model = CustomerListModel(source, page_size=100)
    model.set_query("")
    assert model.rowCount() == 100
    assert len(source.requests) == 1
    assert model.canFetchMore()
    with qtbot.waitSignal(model.rowsInserted):
        model.fetchMore()
    assert model.rowCount() == 200
    assert source.requests[-1][1] == (100,)  # keyset continuation, not an offset scan

    panel = CustomerListPanel(model)
    qtbot.addWidget(panel)
    panel.resize(600, 400)
    with qtbot.waitExposed(panel):
        panel.show()
    # Showing and scrolling a bit fetches a few more pages, never the 100k rows.
    panel.table.scrollToBottom()
    QApplication.processEvents()
    assert 200 <= model.rowCount() <= 1000
    assert len(source.requests) < 12


def test_real_search_pages_and_filters(search: CustomerSearch) -> None:
    model = CustomerListModel(search, page_size=20)
    model.set_query("")
    assert model.rowCount() == 20 and model.canFetchMore()
    while model.canFetchMore():
        model.fetchMore()
    assert model.rowCount() == len(NAMES) + 40
    model.set_query("Zhang")
    names = {model.index(r, 0).data() for r in range(model.rowCount())}
    assert names == {"Zhang Wei", "Zhang Min"}
    assert model.index(0, 4).data() == "New"  # status shown as its label
    assert model.headerData(0, Qt.Orientation.Horizontal) == "Name"


def _panel(qtbot, search: CustomerSearch) -> CustomerListPanel:  # type: ignore[no-untyped-def]
    panel = CustomerListPanel(CustomerListModel(search, page_size=25))
    qtbot.addWidget(panel)
    panel.resize(800, 500)
    with qtbot.waitExposed(panel):
        panel.show()
    panel.load()
    return panel


def _shown(panel: CustomerListPanel) -> list[str]:
    m = panel.model
    return [m.index(r, 0).data() for r in range(m.rowCount())]


def test_debounced_search_latin(qtbot, search: CustomerSearch) -> None:  # type: ignore[no-untyped-def]
    panel = _panel(qtbot, search)
    panel.search.setFocus()
    with qtbot.waitSignal(panel.model.query_loaded, timeout=3000) as sig:
        qtbot.keyClicks(panel.search, "schmidt")
    # One query for the whole word (debounced), not one per key press.
    assert sig.args == ["schmidt", 1]
    assert _shown(panel) == ["Anna Schmidt"]


def test_search_chinese_ime_commit(qtbot, search: CustomerSearch) -> None:  # type: ignore[no-untyped-def]
    panel = _panel(qtbot, search)
    panel.search.setFocus()
    event = QInputMethodEvent()
    event.setCommitString("王")
    with qtbot.waitSignal(panel.model.query_loaded, timeout=3000):
        QApplication.sendEvent(panel.search, event)
    assert panel.search.text() == "王"
    assert set(_shown(panel)) == {"王芳", "王伟"}
    event2 = QInputMethodEvent()
    event2.setCommitString("芳")
    with qtbot.waitSignal(panel.model.query_loaded, timeout=3000):
        QApplication.sendEvent(panel.search, event2)
    assert _shown(panel) == ["王芳"]


def test_no_match_shows_empty_state(qtbot, search: CustomerSearch) -> None:  # type: ignore[no-untyped-def]
    panel = _panel(qtbot, search)
    with qtbot.waitSignal(panel.model.query_loaded, timeout=3000):
        qtbot.keyClicks(panel.search, "qqqxxyz")
    assert panel.stack.currentWidget() is panel.empty
    assert "qqqxxyz" in panel.empty.text()
    # Esc clears the search and the full list comes back.
    with qtbot.waitSignal(panel.model.query_loaded, timeout=3000):
        qtbot.keyClick(panel.search, Qt.Key.Key_Escape)
    assert panel.search.text() == ""
    assert panel.stack.currentWidget() is panel.table
    assert panel.model.rowCount() == 25


def test_keyboard_navigation(qtbot, search: CustomerSearch) -> None:  # type: ignore[no-untyped-def]
    panel = _panel(qtbot, search)
    with qtbot.waitActive(panel):
        panel.activateWindow()
    panel.table.setFocus()
    assert not panel.search.hasFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert panel.search.hasFocus()
    changed: list[int] = []
    panel.current_customer_changed.connect(changed.append)
    qtbot.keyClick(panel.search, Qt.Key.Key_Down)  # into the results, first row current
    assert panel.table.hasFocus()
    assert panel.table.currentIndex().row() == 0
    qtbot.keyClick(panel.table, Qt.Key.Key_Down)
    assert panel.table.currentIndex().row() == 1
    second = panel.table.currentIndex().data(CUSTOMER_ID_ROLE)
    assert changed[-1] == second
    with qtbot.waitSignal(panel.customer_activated) as sig:
        qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    assert sig.args == [second]


class FailingSource:
    def page(self, query: str, after: PageKey | None, limit: int) -> SearchPage:
        raise RuntimeError("database is locked")


def test_failed_page_is_reported_not_raised(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = CustomerListModel(FailingSource())
    with qtbot.waitSignal(model.load_failed) as sig:
        model.set_query("x")
    assert "database is locked" in sig.args[0]
    assert model.rowCount() == 0 and not model.canFetchMore()
