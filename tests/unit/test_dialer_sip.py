"""The power dialer against the real phone: our pjsua2 SipEngine dialling our simulated
customer line, whose answer/busy/decline behaviour is chosen by the number's last digit.
Power mode: answered → real wrap-up dialog → next; busy → retried after N minutes (the
dialer's clock is injected; the calls are real); declined → final."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agent_desktop.calls import CallService
from agent_desktop.dialer import DialerMode, DialerState, EntryStatus, PowerDialer
from agent_desktop.dialplan import DialPlan
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.models import CallLog, Outbox
from agent_desktop.wrapup import WrapupService
from tests.unit.test_wrapup import FakeClock, make_customer, make_db, make_settings
from ui.wrapup_dialog import WrapupDialog

pytestmark = [
    pytest.mark.integration,
    pytest.mark.qt_log_ignore(
        r"This plugin does not support (raise|propagateSizeHints|grabbing the keyboard)"),
]

ANSWERS, BUSY, DECLINES = "+8613800138000", "+8613800138002", "+8613800138004"


class NoCallers:
    def caller_id(self, number: str) -> int | None:
        return None


@pytest.fixture
def line() -> Iterator[object]:
    from tests.integration.rig.simline import SimLine

    sim = SimLine(ring_ms=100)
    yield sim
    sim.kill()  # a dead call may still be up on the line's side; do not wait for it
    sim.stop()


@pytest.fixture
def engine(qtbot: QtBot) -> Iterator[object]:
    from sip.config import SipConfig
    from sip.engine import SipEngine

    e = SipEngine(SipConfig(bind_address="127.0.0.1", rtp_timeout_s=5))
    e.start()
    yield e
    e.stop()


def test_power_dialer_with_real_calls(tmp_path: Path, qtbot: QtBot, line: object,
                                      engine: object) -> None:
    db = make_db(tmp_path)
    settings = make_settings(tmp_path, dialer__retry_after_min=15, dialer__max_attempts=2,
                             dialer__calling_hours="00:00-23:59")
    ids = [make_customer(db, "answers", (ANSWERS,)), make_customer(db, "busy", (BUSY,)),
           make_customer(db, "declines", (DECLINES,))]
    calls = CallService(db, engine, DialPlan(PhoneNormalizer("CN"),  # type: ignore[arg-type]
                                             line.domain), NoCallers())  # type: ignore[attr-defined]
    wrapups = WrapupService(db, settings)
    dialog = WrapupDialog(wrapups)
    qtbot.addWidget(dialog)
    clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    dialer = PowerDialer(db, settings, calls.dial, clock=clock, tick_interval_ms=0,
                         can_dial=lambda: wrapups.can_dial(calls.active_log_ids()))
    calls.call_ended.connect(dialer.on_call_ended)
    calls.call_ended.connect(lambda lid, outcome, _r: dialog.show_wrapup(lid)
                             if outcome == "answered" else None)
    wrapups.wrapup_saved.connect(dialer.on_wrapup_saved)
    dialer.set_mode(DialerMode.POWER)
    dialer.load(ids)

    dialer.start()
    qtbot.waitUntil(lambda: bool(calls.active_log_ids())
                    and calls.state_of(calls.active_log_ids()[0]) == "connected",
                    timeout=10_000)
    calls.hangup(calls.active_log_ids()[0])
    qtbot.waitUntil(dialog.isVisible, timeout=10_000)
    qtbot.keyClick(dialog.dispositions, Qt.Key.Key_1)
    qtbot.keyClick(dialog.dispositions, Qt.Key.Key_Return)
    # Next: busy (486 from the line) → retry scheduled; then declined (603) → final.
    qtbot.waitUntil(lambda: dialer.state is DialerState.WAITING, timeout=10_000)
    by_name = {e.name: e for e in dialer.entries}
    assert by_name["answers"].status is EntryStatus.DONE
    assert by_name["busy"].status is EntryStatus.RETRY and by_name["busy"].note.startswith(
        "Busy; attempt 1 of 2")
    assert by_name["declines"].status is EntryStatus.DONE
    assert by_name["declines"].note == "Declined by the customer"
    clock.advance(minutes=15)
    dialer.tick()
    qtbot.waitUntil(lambda: dialer.state is DialerState.FINISHED, timeout=10_000)
    assert by_name["busy"].attempts == 2
    assert by_name["busy"].note == "Busy; gave up after 2 attempts."
    with db.session() as s:
        rows = s.scalars(select(CallLog).order_by(CallLog.id)).all()
        outbox = s.scalars(select(Outbox).where(Outbox.entity == "call_log")).all()
    assert [(r.outcome, r.sip_code) for r in rows] == [
        ("answered", 200), ("busy", 486), ("rejected", 603), ("busy", 486)]
    assert rows[0].disposition == "Interested" and rows[0].wrapped_up_at
    assert any('"disposition": "Interested"' in o.changed_fields for o in outbox)
