"""The whole workspace as the composition root builds it: list ↔ detail ↔ Today, edits
saved through the service (outbox rows), dialogs with validation, UI state, start-up errors.

Built with `agent_desktop.app.build()` — the real wiring, offscreen — on a seeded database.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QMessageBox,
    QPushButton,
    QToolButton,
    QWidget,
)
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agent_desktop import app as app_module
from agent_desktop.app import AppContext, build, parse_args
from agent_desktop.customers import CustomerService
from agent_desktop.paths import AppPaths
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Outbox, Tag
from ui.today_view import CUSTOMER_ID_ROLE

# Offscreen platform notes when windows/popups (e.g. the tag completer) are shown.
# The workspace alone: no SIP stack and no sync server in the test process.
ALONE = ["--no-phone", "--no-sync"]
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints",
                                       "does not support raise",
                                       "does not support grabbing")


def seed(root: Path) -> None:
    paths = AppPaths.from_root(root)
    paths.ensure()
    db = Database.open(paths.database)
    svc = CustomerService(db, PhoneNormalizer("CN"))
    for name, city in [("Anna Schmidt", "Berlin"), ("Bo Chen", "Beijing"),
                       ("Carlos Ruiz", "Madrid"), ("王芳", "上海")]:
        svc.create_customer({"name": name, "city": city}, phone="+86 138 0013 8000")
    db.close()


def make(root: Path, *extra: str) -> AppContext:
    ctx = build(parse_args([*ALONE, "--data-dir", str(root), "--demo-rows", "0",
                            "--lang", "en", *extra]))
    assert isinstance(ctx, AppContext)
    return ctx


@pytest.fixture
def ctx(app_root: Path, qtbot) -> Iterator[AppContext]:  # type: ignore[no-untyped-def]
    seed(app_root)
    c = make(app_root)
    yield c
    c.close()


def outbox(db: Database) -> list[Outbox]:
    with db.transaction() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.mutation_id)))


def save_button(dialog: QDialog) -> QPushButton:
    box = dialog.findChild(QDialogButtonBox)
    assert box is not None
    return box.button(QDialogButtonBox.StandardButton.Save)


def select_row(ctx: AppContext, row: int) -> int:
    table = ctx.window.customer_list.table
    table.setCurrentIndex(table.model().index(row, 0))
    ctx.window.open_pending()  # don't wait for the selection to settle
    detail = ctx.window.detail.detail
    assert detail is not None
    return int(detail.id)


def test_list_shows_customers_and_selection_opens_detail(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    model = ctx.window.customer_list.model
    assert model.rowCount() == 4
    assert model.index(0, 0).data() == "Anna Schmidt"
    # Moving the selection opens the customer once the selection settles.
    table = ctx.window.customer_list.table
    shown: list[int] = []
    ctx.window.detail.customer_shown.connect(shown.append)
    table.setCurrentIndex(model.index(2, 0))
    table.setCurrentIndex(model.index(1, 0))
    qtbot.waitUntil(lambda: ctx.window.detail.detail is not None)
    assert ctx.window.detail.detail.name == "Bo Chen"  # type: ignore[union-attr]
    assert len(shown) == 1  # the row passed over on the way was never loaded
    pane = ctx.window.detail
    assert pane.title.text() == "Bo Chen"
    assert pane.inputs["city"].text() == "Beijing"
    assert pane.no_calls.isVisibleTo(pane) and not pane.calls.isVisibleTo(pane)
    assert ctx.window.rows_label.text() == "4 customers"


def test_enter_opens_customer_and_focuses_detail(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitActive(ctx.window):
        ctx.window.activateWindow()
    panel = ctx.window.customer_list
    qtbot.keyClick(panel.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert panel.search.hasFocus()
    qtbot.keyClick(panel.search, Qt.Key.Key_Down)
    qtbot.keyClick(panel.table, Qt.Key.Key_Down)
    qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    assert ctx.window.detail.detail is not None
    assert ctx.window.detail.detail.name == "Bo Chen"
    assert ctx.window.detail.inputs["name"].hasFocus()


def test_field_edit_saves_in_one_transaction_and_refreshes_row(
        ctx: AppContext, qtbot: QtBot) -> None:
    cid = select_row(ctx, 0)
    pane = ctx.window.detail
    assert not pane.save_button.isEnabled()
    pane.inputs["city"].selectAll()
    qtbot.keyClicks(pane.inputs["city"], "Hamburg")
    assert pane.save_button.isEnabled()
    before = len(outbox(ctx.db))
    qtbot.mouseClick(pane.save_button, Qt.MouseButton.LeftButton)
    rows = outbox(ctx.db)[before:]
    assert [(r.entity, json.loads(r.changed_fields)) for r in rows] == [
        ("customer", {"city": "Hamburg"})]
    with ctx.db.transaction() as s:
        assert s.get(Customer, cid).city == "Hamburg"  # type: ignore[union-attr]
    assert ctx.window.customer_list.model.index(0, 2).data() == "Hamburg"
    assert not pane.save_button.isEnabled()


def test_invalid_edit_is_refused_and_kept_on_screen(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    cid = select_row(ctx, 0)
    pane = ctx.window.detail
    pane.inputs["name"].selectAll()
    qtbot.keyClick(pane.inputs["name"], Qt.Key.Key_Delete)
    qtbot.keyClicks(pane.inputs["email"], "nope")
    before = len(outbox(ctx.db))
    assert not pane.save_fields()
    assert pane.field_error.isVisibleTo(pane)
    assert "needs a name" in pane.field_error.text()
    assert len(outbox(ctx.db)) == before
    # Moving to another customer must not throw the typing away silently.
    table = ctx.window.customer_list.table
    table.setCurrentIndex(table.model().index(2, 0))
    qtbot.waitUntil(lambda: table.currentIndex().row() == 0)  # once the selection settled
    assert pane.detail is not None and pane.detail.id == cid
    pane.revert()
    assert pane.inputs["name"].text() == "Anna Schmidt"
    table.setCurrentIndex(table.model().index(2, 0))
    qtbot.waitUntil(lambda: pane.detail is not None and pane.detail.name == "Carlos Ruiz")


def test_tag_chips_add_and_remove(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    first = select_row(ctx, 0)
    ctx.customers.add_tag(first, "wholesale")
    cid = select_row(ctx, 3)
    pane = ctx.window.detail
    # The add box completes from tags already in use.
    completer = pane.tags.input.completer()
    assert "wholesale" in completer.model().stringList()  # type: ignore[attr-defined]
    qtbot.keyClicks(pane.tags.input, "vip")
    qtbot.keyClick(pane.tags.input, Qt.Key.Key_Return)
    assert pane.tags.tags() == ["vip"]
    assert pane.tags.input.text() == ""
    assert ctx.window.customer_list.model.index(3, 5).data() == "vip"
    # A duplicate is refused with a reason; nothing is written.
    before = len(outbox(ctx.db))
    qtbot.keyClicks(pane.tags.input, "VIP")
    qtbot.keyClick(pane.tags.input, Qt.Key.Key_Return)
    assert "already has the tag" in pane.field_error.text()
    assert len(outbox(ctx.db)) == before
    remove = pane.tags.findChild(QToolButton, "tagChipRemove")
    assert remove is not None
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    assert pane.tags.tags() == []
    with ctx.db.transaction() as s:
        tag = s.scalars(select(Tag).where(Tag.customer_id == cid)).one()
        assert tag.deleted_at is not None
    assert outbox(ctx.db)[-1].op == "delete"


def test_notes_and_follow_ups_reach_today(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    cid = select_row(ctx, 2)
    pane = ctx.window.detail
    pane.note_input.setPlainText("Wants a quote for 20 seats")
    qtbot.mouseClick(pane.findChild(QPushButton, "addNote"), Qt.MouseButton.LeftButton)
    assert pane.notes.count() == 1 and "20 seats" in pane.notes.item(0).text()
    assert pane.note_input.toPlainText() == ""

    assert ctx.window.tabs.tabText(1) == "Today"
    qtbot.keyClicks(pane.task_title, "Call back with quote")
    pane.task_due.setDateTime(pane.task_due.dateTime().fromSecsSinceEpoch(
        int((datetime.now() - timedelta(hours=1)).timestamp())))
    qtbot.keyClick(pane.task_title, Qt.Key.Key_Return)
    today = ctx.window.today.model
    assert today.rowCount() == 1
    assert today.index(0, 1).data() == "Carlos Ruiz"
    assert today.overdue_count() == 1
    assert ctx.window.tabs.tabText(1) == "Today (1)"
    item = next(pane.tasks.item(i) for i in range(pane.tasks.count())
                if "Call back" in pane.tasks.item(i).text())
    item.setCheckState(Qt.CheckState.Checked)
    assert today.rowCount() == 0
    assert any(t.done_at is not None for t in ctx.customers.load(cid).tasks)


def test_today_view_model_and_double_click(ctx: AppContext, qtbot, qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    ids = [ctx.window.customer_list.model.customer_id(r) for r in range(4)]
    now = datetime.now().astimezone()
    ctx.customers.add_task(ids[1], "Overdue", now - timedelta(days=1))  # type: ignore[arg-type]
    ctx.customers.add_task(ids[3], "Later", now + timedelta(days=3))  # type: ignore[arg-type]
    model = ctx.window.today.model
    qtmodeltester.check(model)
    assert model.rowCount() == 1
    assert model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole) == "Overdue"
    view = ctx.window.today
    ctx.window.tabs.setCurrentIndex(1)
    assert view.stack.currentWidget() is view.table
    rect = view.table.visualRect(model.index(0, 1))
    # A real double-click is press/release then a double-click event on the same cell.
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert ctx.window.detail.detail is not None
    assert ctx.window.detail.detail.id == model.index(0, 0).data(CUSTOMER_ID_ROLE) == ids[1]


def test_invalid_phone_is_flagged_with_reason(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    select_row(ctx, 0)
    pane = ctx.window.detail
    qtbot.mouseClick(pane.findChild(QPushButton, "addPhone"), Qt.MouseButton.LeftButton)
    dialog = pane.phone_dialog
    assert dialog.isVisible()
    qtbot.keyClicks(dialog.number, "12-34")
    assert "kept as typed" in dialog.preview.text()
    with qtbot.waitSignal(dialog.accepted):
        save_button(dialog).click()
    items = [pane.phones.item(i) for i in range(pane.phones.count())]
    flagged = [i for i in items if "12-34" in i.text()]
    assert flagged and not flagged[0].icon().isNull()
    assert "may not be dialable" in flagged[0].toolTip()


def test_new_customer_dialog_validates(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    ctx.window.action_new.trigger()  # File → New customer… (Ctrl+N)
    menu_dialog = ctx.window.findChild(QDialog, "newCustomerDialog")
    assert menu_dialog is not None and menu_dialog.isVisible()
    menu_dialog.reject()
    dialog = ctx.window.new_customer(phone="+86 139 0000 1111")  # e.g. an unknown caller
    assert dialog.phone is not None and dialog.phone.text() == "+86 139 0000 1111"
    assert dialog.isVisible()
    save_button(dialog).click()
    assert dialog.isVisible() and "needs a name" in dialog.error.text()
    assert dialog.focusWidget() is dialog.inputs["name"]
    qtbot.keyClicks(dialog.inputs["name"], "Dana Lee")
    qtbot.keyClicks(dialog.inputs["email"], "dana@")
    save_button(dialog).click()
    assert "not an e-mail" in dialog.error.text()
    dialog.inputs["email"].setText("dana@example.com")
    with qtbot.waitSignal(dialog.accepted):
        save_button(dialog).click()
    assert ctx.window.detail.detail is not None
    assert ctx.window.detail.detail.name == "Dana Lee"
    assert ctx.window.detail.detail.phones[0].e164 == "+8613900001111"
    assert ctx.window.customer_list.model.rowCount() == 5


def test_ui_state_saved_apart_and_restored(app_root: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    seed(app_root)
    c = make(app_root)
    c.window.splitter.setSizes([900, 380])
    header = c.window.customer_list.table.horizontalHeader()
    header.resizeSection(0, 233)
    sizes = c.window.splitter.sizes()
    c.close()
    paths = AppPaths.from_root(app_root)
    assert paths.ui_state_file.exists()
    assert not paths.settings_file.exists()  # UI state never goes into settings
    c2 = make(app_root)
    try:
        # Offscreen's 800x600 screen clamps the restored window; the proportion survives.
        new = c2.window.splitter.sizes()
        assert abs(new[0] / sum(new) - sizes[0] / sum(sizes)) < 0.02
        assert c2.window.customer_list.table.horizontalHeader().sectionSize(0) == 233
    finally:
        c2.close()


def test_corrupt_database_gives_plain_message_and_exit_2(
        app_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = AppPaths.from_root(app_root)
    paths.ensure()
    garbage = b"this is not a database" * 100
    paths.database.write_bytes(garbage)
    shown: list[str] = []
    monkeypatch.setattr(app_module, "show_fatal", shown.append)
    result = build(parse_args([*ALONE, "--data-dir", str(app_root), "--demo-rows", "0"]))
    assert result == app_module.EXIT_STORE_ERROR
    assert shown and "left untouched" in shown[0]
    assert paths.database.read_bytes() == garbage


def test_bad_settings_file_warns_the_user(app_root: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    seed(app_root)
    paths = AppPaths.from_root(app_root)
    paths.settings_file.write_text("this is = = not toml", encoding="utf-8")
    c = make(app_root)
    try:
        def box() -> QMessageBox | None:
            return c.window.findChild(QMessageBox, "settingsWarnings")
        qtbot.waitUntil(lambda: box() is not None and box().isVisible())  # type: ignore[union-attr]
        assert "could not be read" in box().text()  # type: ignore[union-attr]
    finally:
        c.close()


def test_parse_args() -> None:
    a = parse_args(["--data-dir", "/tmp/x", "--demo-rows", "5", "--lang", "zh_CN"])
    assert (a.data_dir, a.demo_rows, a.lang) == (Path("/tmp/x"), 5, "zh_CN")
    assert parse_args([]).demo_rows == 10_000
    with pytest.raises(SystemExit):
        parse_args(["--demo-rows", "-1"])
    with pytest.raises(SystemExit):
        parse_args(["--lang", "fr"])


def test_about_box(ctx: AppContext) -> None:
    box = ctx.window.show_about()
    assert box.isVisible() and "telesales" in box.text()
    box.close()


def test_hooks_for_softphone_and_dialer(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    pane = ctx.window.detail
    with qtbot.waitSignal(pane.customer_shown) as sig:
        cid = select_row(ctx, 2)
    assert sig.args == [cid]
    assert ctx.window.current_customer_id() == cid
    with qtbot.assertNotEmitted(pane.customer_shown):
        pane.reload_if_shown(cid)  # same customer again: not a new selection
    assert ctx.window.customer_list.model.loaded_ids()[2] == cid
    ctx.customers.create_customer({"name": "Aaron Able"})
    ctx.window.refresh_list()
    assert ctx.window.customer_list.model.index(0, 0).data() == "Aaron Able"


def test_deferred_start_up_after_first_paint(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    """Reminders and today's figures are built once the list has painted."""
    w = ctx.window
    with qtbot.waitExposed(w):
        w.show()
    qtbot.waitUntil(lambda: w.findChild(QLabel, "agentStats") is not None)
    stats = w.findChild(QLabel, "agentStats")
    assert stats is not None and stats.text().startswith("Calls 0")
    popup = w.findChild(QFrame, "reminderPopup")
    assert popup is not None and not popup.isVisible()


def test_search_warm_up_then_prepare_after_first_paint(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    """The idle-priority warm-up starts once the list has painted and, when it ends, the
    search pays its one-off costs (the digit sample) off the GUI thread."""
    digit_stats = ctx.search._digit_stats
    assert digit_stats._taken_at < 0  # nothing sampled before the first paint
    w = ctx.window
    with qtbot.waitExposed(w):
        w.show()
    qtbot.waitUntil(lambda: digit_stats._taken_at > 0, timeout=60_000)
    qtbot.waitUntil(lambda: not any(t.name == "search-warm-up"
                                    for t in threading.enumerate()), timeout=60_000)


def test_import_and_export_menu_open_their_dialogs(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = ctx.window
    assert w.action_import.isEnabled() and w.action_export.isEnabled()
    w.action_import.trigger()
    dialog = w.findChild(QDialog, "importDialog")
    assert dialog is not None and dialog.isVisible()
    # A finished import refreshes the list (new customers appear without a restart).
    ctx.customers.create_customer({"name": "Aaron Imported"})
    dialog.imported.emit(None)  # type: ignore[attr-defined]
    assert w.customer_list.model.index(0, 0).data() == "Aaron Imported"
    dialog.reject()
    w.action_export.trigger()
    qtbot.waitUntil(lambda: any(isinstance(k, QObject) and type(k).__name__ ==
                                "ExportController" for k in ctx.keep))


def test_edit_dialog_saves_fields(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    assert ctx.window.edit_customer() is None  # nothing selected yet: says so
    assert "Select a customer first" in ctx.window.statusBar().currentMessage()
    cid = select_row(ctx, 1)
    dialog = ctx.window.edit_customer()
    assert dialog is not None and dialog.inputs["name"].text() == "Bo Chen"
    dialog.inputs["company"].setText("Chen Trading")
    dialog.status.setCurrentIndex(dialog.status.findData("interested"))
    with qtbot.waitSignal(dialog.accepted):
        save_button(dialog).click()
    d = ctx.customers.load(cid)
    assert (d.company, d.status) == ("Chen Trading", "interested")
    assert ctx.window.detail.inputs["company"].text() == "Chen Trading"
    assert ctx.window.customer_list.model.index(1, 4).data() == "Interested"


def test_call_timeline_and_phone_removal(ctx: AppContext) -> None:
    from agent_desktop.store.models import CallLog

    cid = select_row(ctx, 0)
    with ctx.db.transaction() as s:
        s.add(CallLog(customer_id=cid, direction="out", number="+8613800138000",
                      state="ended", outcome="answered", talk_seconds=125.0,
                      disposition="Interested"))
    ctx.window.refresh_customer(cid)  # what the composition root calls after a call ends
    pane = ctx.window.detail
    assert pane.calls.count() == 1 and not pane.no_calls.isVisibleTo(pane)
    text = pane.calls.item(0).text()
    assert "Outgoing" in text and "2:05" in text and "Interested" in text
    pane.phones.setCurrentRow(0)
    pane._remove_phone()
    assert ctx.customers.load(cid).phones == ()
    assert "No phone number" in pane.phones.item(0).text()


def test_escape_in_results_returns_to_search(ctx: AppContext, qtbot) -> None:  # type: ignore[no-untyped-def]
    panel = ctx.window.customer_list
    with qtbot.waitSignal(panel.model.query_loaded, timeout=3000):
        qtbot.keyClicks(panel.search, "Ruiz")
    assert panel.model.rowCount() == 1
    panel.table.setFocus()
    with qtbot.waitSignal(panel.model.query_loaded, timeout=3000):
        qtbot.keyClick(panel.table, Qt.Key.Key_Escape)
    assert panel.search.text() == "" and panel.model.rowCount() == 4


def test_phone_problem_is_said_and_workspace_keeps_working(app_root: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    """A softphone that cannot start (TLS without a CA file) is reported in plain words;
    nothing SIP is left running and the customer workspace still works."""
    seed(app_root)
    paths = AppPaths.from_root(app_root)
    paths.settings_file.write_text(
        '[sip]\nregistrar = "pbx.example.com"\nusername = "1001"\ntransport = "tls"\n',
        encoding="utf-8")
    ctx = build(parse_args(["--no-sync", "--data-dir", str(app_root), "--demo-rows", "0",
                            "--lang", "en"]))
    assert isinstance(ctx, AppContext)
    try:
        w = ctx.window
        with qtbot.waitExposed(w):
            w.show()
        qtbot.waitUntil(lambda: "phone could not start" in w.statusBar().currentMessage())
        assert "CA file" in w.statusBar().currentMessage()
        assert w.findChild(QWidget, "softphonePanel") is None
        assert ctx.stoppers == []
        assert select_row(ctx, 0)
    finally:
        ctx.close()


def test_recorded_call_plays_from_the_timeline(ctx: AppContext, qtbot,  # type: ignore[no-untyped-def]
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A call with a finished recording shows ▶ and opens the WAV in the system player;
    one still being written (or missing) offers nothing to play."""
    from PySide6.QtGui import QDesktopServices

    from agent_desktop.store.models import CallLog, Recording

    cid = select_row(ctx, 0)
    wav = ctx.paths.recordings_dir / "2026-11" / "call.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF")
    with ctx.db.transaction() as s:
        done = CallLog(customer_id=cid, direction="out", number="+8613800138000",
                       state="ended", outcome="answered", talk_seconds=30.0,
                       started_at="2026-11-22T01:00:00.000+00:00")
        live = CallLog(customer_id=cid, direction="out", number="+8613800138000",
                       state="ended", outcome="answered", talk_seconds=5.0,
                       started_at="2026-11-21T01:00:00.000+00:00")
        s.add_all([done, live])
        s.flush()
        s.add(Recording(call_log_id=done.id, path="2026-11/call.wav", state="complete",
                        duration_s=30.0))
        s.add(Recording(call_log_id=live.id, path="2026-11/other.wav", state="recording"))
    ctx.window.refresh_customer(cid)
    pane = ctx.window.detail
    assert pane.calls.count() == 2
    assert pane.calls.item(0).text().startswith("▶ ")
    assert not pane.calls.item(1).text().startswith("▶")
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl",
                        lambda url: opened.append(url.toLocalFile()) or True)  # type: ignore[func-returns-value]
    pane.calls.setCurrentRow(1)
    assert not pane.play.isEnabled()
    pane.calls.setCurrentRow(0)
    assert pane.play.isEnabled()
    with qtbot.waitSignal(pane.play_recording_requested) as sig:
        pane.play.click()
    assert sig.args == ["2026-11/call.wav"]
    assert opened == [str(wav)]
    wav.unlink()  # gone from disk (e.g. cleaned up): said plainly, nothing opened
    pane.play.click()
    assert "not on this computer" in ctx.window.statusBar().currentMessage()
    assert opened == [str(wav)]


def test_start_up_repairs_a_search_index_left_suspended(app_root: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    """A first download killed mid-way leaves the search triggers dropped; the next start
    puts them back after the first paint, even with sync turned off."""
    from agent_desktop.search import CustomerSearch
    from sync.client.bulk_apply import suspend_search_triggers

    seed(app_root)
    paths = AppPaths.from_root(app_root)
    db = Database.open(paths.database)
    with db.transaction(applying_remote=True) as s:
        assert suspend_search_triggers(s)
    with db.transaction(applying_remote=True) as s:
        s.add(Customer(name="Dora Unindexed"))
    search = CustomerSearch(db, PhoneNormalizer("CN"))
    assert search.page("Dora", None, 10).rows == []
    db.close()
    ctx = make(app_root)
    try:
        ctx.window.show()
        qtbot.waitUntil(lambda: [r.name for r in ctx.search.page("Dora", None, 10).rows]
                        == ["Dora Unindexed"], timeout=10_000)
    finally:
        ctx.close()
