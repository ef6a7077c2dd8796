"""Softphone panel (real widgets, real CallService and DB) driven against the fake phone."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.dialplan import DialPlan
from agent_desktop.phone import CallState, FakePhoneBackend, MediaStats, RegState
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog
from tests.unit.doubles import Callers
from ui.softphone_panel import SoftphonePanel, format_elapsed

# The offscreen platform plugin warns about window hints it cannot honour.
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")





class Rig:
    def __init__(self, db: Database, qtbot: QtBot, callers: dict[str, int]) -> None:
        self.fake = FakePhoneBackend()
        self.calls = CallService(db, self.fake, DialPlan(PhoneNormalizer("CN"), "sim.local"),
                                 Callers(callers), no_answer_timeout_s=30)
        self.panel = SoftphonePanel(self.calls, self.fake)
        qtbot.addWidget(self.panel)
        self.panel.show()
        qtbot.waitExposed(self.panel)
        self.panel.activateWindow()  # window-wide shortcuts need the active window
        qtbot.waitUntil(lambda: QApplication.activeWindow() is self.panel, timeout=3000)


@pytest.fixture
def rig(db: Database, qtbot: QtBot, customer_id: int) -> Rig:
    return Rig(db, qtbot, {"+8613800138000": customer_id})


def test_customer_numbers_and_ctrl_d_dials_the_chosen_one(rig: Rig, customer_id: int,
                                                          qtbot: QtBot, db: Database) -> None:
    p = rig.panel
    assert not p.dial_button.isEnabled()
    p.set_customer(customer_id)
    assert p.customer_label.text() == "王小明"
    assert [p.number_combo.itemText(i) for i in range(p.number_combo.count())] == [
        "mobile: 138 0013 8000", "office: 010 6552 9988"]
    p.number_combo.setCurrentIndex(1)
    with qtbot.waitSignal(p.call_placed) as placed:
        qtbot.keyClick(p, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert rig.fake.requests == [("dial", 1, "sip:+861065529988@sim.local")]
    assert p.state_label.text() == "Calling…"
    assert not p.dial_button.isEnabled() and p.hangup_button.isEnabled()
    with db.session() as s:
        row = s.get(CallLog, placed.args[0])
        assert row is not None and row.customer_id == customer_id


def test_call_progress_timer_controls_and_end_reason(rig: Rig, customer_id: int,
                                                     qtbot: QtBot) -> None:
    p = rig.panel
    p.set_customer(customer_id)
    p.dial_selected()
    rig.fake.simulate_state(1, CallState.RINGING, 180, "Ringing")
    assert p.state_label.text() == "Ringing…"
    assert not p.hold_button.isEnabled()
    rig.fake.simulate_state(1, CallState.CONNECTED, 200, "OK")
    assert p.state_label.text() == "Connected" and p.timer_label.text() == "00:00"
    assert p.hold_button.isEnabled() and p.mute_button.isEnabled()
    qtbot.waitUntil(lambda: p.timer_label.text() == "00:01", timeout=2500)

    rig.fake.media_stats.emit(1, MediaStats("G722", 16000, 2.25, 0.5, 100, 100))
    assert p.quality_label.text() == "G722 · jitter 2.2 ms · loss 0.5 %"

    qtbot.mouseClick(p.hold_button, Qt.MouseButton.LeftButton)
    assert ("hold", 1, None) in rig.fake.requests
    assert p.hold_button.isChecked() and p.hold_button.text() == "Resume"
    assert p.state_label.text() == "On hold"
    qtbot.mouseClick(p.hold_button, Qt.MouseButton.LeftButton)
    assert ("resume", 1, None) in rig.fake.requests and not p.hold_button.isChecked()
    qtbot.mouseClick(p.mute_button, Qt.MouseButton.LeftButton)
    assert ("mute", 1, True) in rig.fake.requests and p.mute_button.text() == "Unmute"

    qtbot.mouseClick(p.keypad_button, Qt.MouseButton.LeftButton)
    assert p.keypad.isVisible()
    qtbot.mouseClick(p.keypad.buttons["5"], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(p.keypad.buttons["#"], Qt.MouseButton.LeftButton)
    assert [r for r in rig.fake.requests if r[0] == "dtmf"] == [("dtmf", 1, "5"),
                                                                ("dtmf", 1, "#")]

    qtbot.keyClick(p, Qt.Key.Key_Escape)
    assert ("hangup", 1, None) in rig.fake.requests
    rig.fake.simulate_state(1, CallState.DISCONNECTED, 200, "Normal call clearing")
    assert p.state_label.text() == "Call ended: Call ended by you"
    assert p.dial_button.isEnabled() and not p.hangup_button.isEnabled()
    assert not p.esc_shortcut.isEnabled()


def test_busy_shows_human_reason(rig: Rig, customer_id: int) -> None:
    p = rig.panel
    p.set_customer(customer_id)
    p.dial_selected()
    rig.fake.simulate_state(1, CallState.DISCONNECTED, 486, "Busy Here")
    assert p.state_label.text() == "Call ended: Busy"


def test_manual_dial_pad_and_bad_number(rig: Rig, qtbot: QtBot) -> None:
    p = rig.panel
    for key in "1001":
        qtbot.mouseClick(p.keypad.buttons[key], Qt.MouseButton.LeftButton)
    assert p.manual_edit.text() == "1001"
    qtbot.keyClick(p.manual_edit, Qt.Key.Key_Return)
    assert rig.fake.requests == [("dial", 1, "sip:1001@sim.local")]
    assert p.manual_edit.text() == ""
    rig.fake.simulate_state(1, CallState.DISCONNECTED, 404, "Not Found")
    assert p.state_label.text() == "Call ended: Number not found"
    qtbot.keyClicks(p.manual_edit, "12ab")
    qtbot.keyClick(p.manual_edit, Qt.Key.Key_Return)
    assert p.message_label.text() == "'12ab' cannot be dialled: 'a' is not a digit."
    assert len(rig.fake.requests) == 1


def test_dial_without_customer_says_why(rig: Rig, qtbot: QtBot) -> None:
    qtbot.keyClick(rig.panel, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert rig.panel.message_label.text() == "Select a customer with a phone number first."
    assert rig.fake.requests == []


def test_incoming_known_caller_opens_customer_and_answers(rig: Rig, customer_id: int,
                                                          qtbot: QtBot) -> None:
    p = rig.panel
    with qtbot.waitSignal(p.open_customer_requested) as opened:
        call_id = rig.fake.simulate_incoming("+8613800138000", "Wang")
    assert opened.args == [customer_id]
    assert p.banner.isVisible()
    assert p.banner.title.text() == "Incoming call: 王小明 (+8613800138000)"
    assert p.banner.customer_button.text() == "Open customer"
    qtbot.mouseClick(p.banner.answer_button, Qt.MouseButton.LeftButton)
    assert ("answer", call_id, None) in rig.fake.requests
    assert not p.banner.isVisible()
    rig.fake.simulate_state(call_id, CallState.CONNECTED, 200, "OK")
    assert p.state_label.text() == "Connected"
    rig.fake.simulate_state(call_id, CallState.DISCONNECTED, 200, "OK")
    assert p.state_label.text() == "Call ended: Caller hung up"


def test_incoming_unknown_offers_new_customer_and_missed(rig: Rig, qtbot: QtBot) -> None:
    p = rig.panel
    call_id = rig.fake.simulate_incoming("5551234", "")
    assert p.banner.customer_button.text() == "New customer…"
    with qtbot.waitSignal(p.new_customer_requested) as new:
        qtbot.mouseClick(p.banner.customer_button, Qt.MouseButton.LeftButton)
    assert new.args == ["5551234"]
    rig.fake.simulate_state(call_id, CallState.DISCONNECTED, 487, "Request Terminated")
    assert not p.banner.isVisible()
    assert p.state_label.text() == "Missed call from 5551234"


def test_incoming_reject(rig: Rig, qtbot: QtBot) -> None:
    p = rig.panel
    call_id = rig.fake.simulate_incoming("5551234", "")
    qtbot.mouseClick(p.banner.reject_button, Qt.MouseButton.LeftButton)
    assert ("reject", call_id, 603) in rig.fake.requests


def test_transfer(rig: Rig, customer_id: int, qtbot: QtBot) -> None:
    p = rig.panel
    p.set_customer(customer_id)
    p.dial_selected()
    rig.fake.simulate_state(1, CallState.CONNECTED, 200, "OK")
    qtbot.mouseClick(p.transfer_button, Qt.MouseButton.LeftButton)
    assert p.transfer_row.isVisible()
    qtbot.keyClicks(p.transfer_edit, "1002")
    qtbot.keyClick(p.transfer_edit, Qt.Key.Key_Return)
    assert ("transfer", 1, "sip:1002@sim.local") in rig.fake.requests
    assert p.message_label.text() == "Transferring to 1002…"


def test_registration_label(rig: Rig) -> None:
    p = rig.panel
    assert p.reg_label.text() == "● Direct calls (no registrar)"
    rig.fake.simulate_registration(RegState.FAILED, 403, "Wrong password (403)")
    assert p.reg_label.text() == "✖ Wrong password (403)"


def test_format_elapsed() -> None:
    assert format_elapsed(0) == "00:00"
    assert format_elapsed(75.9) == "01:15"
    assert format_elapsed(3725) == "1:02:05"


def test_pause_recording_button(rig: Rig, customer_id: int, qtbot: QtBot) -> None:
    p = rig.panel
    p.set_customer(customer_id)
    p.dial_selected()
    assert not p.pause_rec_button.isEnabled()
    rig.fake.simulate_state(1, CallState.CONNECTED, 200, "OK")
    qtbot.mouseClick(p.pause_rec_button, Qt.MouseButton.LeftButton)
    assert ("pause_recording", 1, True) in rig.fake.requests
    assert p.pause_rec_button.isChecked() and p.pause_rec_button.text() == "Resume recording"
    qtbot.mouseClick(p.pause_rec_button, Qt.MouseButton.LeftButton)
    assert ("pause_recording", 1, False) in rig.fake.requests
    assert not p.pause_rec_button.isChecked()
    rig.fake.recording = False
    qtbot.mouseClick(p.pause_rec_button, Qt.MouseButton.LeftButton)
    assert p.message_label.text() == "This call is not being recorded."
    assert not p.pause_rec_button.isChecked()


def test_answering_a_second_call_holds_the_first(rig: Rig, customer_id: int,
                                                 qtbot: QtBot) -> None:
    p = rig.panel
    first = p.dial_customer(customer_id)
    assert first is not None
    rig.fake.simulate_state(1, CallState.CONNECTED, 200, "OK")
    second = rig.fake.simulate_incoming("5551234", "Bob")
    assert p.banner.isVisible() and p.banner.title.text() == "Incoming call: Bob (5551234)"
    qtbot.keyClick(p, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert rig.fake.requests[-2:] == [("hold", 1, None), ("answer", second, None)]
    assert p.current_call is not None and p.current_call != first


def test_dial_customer_for_reminders_and_list(rig: Rig, customer_id: int) -> None:
    log_id = rig.panel.dial_customer(customer_id, "010 6552 9988")
    assert log_id is not None
    assert rig.fake.requests == [("dial", 1, "sip:+861065529988@sim.local")]
    assert rig.panel.number_combo.currentData() == "010 6552 9988"
