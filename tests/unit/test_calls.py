"""Call workflow with the fake phone: CallLog rows created, progressed and finalised."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agent_desktop.calls import CallError, CallService, EndFacts, describe_end
from agent_desktop.dialplan import DialPlan
from agent_desktop.phone import CallState, FakePhoneBackend, MediaStats, RecordingInfo
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Outbox, Recording
from tests.unit.doubles import Callers


def make(db: Database, backend: FakePhoneBackend, tmp_path: Path | None = None,
         callers: Callers | None = None, timeout: int = 30) -> CallService:
    return CallService(db, backend, DialPlan(PhoneNormalizer("CN"), "sim.local"),
                       callers or Callers({}), no_answer_timeout_s=timeout,
                       recordings_dir=tmp_path, agent="alice")


def row(db: Database, log_id: int) -> CallLog:
    with db.session() as s:
        r = s.get(CallLog, log_id)
        assert r is not None
        return r


def test_dial_creates_row_with_the_call_and_finalises_answered(
        db: Database, customer_id: int, qtbot: QtBot) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    with qtbot.waitSignal(svc.call_started) as started:
        log_id = svc.dial(customer_id, "138 0013 8000")
    assert started.args == [log_id]
    r = row(db, log_id)
    assert (r.state, r.direction, r.customer_id, r.e164, r.agent) == (
        "dialing", "out", customer_id, "+8613800138000", "alice")
    assert fake.requests == [("dial", 1, "sip:+8613800138000@sim.local")]

    fake.simulate_state(1, CallState.RINGING, 180, "Ringing")
    qtbot.waitUntil(lambda: row(db, log_id).state == "ringing", timeout=2000)
    fake.simulate_state(1, CallState.CONNECTED, 200, "OK")
    qtbot.waitUntil(lambda: row(db, log_id).state == "connected", timeout=2000)
    assert row(db, log_id).answered_at is not None
    qtbot.wait(50)
    with qtbot.waitSignal(svc.call_ended) as ended:
        fake.simulate_state(1, CallState.DISCONNECTED, 200, "Normal call clearing")
    assert ended.args == [log_id, "answered", "Customer hung up"]
    r = row(db, log_id)
    assert (r.state, r.outcome, r.sip_code) == ("ended", "answered", 200)
    assert r.ended_at is not None and r.talk_seconds >= 0.04
    with db.session() as s:  # every change captured for sync
        assert s.scalars(select(Outbox).where(Outbox.entity_uuid == r.uuid)).all()


@pytest.mark.parametrize(
    ("code", "reason", "outcome", "human"),
    [
        (486, "Busy Here", "busy", "Busy"),
        (603, "Decline", "rejected", "Declined by the customer"),
        (404, "Not Found", "failed", "Number not found"),
        (480, "Temporarily Unavailable", "no_answer", "Not reachable now"),
        (503, "Service Unavailable", "failed", "No response from the number (503)"),
        (500, "Server Internal Error", "failed", "Call failed: Server Internal Error (500)"),
    ],
)
def test_unanswered_outcomes(db: Database, qtbot: QtBot, code: int, reason: str,
                             outcome: str, human: str) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    log_id = svc.dial(None, "1001")
    with qtbot.waitSignal(svc.call_ended) as ended:
        fake.simulate_state(1, CallState.DISCONNECTED, code, reason)
    assert ended.args == [log_id, outcome, human]
    r = row(db, log_id)
    assert (r.outcome, r.sip_code, r.sip_reason, r.talk_seconds, r.answered_at) == (
        outcome, code, reason, 0.0, None)


def test_registrar_unreachable_named_when_using_a_registrar(db: Database) -> None:
    fake = FakePhoneBackend(registrar="pbx.local")
    svc = make(db, fake)
    seen: list[str] = []
    svc.call_ended.connect(lambda _i, _o, h: seen.append(h))
    svc.dial(None, "1001")
    fake.simulate_state(1, CallState.DISCONNECTED, 408, "Request Timeout")
    assert seen == ["Registrar unreachable (408)"]


def test_no_answer_timeout_cancels_and_logs_no_answer(db: Database, qtbot: QtBot) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake, timeout=1)
    log_id = svc.dial(None, "1001")
    fake.simulate_state(1, CallState.RINGING, 180, "Ringing")
    qtbot.waitUntil(lambda: ("hangup", 1, None) in fake.requests, timeout=3000)
    with qtbot.waitSignal(svc.call_ended) as ended:
        fake.simulate_state(1, CallState.DISCONNECTED, 487, "Request Terminated")
    assert ended.args == [log_id, "no_answer", "No answer after 1 s"]
    assert row(db, log_id).outcome == "no_answer"


def test_answer_stops_the_no_answer_timer(db: Database, qtbot: QtBot) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake, timeout=1)
    svc.dial(None, "1001")
    fake.simulate_state(1, CallState.CONNECTED, 200, "OK")
    qtbot.wait(1300)
    assert ("hangup", 1, None) not in fake.requests


def test_local_cancel_and_local_hangup(db: Database) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    ends: list[tuple[int, str, str]] = []
    svc.call_ended.connect(lambda i, o, h: ends.append((i, o, h)))
    first = svc.dial(None, "1001")
    svc.hangup(first)
    fake.simulate_state(1, CallState.DISCONNECTED, 487, "Request Terminated")
    second = svc.dial(None, "1002")
    fake.simulate_state(2, CallState.CONNECTED, 200, "OK")
    svc.hangup(second)
    fake.simulate_state(2, CallState.DISCONNECTED, 200, "Normal call clearing")
    assert ends == [(first, "cancelled", "Cancelled"), (second, "answered", "Call ended by you")]


def test_controls_pass_through_by_log_id(db: Database) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    holds: list[tuple[int, bool]] = []
    mutes: list[tuple[int, bool]] = []
    svc.hold_changed.connect(lambda i, h: holds.append((i, h)))
    svc.mute_changed.connect(lambda i, m: mutes.append((i, m)))
    log_id = svc.dial(None, "1001")
    fake.simulate_state(1, CallState.CONNECTED, 200, "OK")
    svc.hold(log_id, True)
    svc.hold(log_id, False)
    svc.set_mute(log_id, True)
    svc.send_dtmf(log_id, "12#")
    svc.transfer(log_id, "1002")
    assert fake.requests[1:] == [("hold", 1, None), ("resume", 1, None), ("mute", 1, True),
                                 ("dtmf", 1, "12#"), ("transfer", 1, "sip:1002@sim.local")]
    assert holds == [(log_id, True), (log_id, False)] and mutes == [(log_id, True)]
    with pytest.raises(CallError, match="not a keypad key"):
        svc.send_dtmf(log_id, "x")


def test_bad_number_is_refused_without_a_call_log(db: Database) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    with pytest.raises(CallError, match="'x' is not a digit"):
        svc.dial(None, "12x4")
    assert fake.requests == []
    with db.session() as s:
        assert s.scalars(select(CallLog)).all() == []


def test_second_dial_while_placing_is_refused(db: Database) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    svc.dial(None, "1001")
    with pytest.raises(CallError, match="already being placed"):
        svc.dial(None, "1002")


def test_phone_failure_finalises_failed(db: Database) -> None:
    fake = FakePhoneBackend()
    fake.fail_next_dial = "The phone is not started."
    svc = make(db, fake)
    errors: list[str] = []
    svc.error.connect(errors.append)
    log_id = svc.dial(None, "1001")
    r = row(db, log_id)
    assert (r.state, r.outcome, r.sip_reason) == ("ended", "failed", "The phone is not started.")
    assert errors == ["The phone is not started."]


def test_incoming_known_caller_answered(db: Database, customer_id: int, qtbot: QtBot) -> None:
    fake = FakePhoneBackend()
    callers = Callers({"+8613800138000": customer_id})
    svc = make(db, fake, callers=callers)
    with qtbot.waitSignal(svc.incoming) as inc:
        call_id = fake.simulate_incoming("+8613800138000", "Wang")
    log_id = inc.args[0]
    assert inc.args[1:] == [customer_id, "+8613800138000", "Wang"]
    r = row(db, log_id)
    assert (r.direction, r.state, r.customer_id, r.e164) == (
        "in", "ringing", customer_id, "+8613800138000")
    svc.answer(log_id)
    assert ("answer", call_id, None) in fake.requests
    fake.simulate_state(call_id, CallState.CONNECTED, 200, "OK")
    fake.simulate_state(call_id, CallState.DISCONNECTED, 200, "Normal call clearing")
    assert row(db, log_id).outcome == "answered"


def test_incoming_unknown_missed_and_rejected(db: Database, qtbot: QtBot) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    ends: list[tuple[str, str]] = []
    svc.call_ended.connect(lambda _i, o, h: ends.append((o, h)))
    incs: list[list[object]] = []
    svc.incoming.connect(lambda *a: incs.append(list(a)))
    c1 = fake.simulate_incoming("5551234", "")
    fake.simulate_state(c1, CallState.DISCONNECTED, 487, "Request Terminated")
    c2 = fake.simulate_incoming("5551235", "")
    svc.reject(incs[1][0])  # type: ignore[arg-type]
    assert ("reject", c2, 603) in fake.requests
    fake.simulate_state(c2, CallState.DISCONNECTED, 603, "Decline")
    assert incs[0][1] == 0
    assert ends == [("missed", "Missed call"), ("rejected", "Rejected by you")]
    assert row(db, incs[0][0]).outcome == "missed"  # type: ignore[arg-type]


def test_recording_rows_linked(db: Database, tmp_path: Path) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake, tmp_path=tmp_path)
    log_id = svc.dial(None, "1001")
    wav = tmp_path / "2026" / "call.wav"
    wav.parent.mkdir()
    wav.write_bytes(b"RIFF....WAVE")
    fake.recording_started.emit(1, str(wav))
    fake.simulate_state(1, CallState.DISCONNECTED, 200, "OK")
    fake.recording_finished.emit(1, RecordingInfo(str(wav), 3.5, 12, "", [(1.0, 2.0)]))
    with db.session() as s:
        recs = s.scalars(select(Recording).where(Recording.call_log_id == log_id)).all()
    assert len(recs) == 1
    rec = recs[0]
    assert rec.path == "2026/call.wav" and rec.state == "complete"
    assert rec.duration_s == 3.5 and rec.paused_spans == "[[1.0, 2.0]]"
    import hashlib
    assert rec.sha256 == hashlib.sha256(b"RIFF....WAVE").hexdigest()


def test_stats_forwarded_by_log_id(db: Database) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    got: list[tuple[int, object]] = []
    svc.media_stats.connect(lambda i, st: got.append((i, st)))
    log_id = svc.dial(None, "1001")
    st = MediaStats("PCMA", 8000, 1.5, 0.0, 50, 50)
    fake.media_stats.emit(1, st)
    fake.media_stats.emit(99, st)  # unknown call: ignored
    assert got == [(log_id, st)]


def test_describe_end_answered_connection_lost() -> None:
    assert describe_end(EndFacts("out", True, 408, "Connection lost: no audio for 5 s")) == (
        "answered", "Connection lost (Connection lost: no audio for 5 s)")
    assert describe_end(EndFacts("in", True, 200, "")) == ("answered", "Caller hung up")
    assert describe_end(EndFacts("out", False, 0, "", via_registrar=True)) == (
        "failed", "Registrar unreachable")


def test_describe_end_tls_refusal() -> None:
    f = EndFacts("out", False, 503, "SSL certificate verification error (PJSIP_TLS_ECERTVERIF)")
    assert describe_end(f)[1].startswith("Secure connection refused")


def test_answered_at_kept_when_the_call_ends_before_the_write_behind(db: Database) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    log_id = svc.dial(None, "1001")
    fake.simulate_state(1, CallState.CONNECTED, 200, "OK")
    fake.simulate_state(1, CallState.DISCONNECTED, 200, "OK")  # no event loop in between
    r = row(db, log_id)
    assert (r.state, r.outcome) == ("ended", "answered") and r.answered_at is not None


def test_call_log_write_failure_hangs_up_and_says_why(db: Database,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    fake = FakePhoneBackend()
    svc = make(db, fake)

    def broken(*_a: object, **_k: object) -> int:
        raise OperationalError("INSERT", {}, Exception("database or disk is full"))

    monkeypatch.setattr(svc, "_insert_outgoing", broken)
    with pytest.raises(CallError, match="could not be written to the call log"):
        svc.dial(None, "1001")
    assert fake.requests == [("dial", 1, "sip:1001@sim.local"), ("hangup", 1, None)]


def test_timeout_must_be_positive(db: Database) -> None:
    with pytest.raises(ValueError, match="positive"):
        make(db, FakePhoneBackend(), timeout=0)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((None, None, ""), "In progress"),
        (("answered", 200, "OK"), "Answered"),
        (("busy", 486, "Busy Here"), "Busy"),
        (("failed", 404, "Not Found"), "Number not found"),
        (("rejected", 603, "Decline"), "Declined by the customer"),
        (("no_answer", 487, "Request Terminated"), "No answer"),
        (("missed", None, ""), "Missed call"),
    ],
)
def test_describe_logged_for_the_timeline(args: tuple[str | None, int | None, str],
                                          text: str) -> None:
    from agent_desktop.calls import describe_logged

    assert describe_logged(*args) == text


def test_dialplan_can_change_with_settings(db: Database) -> None:
    fake = FakePhoneBackend()
    svc = make(db, fake)
    svc.set_dialplan(DialPlan(PhoneNormalizer("CN"), "pbx.example.com", prefix="9"))
    svc.dial(None, "1001")
    assert fake.requests == [("dial", 1, "sip:91001@pbx.example.com")]
