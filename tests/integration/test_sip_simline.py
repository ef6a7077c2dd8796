"""Real pjsua2 engine + call workflow against our simulated customer line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.phone import CallState, MediaStats, RegState
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog
from tests.integration.conftest import EngineFactory
from tests.integration.rig.simline import SimLine

pytestmark = pytest.mark.integration


def log_row(db: Database, log_id: int) -> CallLog:
    with db.session() as s:
        row = s.get(CallLog, log_id)
        assert row is not None
        return row


def test_engine_starts_in_direct_mode(engine_factory: EngineFactory) -> None:
    engine = engine_factory()
    state, _code, text = engine.registration_state()
    assert state == RegState.DIRECT and "Direct" in text
    assert engine.local_address.startswith("127.0.0.1:")


@pytest.mark.parametrize(
    ("user", "outcome", "human", "code"),
    [
        ("busy", "busy", "Busy", 486),
        ("reject", "rejected", "Declined by the customer", 603),
        ("notfound", "failed", "Number not found", 404),
    ],
)
def test_failed_calls_are_logged(simline: SimLine, engine_factory: EngineFactory,
                                 service_for: Callable[..., CallService], db: Database,
                                 qtbot: QtBot, user: str, outcome: str, human: str,
                                 code: int) -> None:
    svc = service_for(engine_factory(), simline.domain)
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        log_id = svc.dial(None, f"sip:{user}@{simline.domain}")
    assert ended.args == [log_id, outcome, human]
    row = log_row(db, log_id)
    assert (row.state, row.outcome, row.sip_code, row.answered_at) == ("ended", outcome, code,
                                                                       None)


def test_answer_play_hold_mute_dtmf_and_hang_up(
        simline: SimLine, engine_factory: EngineFactory,
        service_for: Callable[..., CallService], db: Database, qtbot: QtBot) -> None:
    engine = engine_factory()
    svc = service_for(engine, simline.domain)
    states: list[str] = []
    svc.call_state.connect(lambda _i, s: states.append(s))
    stats: list[MediaStats] = []
    svc.media_stats.connect(lambda _i, st: stats.append(st))
    start = len(simline.lines)
    with qtbot.waitSignal(svc.call_state, timeout=5000,
                          check_params_cb=lambda _i, s: s == CallState.CONNECTED):
        log_id = svc.dial(None, "sip:answer@" + simline.domain)
    assert states[:2] == [CallState.CALLING, CallState.RINGING]
    qtbot.waitUntil(lambda: log_row(db, log_id).state == "connected", timeout=2000)
    simline.wait_line(r"^MEDIA \d+", 5, start)
    qtbot.waitUntil(lambda: len(stats) >= 2 and stats[-1].rx_packets > 20, timeout=5000)
    assert stats[-1].codec == "G722" and stats[-1].rx_loss_percent == 0.0

    svc.send_dtmf(log_id, "5#")
    simline.wait_line(r"^DTMF \d+ 5$", 5, start)
    simline.wait_line(r"^DTMF \d+ #$", 5, start)

    with qtbot.waitSignal(svc.hold_changed, timeout=3000) as held:
        svc.hold(log_id, True)
    assert held.args == [log_id, True]
    with qtbot.waitSignal(svc.mute_changed, timeout=3000) as muted:
        svc.set_mute(log_id, True)
    assert muted.args == [log_id, True]
    svc.hold(log_id, False)
    svc.set_mute(log_id, False)

    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        svc.hangup(log_id)
    assert ended.args == [log_id, "answered", "Call ended by you"]
    row = log_row(db, log_id)
    assert row.outcome == "answered" and row.answered_at and row.talk_seconds > 0.5
    simline.wait_line(r"^END \d+", 5, start)


def test_customer_hangs_up(simline: SimLine, engine_factory: EngineFactory,
                           service_for: Callable[..., CallService], db: Database,
                           qtbot: QtBot) -> None:
    svc = service_for(engine_factory(), simline.domain)
    with qtbot.waitSignal(svc.call_ended, timeout=8000) as ended:
        log_id = svc.dial(None, "sip:hangup@" + simline.domain)
    assert ended.args == [log_id, "answered", "Customer hung up"]
    assert log_row(db, log_id).talk_seconds >= 1.0


def test_never_answer_is_cancelled_after_the_timeout(
        simline: SimLine, engine_factory: EngineFactory,
        service_for: Callable[..., CallService], db: Database, qtbot: QtBot) -> None:
    svc = service_for(engine_factory(), simline.domain, timeout_s=2)
    start = len(simline.lines)
    with qtbot.waitSignal(svc.call_ended, timeout=8000) as ended:
        log_id = svc.dial(None, "sip:noanswer@" + simline.domain)
    assert ended.args == [log_id, "no_answer", "No answer after 2 s"]
    row = log_row(db, log_id)
    assert (row.sip_code, row.outcome) == (487, "no_answer")
    simline.wait_line(r"^END \d+ 487", 5, start)


def test_number_maps_to_mode_by_last_digit(simline: SimLine, engine_factory: EngineFactory,
                                           service_for: Callable[..., CallService],
                                           qtbot: QtBot) -> None:
    svc = service_for(engine_factory(), simline.domain)
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        svc.dial(None, "+86 138 0013 8002")  # ends in 2: busy
    assert ended.args[1:] == ["busy", "Busy"]


def test_blind_transfer_hands_the_customer_over(simline: SimLine,
                                                engine_factory: EngineFactory,
                                                service_for: Callable[..., CallService],
                                                db: Database, qtbot: QtBot) -> None:
    svc = service_for(engine_factory(), simline.domain)
    start = len(simline.lines)
    with qtbot.waitSignal(svc.call_state, timeout=5000,
                          check_params_cb=lambda _i, s: s == CallState.CONNECTED):
        log_id = svc.dial(None, "sip:answer@" + simline.domain)
    with qtbot.waitSignal(svc.call_ended, timeout=8000) as ended:
        svc.transfer(log_id, "sip:hangup@" + simline.domain)
    assert ended.args == [log_id, "answered", "Transferred to sip:hangup@" + simline.domain]
    # the customer's side (the line) really placed the new call we sent it to
    simline.wait_line(r"^CALL \d+ user=hangup mode=hangup", 5, start)


def test_simline_process_helper_serves_calls_and_stops_cleanly(
        engine_factory: EngineFactory, service_for: Callable[..., CallService],
        qtbot: QtBot) -> None:
    from sip.simline_process import SimLineProcess

    line = SimLineProcess(ring_ms=100, hangup_after_s=0.5)
    domain = line.start()
    try:
        assert domain.startswith("127.0.0.1:") and line.port > 0
        svc = service_for(engine_factory(), domain)
        # its stdout is closed after READY: the line must keep working regardless
        with qtbot.waitSignal(svc.call_ended, timeout=8000) as ended:
            svc.dial(None, "+86 138 0013 8005")  # ends in 5: answers, then hangs up
        assert ended.args[1:] == ["answered", "Customer hung up"]
    finally:
        assert line.stop() == 0


def test_simline_process_reports_a_start_failure() -> None:
    from sip.simline_process import SimLineError, SimLineProcess

    with pytest.raises(SimLineError, match=r"did not start.*does not exist"):
        SimLineProcess(wav=Path("/nonexistent.wav")).start()


def test_display_name_reaches_the_customer(simline: SimLine, engine_factory: EngineFactory,
                                           service_for: Callable[..., CallService],
                                           qtbot: QtBot) -> None:
    """sip.display_name is what the called phone shows (From display name)."""
    svc = service_for(engine_factory(display_name="王 Agent Ann"), simline.domain)
    with qtbot.waitSignal(svc.call_ended, timeout=5000):
        svc.dial(None, f"sip:busy@{simline.domain}")
    simline.wait_line(r'^CALL \d+ user=busy mode=busy from="王 Agent Ann" '
                      r"<sip:agent@127\.0\.0\.1(:\d+)?>", 5)
