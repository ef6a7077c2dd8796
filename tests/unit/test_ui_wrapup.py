"""The real wrap-up dialog driven by keyboard: hotkeys, Enter saves atomically, Esc keeps a
draft, a crash reopens it, a second call waits in a queue, bad input is named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QInputMethodEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agent_desktop.settings import Settings
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Customer, Note, Outbox, Tag, Task, utcnow
from agent_desktop.wrapup import WrapupService
from tests.unit.test_wrapup import make_call, make_customer, make_db, make_settings
from ui.wrapup_dialog import (
    DispositionModel,
    PendingWrapupsButton,
    WrapupDialog,
    to_qdatetime,
)

# The offscreen platform cannot raise windows or propagate size hints; it says so on show().
pytestmark = pytest.mark.qt_log_ignore(
    r"This plugin does not support (raise|propagateSizeHints|grabbing the keyboard)")


def real_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def env(tmp_path: Path, qtbot: QtBot) -> tuple[Database, Settings, WrapupService, WrapupDialog]:
    db = make_db(tmp_path)
    settings = make_settings(tmp_path)
    svc = WrapupService(db, settings, clock=real_now, agent="alice")
    dlg = WrapupDialog(svc)
    qtbot.addWidget(dlg)
    return db, settings, svc, dlg


Env = tuple[Database, Settings, WrapupService, WrapupDialog]


def recent_call(db: Database, customer_id: int | None) -> int:
    return make_call(db, customer_id, started=real_now() - timedelta(minutes=3))


def open_dialog(qtbot: QtBot, dlg: WrapupDialog, call_id: int) -> None:
    dlg.show_wrapup(call_id)
    qtbot.waitExposed(dlg)
    dlg.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is dlg.dispositions)


def commit_text(widget: object, text: str) -> None:
    """Non-ASCII input the way an input method delivers it (keyClicks would abort)."""
    ev = QInputMethodEvent()
    ev.setCommitString(text)
    QApplication.sendEvent(widget, ev)  # type: ignore[arg-type]


def test_disposition_model_passes_the_model_tester(qtmodeltester: object) -> None:
    model = DispositionModel()
    model.set_names([f"d{i}" for i in range(12)])
    qtmodeltester.check(model)  # type: ignore[attr-defined]
    assert model.data(model.index(0, 0)) == "1  d0"
    assert model.data(model.index(10, 0)) == "   d10"
    assert model.data(model.index(3, 0), DispositionModel.NAME_ROLE) == "d3"


def test_hotkeys_choose_and_enter_saves_everything_atomically(qtbot: QtBot, env: Env) -> None:
    db, _settings, _svc, dlg = env
    cid = make_customer(db, "王小明", tags=("vip",))
    call = recent_call(db, cid)
    open_dialog(qtbot, dlg, call)
    assert "王小明" in dlg.header.text()
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_3)  # "Call back" → follow-up ticked
    assert dlg.form_data().disposition == "Call back"
    assert dlg.follow_up.isChecked()
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_1)
    assert dlg.form_data().disposition == "Interested"
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is dlg.tags
    qtbot.keyClicks(dlg.tags, "demo, hot")
    qtbot.keyClick(dlg.tags, Qt.Key.Key_Tab)
    commit_text(dlg.notes, "客户想要报价 ")
    qtbot.keyClicks(dlg.notes, "123")  # digits while typing are text, not hotkeys
    assert dlg.form_data().disposition == "Interested"
    dlg.status.setCurrentIndex(dlg.status.findData("interested"))
    due = real_now() + timedelta(days=1)
    dlg.follow_up_at.setDateTime(to_qdatetime(due))
    with db.session() as s:
        first = s.scalar(select(Outbox.mutation_id).order_by(Outbox.mutation_id.desc())) or 0
    with qtbot.waitSignal(dlg.saved) as blocker:
        qtbot.keyClick(dlg.notes, Qt.Key.Key_Return)
    assert blocker.args == [call]
    assert not dlg.isVisible()
    with db.session() as s:
        row = s.get(CallLog, call)
        c = s.get(Customer, cid)
        assert row is not None and c is not None
        assert row.disposition == "Interested" and row.wrapup_notes == "客户想要报价 123"
        assert c.status == "interested"
        assert sorted(t.name for t in s.scalars(select(Tag))) == ["demo", "hot", "vip"]
        task = s.scalars(select(Task)).one()
        assert abs(datetime.fromisoformat(task.due_at) - due) < timedelta(minutes=1)
        assert s.scalars(select(Note)).one().body == "客户想要报价 123"
        entities = sorted(o.entity for o in s.scalars(
            select(Outbox).where(Outbox.mutation_id > first)))
    assert entities == ["call_log", "customer", "note", "tag", "tag", "task"]


def test_escape_keeps_a_pending_draft_with_what_was_typed(qtbot: QtBot, env: Env) -> None:
    db, _settings, svc, dlg = env
    call = recent_call(db, make_customer(db))
    open_dialog(qtbot, dlg, call)
    dlg.do_not_call.setFocus()  # hotkeys work from any field that is not for typing
    qtbot.keyClick(dlg.do_not_call, Qt.Key.Key_4)
    assert dlg.form_data().disposition == "Voicemail"
    dlg.notes.setFocus()
    qtbot.keyClick(dlg.notes, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)  # Alt+2 anywhere
    assert dlg.form_data().disposition == "Not interested"
    qtbot.keyClicks(dlg.notes, "left a message")
    with qtbot.waitSignal(dlg.kept_pending):
        qtbot.keyClick(dlg.notes, Qt.Key.Key_Escape)
    assert not dlg.isVisible()
    [pending] = svc.pending_drafts()
    assert pending.call_log_id == call
    assert pending.data.disposition == "Not interested"
    assert pending.data.notes == "left a message"
    with db.session() as s:
        row = s.get(CallLog, call)
        assert row is not None and row.wrapped_up_at is None


def test_draft_is_written_while_typing_and_a_crash_reopens_it(qtbot: QtBot, env: Env,
                                                              tmp_path: Path) -> None:
    db, settings, svc, dlg = env
    call = recent_call(db, make_customer(db))
    open_dialog(qtbot, dlg, call)
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_5)
    dlg.notes.setFocus()
    qtbot.keyClicks(dlg.notes, "typed before the crash")

    def on_disk() -> None:
        [p] = svc.pending_drafts()
        assert p.data.notes == "typed before the crash"

    qtbot.waitUntil(on_disk)  # debounced write, no close, no save
    # "Crash": the process state is gone; a new service and dialog over the same file.
    db2 = Database.open(tmp_path / "agent.sqlite3")
    svc2 = WrapupService(db2, settings, clock=real_now)
    dlg2 = WrapupDialog(svc2)
    qtbot.addWidget(dlg2)
    assert dlg2.show_next_pending()
    assert dlg2.current_call() == call
    assert dlg2.notes.toPlainText() == "typed before the crash"
    assert dlg2.form_data().disposition == "Wrong number"


def test_a_call_ending_during_wrapup_waits_in_the_queue(qtbot: QtBot, env: Env) -> None:
    db, _settings, svc, dlg = env
    first = recent_call(db, make_customer(db, "first"))
    open_dialog(qtbot, dlg, first)
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_1)
    dlg.notes.setFocus()
    qtbot.keyClicks(dlg.notes, "half-typed")
    second = recent_call(db, make_customer(db, "second"))  # incoming call answered & ended
    dlg.show_wrapup(second)
    assert dlg.current_call() == first and dlg.queued() == [second]
    assert "1 more waiting" in dlg.header.text()
    assert {p.call_log_id for p in svc.pending_drafts()} == {first, second}
    drafts = {p.call_log_id: p.data.notes for p in svc.pending_drafts()}
    assert drafts[first] == "half-typed", "the open draft is flushed before anything else"
    with qtbot.waitSignal(dlg.saved):
        dlg.save()
    assert dlg.isVisible() and dlg.current_call() == second
    assert dlg.notes.toPlainText() == ""


def test_no_disposition_and_past_follow_up_show_plain_messages(qtbot: QtBot, env: Env) -> None:
    db, _settings, svc, dlg = env
    call = recent_call(db, make_customer(db))
    open_dialog(qtbot, dlg, call)
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_Return)
    assert dlg.isVisible()
    assert "Choose a disposition" in dlg.banner.text()
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_1)
    assert dlg.banner.isHidden()
    dlg.follow_up.setChecked(True)
    dlg.follow_up_at.setDateTime(to_qdatetime(real_now() - timedelta(hours=2)))
    dlg.save()
    assert "is in the past" in dlg.banner.text() and dlg.isVisible()
    [pending] = svc.pending_drafts()
    assert pending.data.follow_up_at is not None


def test_empty_disposition_list_is_explained(qtbot: QtBot, env: Env) -> None:
    db, settings, _svc, dlg = env
    settings.set("wrapup.dispositions", ",")
    call = recent_call(db, make_customer(db))
    open_dialog(qtbot, dlg, call)
    assert "No dispositions are configured" in dlg.banner.text()
    dlg.save()
    assert dlg.isVisible() and "No dispositions are configured" in dlg.banner.text()


def test_customer_deleted_by_sync_while_open(qtbot: QtBot, env: Env) -> None:
    db, _settings, _svc, dlg = env
    cid = make_customer(db, "Li Lei")
    call = recent_call(db, cid)
    open_dialog(qtbot, dlg, call)
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_1)
    dlg.tags.setText("hot")
    with db.transaction(applying_remote=True) as s:
        c = s.get(Customer, cid)
        assert c is not None
        c.deleted_at = utcnow()
    with qtbot.waitSignal(dlg.warning) as blocker:
        dlg.save()
    assert "Li Lei was deleted on the server" in str(blocker.args[0])
    with db.session() as s:
        row = s.get(CallLog, call)
        assert row is not None and row.disposition == "Interested"
        call_rows = [json.loads(o.changed_fields) for o in s.scalars(
            select(Outbox).where(Outbox.entity == "call_log"))]
    assert any(r.get("disposition") == "Interested" for r in call_rows)
    # Reopening a deleted customer's call shows the reason at once and locks customer fields.
    other = recent_call(db, cid)
    dlg.show_wrapup(other)
    assert "was deleted on the server" in dlg.banner.text()
    assert not dlg.tags.isEnabled() and not dlg.follow_up.isEnabled()


def test_do_not_call_disposition_ticks_the_flag_and_shift_enter_is_a_new_line(
        qtbot: QtBot, env: Env) -> None:
    db, _settings, _svc, dlg = env
    cid = make_customer(db)
    call = recent_call(db, cid)
    open_dialog(qtbot, dlg, call)
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_6)
    assert dlg.do_not_call.isChecked()
    dlg.notes.setFocus()
    qtbot.keyClicks(dlg.notes, "a")
    qtbot.keyClick(dlg.notes, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(dlg.notes, "b")
    assert dlg.isVisible() and dlg.notes.toPlainText() == "a\nb"
    with qtbot.waitSignal(dlg.saved):
        qtbot.keyClick(dlg.notes, Qt.Key.Key_Enter)
    with db.session() as s:
        c = s.get(Customer, cid)
        assert c is not None and c.do_not_call


def test_tag_completion_replaces_only_the_last_tag(qtbot: QtBot, env: Env) -> None:
    db, _settings, _svc, dlg = env
    make_customer(db, "x", tags=("vip-gold", "hot"))
    open_dialog(qtbot, dlg, recent_call(db, make_customer(db)))
    dlg.tags.setFocus()
    qtbot.keyClicks(dlg.tags, "hot, vi")
    assert dlg._completer.completionPrefix() == "vi"
    assert dlg._completer.currentCompletion() == "vip-gold"
    dlg._completer.activated.emit("vip-gold")
    assert dlg.tags.text() == "hot, vip-gold, "
    assert dlg.form_data().tags == ["hot", "vip-gold"]


def test_a_database_failure_on_save_keeps_the_dialog_and_the_draft(
        qtbot: QtBot, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    db, _settings, svc, dlg = env
    call = recent_call(db, make_customer(db))
    open_dialog(qtbot, dlg, call)
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_1)
    dlg.flush_draft()

    def full_disk(*_a: object, **_k: object) -> None:
        raise OperationalError("INSERT", {}, Exception("database or disk is full"))

    monkeypatch.setattr(svc, "save", full_disk)
    with qtbot.assertNotEmitted(dlg.saved):
        qtbot.keyClick(dlg.dispositions, Qt.Key.Key_Return)
    assert dlg.isVisible() and "could not be saved" in dlg.banner.text()
    assert svc.pending_drafts()[0].data.disposition == "Interested"


def test_pending_button_counts_and_reopens(qtbot: QtBot, env: Env) -> None:
    db, _settings, _svc, dlg = env
    button = PendingWrapupsButton(_svc, dlg)
    qtbot.addWidget(button)
    assert button.isHidden()
    call = recent_call(db, make_customer(db))
    button.refresh()
    assert not button.isHidden() and button.text() == "1 wrap-up(s) pending"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert dlg.isVisible() and dlg.current_call() == call
    dlg.reject()  # Esc: still pending, the button stays
    assert not dlg.isVisible() and not button.isHidden()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert dlg.isVisible()
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_1)
    with qtbot.waitSignal(dlg.saved):
        qtbot.keyClick(dlg.dispositions, Qt.Key.Key_Return)
    assert button.isHidden()


def test_digits_typed_into_the_follow_up_time_edit_the_time_not_the_disposition(
        qtbot: QtBot, env: Env) -> None:
    db, _settings, _svc, dlg = env
    open_dialog(qtbot, dlg, recent_call(db, make_customer(db)))
    qtbot.keyClick(dlg.dispositions, Qt.Key.Key_2)
    dlg.follow_up.setChecked(True)
    dlg.follow_up_at.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is dlg.follow_up_at)
    before = dlg.follow_up_at.dateTime()
    qtbot.keyClick(dlg.follow_up_at, Qt.Key.Key_Up)  # arrow keys step the focused section
    qtbot.keyClicks(dlg.follow_up_at, "2030")
    assert dlg.form_data().disposition == "Not interested"
    assert dlg.follow_up_at.dateTime() != before
