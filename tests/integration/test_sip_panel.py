"""The real softphone panel on the real engine against the simulated line: what an agent
does with the keyboard, end to end (widgets offscreen, pjsua2 and SIP real)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.dialplan import DialPlan
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Customer, PhoneNumber
from tests.integration.conftest import EngineFactory
from tests.integration.rig.simline import SimLine
from ui.softphone_panel import SoftphonePanel

pytestmark = [pytest.mark.integration,
              pytest.mark.qt_log_ignore("does not support propagateSizeHints")]


def test_agent_dials_customer_talks_uses_keypad_and_hangs_up(
        simline: SimLine, engine_factory: EngineFactory, db: Database, qtbot: QtBot) -> None:
    norm = PhoneNormalizer("CN")
    n = norm.normalize("+86 138 0013 8001")  # ends in 1: the line answers and plays
    with db.transaction() as s:
        c = Customer(name="李雷", name_key="李雷")
        c.phones.append(PhoneNumber(raw=n.raw, e164=n.e164, rev_digits=n.rev_digits,
                                    valid=True, label="mobile"))
        s.add(c)
        s.flush()
        customer_id = c.id
    engine = engine_factory()
    calls = CallService(db, engine, DialPlan(norm, simline.domain), CustomerSearch(db, norm))
    panel = SoftphonePanel(calls, engine)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()  # window-wide shortcuts need the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel, timeout=3000)
    assert panel.reg_label.text() == "● Direct calls (no registrar)"

    panel.set_customer(customer_id)
    start = len(simline.lines)
    qtbot.keyClick(panel, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert panel.state_label.text() in ("Calling…", "Ringing…"), panel.message_label.text()
    qtbot.waitUntil(lambda: panel.state_label.text() == "Connected", timeout=5000)
    qtbot.waitUntil(lambda: panel.timer_label.text() == "00:01", timeout=3000)
    qtbot.waitUntil(lambda: "jitter" in panel.quality_label.text(), timeout=3000)
    assert panel.quality_label.text().startswith("G722")

    qtbot.mouseClick(panel.keypad_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.keypad.buttons["7"], Qt.MouseButton.LeftButton)
    simline.wait_line(r"^DTMF \d+ 7$", 5, start)

    qtbot.mouseClick(panel.hold_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.state_label.text() == "On hold", timeout=3000)
    qtbot.mouseClick(panel.hold_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.state_label.text() == "Connected", timeout=3000)

    qtbot.keyClick(panel, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: panel.state_label.text() == "Call ended: Call ended by you",
                    timeout=5000)
    with db.session() as s:
        row = s.query(CallLog).filter(CallLog.customer_id == customer_id).one()
        assert (row.outcome, row.direction) == ("answered", "out")
        assert row.talk_seconds >= 1.0
