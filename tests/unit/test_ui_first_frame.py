"""The early first frame and its hand-over to the full workspace (agent_desktop.app).

The real composition-root steps, offscreen: the list painted from the plain-sqlite3 reader
with stand-ins for the detail pane and Today, then the store, services and panes attached
to the same window. What the agent sees must not jump: same rows, same selection, same
scroll position, the same pixels where nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from agent_desktop import app as app_module
from agent_desktop import startup
from agent_desktop.app import AppContext, parse_args
from agent_desktop.customers import CustomerService
from agent_desktop.first_page import FirstPageReader
from agent_desktop.paths import AppPaths
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store.db import Database
from ui.customer_list_model import CUSTOMER_ID_ROLE, CustomerListModel
from ui.first_paint import window_layout

pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints",
                                       "does not support raise")

ROWS = 260  # more than two list pages


def seed(root: Path) -> None:
    paths = AppPaths.from_root(root)
    paths.ensure()
    db = Database.open(paths.database)
    svc = CustomerService(db, PhoneNormalizer("CN"))
    for i in range(ROWS):
        svc.create_customer({"name": f"Kunde {i:03d}", "city": "Berlin"},
                            phone=f"+49 1512 345{i:04d}")
    db.close()


@pytest.fixture
def root(app_root: Path) -> Path:
    seed(app_root)
    return app_root


class Recording:
    """Wraps a page source and records the queries it was asked."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, Any]] = []

    def page(self, query: str, after: Any, limit: int) -> Any:
        self.calls.append((query, after))
        return self.inner.page(query, after, limit)


def test_model_hand_over_keeps_rows_selection_and_scroll(root: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    from ui.customer_list_panel import CustomerListPanel

    db_file = AppPaths.from_root(root).database
    reader = FirstPageReader.open(db_file, 100)
    assert reader is not None
    model = CustomerListModel(reader)
    panel = CustomerListPanel(model)
    qtbot.addWidget(panel)
    panel.resize(600, 400)
    panel.show()
    panel.load()
    model.fetchMore()  # the agent scrolled before the full app was up: read by the reader
    assert model.rowCount() == 200
    panel.table.setCurrentIndex(model.index(150, 0))
    panel.table.scrollTo(model.index(150, 0))
    chosen = model.index(150, 0).data(CUSTOMER_ID_ROLE)
    scroll = panel.table.verticalScrollBar().value()
    assert scroll > 0
    shown = [model.index(r, 0).data() for r in range(model.rowCount())]

    db = Database.open(db_file)
    try:
        search = Recording(CustomerSearch(db, PhoneNormalizer("CN")))
        resets: list[int] = []
        model.modelReset.connect(lambda: resets.append(1))
        model.set_source(search)
        reader.close()
        assert resets == [] and search.calls == []  # nothing re-read, nothing reset
        assert [model.index(r, 0).data() for r in range(model.rowCount())] == shown
        assert panel.table.currentIndex().row() == 150
        assert panel.table.currentIndex().data(CUSTOMER_ID_ROLE) == chosen
        assert panel.table.verticalScrollBar().value() == scroll
        model.fetchMore()  # the next page comes from the real search, after the reader's key
        assert model.rowCount() == ROWS
        assert search.calls == [("", search.calls[0][1])] and search.calls[0][1] is not None
        names = [model.index(r, 0).data() for r in range(ROWS)]
        assert names == sorted(names) and len(set(names)) == ROWS
    finally:
        db.close()


def test_a_search_asked_too_early_runs_on_the_real_source(root: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    db_file = AppPaths.from_root(root).database
    reader = FirstPageReader.open(db_file, 100)
    assert reader is not None
    model = CustomerListModel(reader)
    model.set_query("")
    with qtbot.waitSignal(model.load_failed) as failed:
        model.set_query("Kunde 12")
    assert "still starting" in failed.args[0]
    assert model.rowCount() == 0
    db = Database.open(db_file)
    try:
        with qtbot.waitSignal(model.query_loaded) as loaded:
            model.set_source(CustomerSearch(db, PhoneNormalizer("CN")))
        assert loaded.args[0] == "Kunde 12" and loaded.args[1] > 0
        assert model.index(0, 0).data().startswith("Kunde 12")  # best matches first
    finally:
        reader.close()
        db.close()


def _first_frame(root: Path, qtbot, *flags: str) -> Iterator[tuple[Any, Any]]:  # type: ignore[no-untyped-def]
    start = startup.begin(parse_args(["--lang", "en", *flags, "--no-sync", "--data-dir",
                                      str(root), "--demo-rows", "0"]), ["test"])
    reader = FirstPageReader.open(start.paths.database, 100)
    assert reader is not None
    window = startup.first_window(start, reader)
    window.show()
    qtbot.waitExposed(window)
    yield start, window
    window.close()
    window.deleteLater()


@pytest.fixture
def early(root: Path, qtbot) -> Iterator[tuple[Any, Any]]:  # type: ignore[no-untyped-def]
    """The first frame as `run()` builds it (window shown, nothing else built yet)."""
    yield from _first_frame(root, qtbot, "--no-phone")


@pytest.fixture(params=["en", "zh_CN"])
def early_with_phone(root: Path, qtbot, request) -> Iterator[tuple[Any, Any]]:  # type: ignore[no-untyped-def]
    """The same, as an agent starts it: the softphone comes right after the first frame
    (in both UI languages: translated labels change the panels' minimum widths)."""
    yield from _first_frame(root, qtbot, "--lang", request.param)


def test_first_frame_has_stand_ins_and_waits_for_the_workspace(early, qtbot) -> None:  # type: ignore[no-untyped-def]
    start, window = early
    assert not window.attached
    assert window.customer_list.model.rowCount() == 100
    assert window.rows_label.text() == "100+ customers"
    stand_in = window.findChild(QLabel, "detailStandIn")
    assert stand_in is not None and stand_in.isVisible()
    assert "Select a customer" in stand_in.text()
    for action in (window.action_new, window.action_edit, window.action_import,
                   window.action_export, window.action_settings):
        assert not action.isEnabled()
    assert window.current_customer_id() is None
    # Enter on a row before the detail pane exists: opened once it is attached.
    table = window.customer_list.table
    table.setCurrentIndex(table.model().index(3, 0))
    qtbot.keyClick(table, Qt.Key.Key_Return)
    wanted = table.model().index(3, 0).data(CUSTOMER_ID_ROLE)

    db = app_module._open_store(start)
    assert db is not None
    ctx = app_module._workspace(start, db, window)
    try:
        assert isinstance(ctx, AppContext) and ctx.window is window and window.attached
        assert window.findChild(QLabel, "detailStandIn") is None or not stand_in.isVisible()
        assert window.splitter.widget(1) is ctx.window.detail
        assert window.tabs.widget(1) is window.today and window.tabs.currentIndex() == 0
        assert window.customer_list.model.source is ctx.search
        assert ctx.window.detail.detail is not None
        assert ctx.window.detail.detail.id == wanted
        assert window.current_customer_id() == wanted
        for action in (window.action_new, window.action_edit, window.action_import,
                       window.action_export, window.action_settings):
            assert action.isEnabled()
    finally:
        ctx.close()


def test_hand_over_changes_no_pixel(early, qtbot) -> None:  # type: ignore[no-untyped-def]
    """No flicker: the frame after the workspace is attached equals the first frame."""
    start, window = early
    qtbot.wait(50)
    before = window.grab().toImage()
    db = app_module._open_store(start)
    assert db is not None
    ctx = app_module._workspace(start, db, window)
    try:
        qtbot.wait(50)
        after = window.grab().toImage()
        assert after.size() == before.size()
        if after != before:
            differing = sum(1 for y in range(0, after.height(), 2)
                            for x in range(0, after.width(), 2)
                            if after.pixel(x, y) != before.pixel(x, y))
            pytest.fail(f"{differing} sampled pixels changed at the hand-over")
    finally:
        ctx.close()


def test_run_refuses_a_locked_database_before_any_window(root: Path, qtbot,  # type: ignore[no-untyped-def]
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The early road steps aside; the full path says "locked" before its event loop runs
    (the whole run() with its event loop is tested in a subprocess: tests/e2e)."""
    import sqlite3

    shown: list[str] = []
    monkeypatch.setattr(app_module, "show_fatal", shown.append)
    other = sqlite3.connect(AppPaths.from_root(root).database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        code = app_module.run(["--no-phone", "--no-sync", "--data-dir", str(root),
                               "--demo-rows", "0"])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert code == app_module.EXIT_STORE_ERROR
    assert shown and "locked" in shown[0]


def test_records_before_the_log_file_opens_reach_it_in_order(app_root: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    import logging

    start = startup.begin(parse_args(["--data-dir", str(app_root), "--lang", "en"]),
                              ["test"], defer_log_file=True)
    try:
        log_file = AppPaths.from_root(app_root).log_file
        logging.getLogger("early.test").warning("before the file: password=hunter2")
        assert not log_file.exists() or "before the file" not in log_file.read_text()
        start.open_log()
        logging.getLogger("early.test").warning("after the file")
        text = log_file.read_text(encoding="utf-8")
        assert "starting; data in" in text
        assert "hunter2" not in text and "[redacted" in text  # the file's filters applied
        assert text.index("starting; data in") < text.index("[redacted") < \
            text.index("after the file")
    finally:
        start.release_logging()


def test_phone_docks_are_in_the_first_frame_and_filled_in_place(early_with_phone, qtbot,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    """No layout shift when the softphone arrives: its docks (phone and call list, tabbed
    on the right) are reserved in the first frame and the real panels replace the
    stand-ins in place — same dock geometry, tabs and raised tab, same central panes."""
    from PySide6.QtWidgets import QDockWidget

    from agent_desktop.app_phone import _build_phone_ui
    from agent_desktop.calls import CallService
    from agent_desktop.dialplan import DialPlan
    from agent_desktop.phone import FakePhoneBackend

    start, window = early_with_phone
    phone = window.findChild(QDockWidget, "dock_softphonePanel")
    dialer = window.findChild(QDockWidget, "dock_dialerPanel")
    assert phone is not None and dialer is not None
    assert phone.isVisible() and window.tabifiedDockWidgets(phone) == [dialer]
    assert phone.width() == pytest.approx(startup.PHONE_DOCK_WIDTH, abs=8)
    qtbot.wait(50)
    before = window_layout(window)
    list_before = window.centralWidget().grab().toImage()

    db = app_module._open_store(start)
    assert db is not None
    ctx = app_module._workspace(start, db, window)
    try:
        fake = FakePhoneBackend()
        calls = CallService(db, fake, DialPlan(ctx.normalizer, "sim.local"), ctx.search)
        _build_phone_ui(ctx, calls, fake, "agent", on_calls_changed=lambda *_a: None)
        qtbot.wait(50)
        assert phone.widget() in ctx.keep and dialer.widget() in ctx.keep
        assert phone.widget().objectName() == "softphonePanel"
        assert dialer.widget().objectName() == "dialerPanel"
        assert set(window.findChildren(QDockWidget)) == {phone, dialer}  # no new docks
        after = window_layout(window)
        for key in before:
            assert after[key] == before[key], key
        assert window.centralWidget().grab().toImage() == list_before
    finally:
        ctx.close()


def test_a_phone_that_cannot_start_says_so_in_its_reserved_dock(early_with_phone,  # type: ignore[no-untyped-def]
                                                                qtbot) -> None:
    from PySide6.QtWidgets import QDockWidget

    start, window = early_with_phone
    db = app_module._open_store(start)
    assert db is not None
    ctx = app_module._workspace(start, db, window)
    try:
        # A registrar without a user name: SipConfig refuses before any SIP stack starts.
        ctx.settings.set("sip.registrar", "sip.example.invalid")
        ctx.settings.set("sip.username", "")
        from agent_desktop.app_phone import start_phone

        start_phone(ctx, on_calls_changed=lambda *_a: None)
        dock = window.findChild(QDockWidget, "dock_softphonePanel")
        assert dock is not None and dock.isVisible()
        text = dock.widget().text()
        assert "A SIP user name is needed" in text  # the reason, after "The phone could not start"
        assert window.statusBar().currentMessage() == text
        assert ctx.calls is None
    finally:
        ctx.close()


def test_reserved_docks_come_back_as_wide_as_the_agent_left_them(root: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    """The saved UI state applies to the reserved docks in the first frame: the width the
    agent dragged them to last time, not the default. (Which tab was raised is not part of
    what Qt restores for a dock added after the state: the phone is shown first.)"""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDockWidget

    def first_frame() -> Any:
        start = startup.begin(parse_args(["--lang", "en", "--no-sync", "--data-dir",
                                          str(root), "--demo-rows", "0"]), ["test"])
        reader = FirstPageReader.open(start.paths.database, 100)
        assert reader is not None
        window = startup.first_window(start, reader)
        window.resize(1200, 700)
        window.show()
        qtbot.waitExposed(window)
        qtbot.wait(50)
        return reader, window, window.findChild(QDockWidget, "dock_softphonePanel")

    reader, window, phone = first_frame()
    assert abs(phone.width() - startup.PHONE_DOCK_WIDTH) <= 4  # the default, first time
    window.resizeDocks([phone], [520], Qt.Orientation.Horizontal)  # the agent drags it
    qtbot.waitUntil(lambda: phone.width() > 500)
    width = phone.width()
    window.close()  # saves the UI state
    reader.close()
    window.deleteLater()

    reader, window, phone = first_frame()
    try:
        assert abs(phone.width() - width) <= 4
        assert not phone.visibleRegion().isEmpty()
        assert [d.objectName() for d in window.tabifiedDockWidgets(phone)] == [
            "dock_dialerPanel"]
    finally:
        window.close()
        reader.close()
        window.deleteLater()
