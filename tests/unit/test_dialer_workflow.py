"""The pieces wired as app.py wires them: CallService (fake phone) → PowerDialer →
WrapupDialog → WrapupService → next call; busy numbers retried; an incoming call during
wrap-up never loses the draft; the wrap-up-first setting blocks the dialer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.dialer import DialerMode, DialerState, EntryStatus, PowerDialer
from agent_desktop.dialplan import DialPlan
from agent_desktop.phone import CallState, FakePhoneBackend
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog
from agent_desktop.wrapup import WrapupService
from tests.unit.test_dialer import CN, DE
from tests.unit.test_wrapup import FakeClock, make_customer, make_db, make_settings
from ui.wrapup_dialog import WrapupDialog

pytestmark = pytest.mark.qt_log_ignore(
    r"This plugin does not support (raise|propagateSizeHints|grabbing the keyboard)")


class NoCallers:
    def caller_id(self, number: str) -> int | None:
        return None


class Wired:
    def __init__(self, tmp_path: Path, qtbot: QtBot, **settings: object) -> None:
        self.db: Database = make_db(tmp_path)
        self.settings = make_settings(tmp_path, **settings)
        self.phone = FakePhoneBackend()
        self.calls = CallService(self.db, self.phone,
                                 DialPlan(PhoneNormalizer("CN"), "sim.local"), NoCallers())
        # 10:00 UTC: inside the calling window in Shanghai and Berlin.
        self.clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
        self.wrapups = WrapupService(self.db, self.settings)
        self.dialog = WrapupDialog(self.wrapups)
        qtbot.addWidget(self.dialog)
        self.dialer = PowerDialer(self.db, self.settings, self.calls.dial,
                                  can_dial=self.wrapups.can_dial, clock=self.clock,
                                  local_tz=UTC, tick_interval_ms=0)
        # The wiring app.py does:
        self.calls.call_ended.connect(self.dialer.on_call_ended)
        self.calls.call_ended.connect(
            lambda lid, outcome, _r: self.dialog.show_wrapup(lid) if outcome == "answered"
            else None)
        self.wrapups.wrapup_saved.connect(self.dialer.on_wrapup_saved)

    def phone_call(self) -> int:
        return max(self.phone.calls)

    def answer_and_hang_up(self) -> None:
        cid = self.phone_call()
        self.phone.simulate_state(cid, CallState.CONNECTED, 200, "OK")
        self.phone.simulate_state(cid, CallState.DISCONNECTED, 200, "Normal call clearing")


def test_power_session_dials_wraps_up_and_dials_the_next(tmp_path: Path, qtbot: QtBot) -> None:
    w = Wired(tmp_path, qtbot)
    a = make_customer(w.db, "甲", (CN,))
    b = make_customer(w.db, "乙", (DE,))
    w.dialer.set_mode(DialerMode.POWER)
    w.dialer.load([a, b])
    w.dialer.start()
    assert w.phone.requests[-1][0] == "dial" and CN in str(w.phone.requests[-1][2])
    w.answer_and_hang_up()
    assert w.dialog.isVisible() and w.dialer.state is DialerState.WRAPUP
    qtbot.keyClick(w.dialog.dispositions, Qt.Key.Key_1)
    qtbot.keyClick(w.dialog.dispositions, Qt.Key.Key_Return)
    assert w.phone.requests[-1][0] == "dial" and DE in str(w.phone.requests[-1][2])
    w.phone.simulate_state(w.phone_call(), CallState.DISCONNECTED, 486, "Busy Here")
    assert w.dialer.entries[1].status is EntryStatus.RETRY
    w.clock.advance(minutes=60)
    w.dialer.tick()
    assert w.dialer.entries[1].attempts == 2 and len(w.phone.calls) == 3
    w.answer_and_hang_up()
    qtbot.keyClick(w.dialog.dispositions, Qt.Key.Key_2)
    qtbot.keyClick(w.dialog.dispositions, Qt.Key.Key_Return)
    assert w.dialer.state is DialerState.FINISHED
    with w.db.session() as s:
        dispositions = [c.disposition for c in s.query(CallLog).order_by(CallLog.id)]
    assert dispositions == ["Interested", None, "Not interested"]


def test_incoming_call_during_wrapup_keeps_the_draft(tmp_path: Path, qtbot: QtBot) -> None:
    w = Wired(tmp_path, qtbot)
    a = make_customer(w.db, "甲", (CN,))
    first = w.calls.dial(a, CN)
    w.answer_and_hang_up()
    assert w.dialog.current_call() == first
    qtbot.keyClick(w.dialog.dispositions, Qt.Key.Key_3)
    w.dialog.notes.setFocus()
    qtbot.keyClicks(w.dialog.notes, "wants a call back")
    incoming = w.phone.simulate_incoming("+8613900139000", "Caller")
    assert w.dialog.isVisible() and w.dialog.current_call() == first
    w.phone.simulate_state(incoming, CallState.CONNECTED, 200, "OK")
    w.phone.simulate_state(incoming, CallState.DISCONNECTED, 200, "")
    [p1, p2] = w.wrapups.pending_drafts()
    assert p1.call_log_id == first and p1.data.notes == "wants a call back"
    assert w.dialog.queued() == [p2.call_log_id]


def test_wrapup_required_blocks_the_next_dial(tmp_path: Path, qtbot: QtBot) -> None:
    w = Wired(tmp_path, qtbot, wrapup__required_before_next_call=True)
    a = make_customer(w.db, "甲", (CN,))
    b = make_customer(w.db, "乙", (DE,))
    messages: list[str] = []
    w.dialer.message.connect(messages.append)
    w.calls.dial(a, CN)  # a manual call, answered, then the agent starts the dialer
    w.answer_and_hang_up()
    w.dialog.reject()  # Esc: wrap-up left pending
    w.dialer.set_mode(DialerMode.POWER)
    w.dialer.load([b])
    w.dialer.start()
    assert len(w.phone.calls) == 1 and "Wrap up the call with 甲" in messages[-1]
    w.dialog.show_next_pending()
    qtbot.keyClick(w.dialog.dispositions, Qt.Key.Key_1)
    qtbot.keyClick(w.dialog.dispositions, Qt.Key.Key_Return)
    assert len(w.phone.calls) == 2, "saving the wrap-up released the dialer"
