"""Real pjsua2 engine against sipp, kamailio (digest auth) and baresip on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.phone import CallState, MediaStats, RegState
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog
from tests.integration.conftest import EngineFactory
from tests.integration.rig.baresip import Baresip
from tests.integration.rig.kamailio import Kamailio
from tests.integration.rig.proc import Peer
from tests.integration.rig.sipp import Sipp

pytestmark = pytest.mark.integration

WAV = Path(__file__).resolve().parents[2] / "resources" / "media" / "customer_line.wav"


def outcome_of(db: Database, log_id: int) -> tuple[str | None, int | None]:
    with db.session() as s:
        row = s.get(CallLog, log_id)
        assert row is not None
        return row.outcome, row.sip_code


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for p in started:
        p.stop()


def test_sipp_echo_answers_and_media_flows(tmp_path: Path, peers: list[Peer],
                                           engine_factory: EngineFactory,
                                           service_for: Callable[..., CallService],
                                           db: Database, qtbot: QtBot) -> None:
    sipp = Sipp("echo", tmp_path)
    peers.append(sipp)
    svc = service_for(engine_factory(), f"127.0.0.1:{sipp.port}")
    stats: list[MediaStats] = []
    svc.media_stats.connect(lambda _i, st: stats.append(st))
    with qtbot.waitSignal(svc.call_state, timeout=5000,
                          check_params_cb=lambda _i, s: s == CallState.CONNECTED):
        log_id = svc.dial(None, sipp.uri())
    qtbot.waitUntil(lambda: bool(stats) and stats[-1].rx_packets > 10, timeout=5000)
    assert stats[-1].codec == "PCMU"  # sipp's built-in uas offers only PCMU
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        svc.hangup(log_id)
    assert ended.args[1:] == ["answered", "Call ended by you"]
    assert outcome_of(db, log_id)[0] == "answered"


def test_sipp_busy(tmp_path: Path, peers: list[Peer], engine_factory: EngineFactory,
                   service_for: Callable[..., CallService], db: Database,
                   qtbot: QtBot) -> None:
    sipp = Sipp("busy", tmp_path)
    peers.append(sipp)
    svc = service_for(engine_factory(), f"127.0.0.1:{sipp.port}")
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        log_id = svc.dial(None, sipp.uri())
    assert ended.args[1:] == ["busy", "Busy"]
    assert outcome_of(db, log_id) == ("busy", 486)


def test_sipp_never_answers_cancel_after_timeout(tmp_path: Path, peers: list[Peer],
                                                 engine_factory: EngineFactory,
                                                 service_for: Callable[..., CallService],
                                                 db: Database, qtbot: QtBot) -> None:
    sipp = Sipp("never", tmp_path)
    peers.append(sipp)
    svc = service_for(engine_factory(), f"127.0.0.1:{sipp.port}", timeout_s=1)
    with qtbot.waitSignal(svc.call_ended, timeout=6000) as ended:
        log_id = svc.dial(None, sipp.uri())
    assert ended.args[1:] == ["no_answer", "No answer after 1 s"]
    assert outcome_of(db, log_id) == ("no_answer", 487)
    # sipp saw CANCEL, sent 487 and got the ACK (keep the engine polling meanwhile)
    qtbot.waitUntil(lambda: sipp.proc.poll() is not None, timeout=10000)
    assert sipp.proc.returncode == 0, "\n".join(sipp.lines[-30:])


def test_incoming_call_from_sipp_answered(tmp_path: Path, peers: list[Peer],
                                          engine_factory: EngineFactory,
                                          service_for: Callable[..., CallService],
                                          db: Database, qtbot: QtBot) -> None:
    engine = engine_factory()
    svc = service_for(engine, "127.0.0.1")
    with qtbot.waitSignal(svc.incoming, timeout=8000) as inc:
        uac = Peer("sipp-uac", ["sipp", "-sn", "uac", "-i", "127.0.0.1", "-p", "0",
                                "-m", "1", "-d", "1000", "-s", "13800138000", "-nostdin",
                                engine.local_address], cwd=tmp_path)
        peers.append(uac)
    log_id, customer_id, number, _name = inc.args
    assert (customer_id, number) == (0, "sipp")  # sipp's From user; unknown caller
    with qtbot.waitSignal(svc.call_ended, timeout=8000) as ended:
        svc.answer(log_id)
    assert ended.args[1:] == ["answered", "Caller hung up"]
    qtbot.waitUntil(lambda: uac.proc.poll() is not None, timeout=10000)
    assert uac.proc.returncode == 0
    with db.session() as s:
        row = s.get(CallLog, log_id)
        assert row is not None and row.direction == "in" and row.answered_at


def test_incoming_call_rejected(tmp_path: Path, peers: list[Peer],
                                engine_factory: EngineFactory,
                                service_for: Callable[..., CallService], db: Database,
                                qtbot: QtBot) -> None:
    engine = engine_factory()
    svc = service_for(engine, "127.0.0.1")
    with qtbot.waitSignal(svc.incoming, timeout=8000) as inc:
        peers.append(Peer("sipp-uac", ["sipp", "-sn", "uac", "-i", "127.0.0.1", "-p", "0",
                                       "-m", "1", "-nostdin", engine.local_address],
                          cwd=tmp_path))
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        svc.reject(inc.args[0])
    assert ended.args[1:] == ["rejected", "Rejected by you"]
    assert outcome_of(db, inc.args[0])[0] == "rejected"


# -- kamailio with digest auth ---------------------------------------------------------

def wait_reg(engine: object, qtbot: QtBot, state: RegState, timeout: int = 8000) -> str:
    seen: list[tuple[str, int, str]] = []
    engine.registration_changed.connect(lambda *a: seen.append(a))  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: any(s == state for s, _c, _t in seen)
                    or engine.registration_state()[0] == state,  # type: ignore[attr-defined]
                    timeout=timeout)
    return str(engine.registration_state()[2])  # type: ignore[attr-defined]


def test_registers_with_good_password(tmp_path: Path, peers: list[Peer],
                                      engine_factory: EngineFactory, qtbot: QtBot) -> None:
    kam = Kamailio(tmp_path, {"1001": "s3cret"})
    peers.append(kam)
    engine = engine_factory(registrar=kam.address, username="1001", password="s3cret")
    assert wait_reg(engine, qtbot, RegState.REGISTERED) == "Registered"


def test_wrong_password_is_a_clear_403(tmp_path: Path, peers: list[Peer],
                                       engine_factory: EngineFactory, qtbot: QtBot) -> None:
    kam = Kamailio(tmp_path, {"1001": "s3cret"})
    peers.append(kam)
    engine = engine_factory(registrar=kam.address, username="1001", password="wrong")
    assert wait_reg(engine, qtbot, RegState.FAILED) == "Wrong password (403)"
    assert engine.registration_state()[1] == 403


def test_registrar_down_is_reported(tmp_path: Path, engine_factory: EngineFactory,
                                    qtbot: QtBot) -> None:
    from tests.integration.rig.proc import free_port
    engine = engine_factory(registrar=f"127.0.0.1:{free_port()}", username="1001",
                            password="x", transport="tcp")
    assert wait_reg(engine, qtbot, RegState.FAILED).startswith("Registrar unreachable")


def test_call_through_kamailio_reaches_registered_baresip(
        tmp_path: Path, peers: list[Peer], engine_factory: EngineFactory,
        service_for: Callable[..., CallService], db: Database, qtbot: QtBot) -> None:
    kam = Kamailio(tmp_path, {"1001": "s3cret", "2001": "b4resip"})
    peers.append(kam)
    peers.append(Baresip(tmp_path, WAV, "2001", registrar=kam.address, password="b4resip"))
    engine = engine_factory(registrar=kam.address, username="1001", password="s3cret")
    wait_reg(engine, qtbot, RegState.REGISTERED)
    svc = service_for(engine, kam.address)
    stats: list[MediaStats] = []
    svc.media_stats.connect(lambda _i, st: stats.append(st))
    with qtbot.waitSignal(svc.call_state, timeout=8000,
                          check_params_cb=lambda _i, s: s == CallState.CONNECTED):
        log_id = svc.dial(None, "2001")
    qtbot.waitUntil(lambda: bool(stats) and stats[-1].rx_packets > 10, timeout=5000)
    with qtbot.waitSignal(svc.call_ended, timeout=5000):
        svc.hangup(log_id)
    assert outcome_of(db, log_id)[0] == "answered"


def test_unknown_user_through_kamailio_is_number_not_found(
        tmp_path: Path, peers: list[Peer], engine_factory: EngineFactory,
        service_for: Callable[..., CallService], qtbot: QtBot) -> None:
    kam = Kamailio(tmp_path, {"1001": "s3cret"})
    peers.append(kam)
    engine = engine_factory(registrar=kam.address, username="1001", password="s3cret")
    wait_reg(engine, qtbot, RegState.REGISTERED)
    svc = service_for(engine, kam.address)
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        svc.dial(None, "3999")
    assert ended.args[1:] == ["failed", "Number not found"]


def test_registers_once_the_registrar_comes_back(tmp_path: Path, peers: list[Peer],
                                                  engine_factory: EngineFactory,
                                                  qtbot: QtBot) -> None:
    from tests.integration.rig.proc import free_port

    port = free_port()
    engine = engine_factory(registrar=f"127.0.0.1:{port}", username="1001",
                            password="s3cret", transport="tcp", reg_backoff_s=(1, 2))
    seen: list[str] = []
    engine.registration_changed.connect(lambda _s, _c, text: seen.append(text))
    assert wait_reg(engine, qtbot, RegState.FAILED).startswith("Registrar unreachable")
    peers.append(Kamailio(tmp_path, {"1001": "s3cret"}, port=port))
    assert wait_reg(engine, qtbot, RegState.REGISTERED, timeout=15000) == "Registered"
    # the agent saw it go: unreachable → registering (retry) → registered
    assert any(t.startswith("Registering") for t in seen)


def test_incoming_caller_id_finds_the_customer(tmp_path: Path, peers: list[Peer],
                                               engine_factory: EngineFactory, db: Database,
                                               qtbot: QtBot) -> None:
    from agent_desktop.dialplan import DialPlan
    from agent_desktop.phones import PhoneNormalizer
    from agent_desktop.search import CustomerSearch
    from agent_desktop.store.models import Customer, PhoneNumber

    norm = PhoneNormalizer("CN")
    n = norm.normalize("138 0013 8000")
    with db.transaction() as s:
        c = Customer(name="王小明", name_key="王小明")
        c.phones.append(PhoneNumber(raw=n.raw, e164=n.e164, rev_digits=n.rev_digits,
                                    valid=n.valid))
        s.add(c)
        s.flush()
        customer_id = c.id
    engine = engine_factory()
    svc = CallService(db, engine, DialPlan(norm, "127.0.0.1"), CustomerSearch(db, norm))
    caller = Baresip(tmp_path, WAV, "+8613800138000")
    peers.append(caller)
    with qtbot.waitSignal(svc.incoming, timeout=8000) as inc:
        reply = caller.command("dial", f"sip:agent@{engine.local_address}")
    assert reply.get("ok") is True, reply
    log_id, found, number, _name = inc.args
    assert (found, number) == (customer_id, "+8613800138000")
    with qtbot.waitSignal(svc.call_ended, timeout=8000) as ended:
        svc.answer(log_id)
        qtbot.waitUntil(lambda: svc.state_of(log_id) == CallState.CONNECTED, timeout=5000)
        svc.hangup(log_id)
    assert ended.args[1] == "answered"
    with db.session() as s:
        row = s.get(CallLog, log_id)
        assert row is not None and (row.customer_id, row.direction) == (customer_id, "in")


def test_reconfigure_from_direct_to_registrar(tmp_path: Path, peers: list[Peer],
                                              engine_factory: EngineFactory,
                                              qtbot: QtBot) -> None:
    from sip.config import SipConfig

    engine = engine_factory()
    assert engine.registration_state()[0] == RegState.DIRECT
    kam = Kamailio(tmp_path, {"1001": "s3cret"})
    peers.append(kam)
    engine.reconfigure(SipConfig(bind_address="127.0.0.1", registrar=kam.address,
                                 username="1001", password="s3cret"))
    assert wait_reg(engine, qtbot, RegState.REGISTERED) == "Registered"


def test_incoming_call_routed_by_kamailio_to_the_registered_agent(
        tmp_path: Path, peers: list[Peer], engine_factory: EngineFactory,
        service_for: Callable[..., CallService], db: Database, qtbot: QtBot) -> None:
    kam = Kamailio(tmp_path, {"1001": "s3cret", "2001": "b4resip"})
    peers.append(kam)
    engine = engine_factory(registrar=kam.address, username="1001", password="s3cret")
    wait_reg(engine, qtbot, RegState.REGISTERED)
    caller = Baresip(tmp_path, WAV, "2001", registrar=kam.address, password="b4resip")
    peers.append(caller)
    svc = service_for(engine, kam.address)
    with qtbot.waitSignal(svc.incoming, timeout=8000) as inc:
        reply = caller.command("dial", f"sip:1001@{kam.address}")
    assert reply.get("ok") is True, reply
    log_id, _cust, number, _name = inc.args
    assert number == "2001"
    svc.answer(log_id)
    qtbot.waitUntil(lambda: svc.state_of(log_id) == CallState.CONNECTED, timeout=5000)
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        svc.hangup(log_id)
    assert ended.args[1:] == ["answered", "Call ended by you"]
    assert outcome_of(db, log_id)[0] == "answered"
