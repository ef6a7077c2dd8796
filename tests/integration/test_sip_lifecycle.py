"""Engine lifecycle and faults: repeated start/stop with calls in flight never aborts; a
peer that dies mid-call gives a clear state; bad configuration is refused in words."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.phone import CallState, PhoneError
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog
from sip.config import SipConfig
from sip.engine import SipEngine
from tests.integration.conftest import EngineFactory
from tests.integration.rig.simline import SimLine
from tests.integration.rig.sipp import Sipp

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_start_stop_with_calls_in_flight_never_aborts(simline: SimLine) -> None:
    r = subprocess.run([sys.executable, "-m", "tests.integration.rig.engine_cycles",
                        simline.domain, "4"], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    out = [ln for ln in r.stdout.splitlines() if ln.startswith(("CYCLE", "DONE"))]
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert out[-1] == "DONE" and len(out) == 5
    # each round had a connected and a ringing call, and every call ended cleanly
    assert all(ln.endswith("connected=True ringing=True all_ended=True")
               for ln in out[:-1]), out


def test_peer_dies_mid_call_gives_connection_lost(engine_factory: EngineFactory,
                                                  service_for: Callable[..., CallService],
                                                  db: Database, qtbot: QtBot) -> None:
    line = SimLine()
    try:
        svc = service_for(engine_factory(rtp_timeout_s=2), line.domain)
        with qtbot.waitSignal(svc.call_state, timeout=5000,
                              check_params_cb=lambda _i, s: s == CallState.CONNECTED):
            log_id = svc.dial(None, line.uri("answer"))
        qtbot.wait(500)
        line.kill()  # no BYE, RTP stops
        with qtbot.waitSignal(svc.call_ended, timeout=8000) as ended:
            pass
    finally:
        line.stop()
    assert ended.args[0] == log_id
    assert ended.args[1] == "answered"
    assert ended.args[2].startswith("Connection lost") and "no audio" in ended.args[2]
    with db.session() as s:
        row = s.get(CallLog, log_id)
        assert row is not None and row.state == "ended" and row.sip_code == 408


def test_second_engine_in_one_process_is_refused(engine_factory: EngineFactory) -> None:
    engine_factory()
    with pytest.raises(PhoneError, match="already running"):
        SipEngine(SipConfig(bind_address="127.0.0.1")).start()


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (SipConfig(transport="tls"), "TLS needs a CA file"),
        (SipConfig(transport="tls", ca_file="/nonexistent/ca.pem"), "does not exist"),
        (SipConfig(transport="sctp"), "must be one of udp, tcp, tls"),
        (SipConfig(registrar="pbx.example.com"), "user name is needed"),
    ],
)
def test_bad_config_refused_in_words(config: SipConfig, fragment: str) -> None:
    with pytest.raises(PhoneError, match=fragment):
        SipEngine(config).start()


def test_port_in_use_is_a_clear_error(simline: SimLine, qtbot: QtBot) -> None:
    engine = SipEngine(SipConfig(bind_address="127.0.0.1", local_port=simline.port))
    with pytest.raises(PhoneError, match="could not start"):
        engine.start()
    assert not engine.started


def test_malformed_uri_is_refused(engine_factory: EngineFactory) -> None:
    engine = engine_factory()
    with pytest.raises(PhoneError, match="not a valid SIP address"):
        engine.dial("sip:@@bad")


def test_tcp_refused_fails_at_once_with_a_reason(engine_factory: EngineFactory,
                                                 service_for: Callable[..., CallService],
                                                 db: Database, qtbot: QtBot) -> None:
    from tests.integration.rig.proc import free_port

    engine = engine_factory(transport="tcp")
    svc = service_for(engine, f"127.0.0.1:{free_port()}")  # nobody listens there
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        log_id = svc.dial(None, "1001")
    assert ended.args[1:] == ["failed", "No response from the number (503)"]
    with db.session() as s:
        row = s.get(CallLog, log_id)
        assert row is not None and (row.sip_code, row.outcome) == (503, "failed")


def test_back_to_back_calls_never_exhaust_pjlib_sockets(tmp_path: Path,
                                                        simline: SimLine) -> None:
    """25 busy calls, then 12 connect/hang-up cycles as fast as the peer answers (sipp
    echo: at once). Before sip.engine waited for socket slots, this aborted in pjlib."""
    sipp = Sipp("echo", tmp_path, calls=20)
    try:
        r = subprocess.run([sys.executable, "-m", "tests.integration.rig.rapid_calls",
                            simline.uri("busy"), sipp.uri(), "12"], cwd=REPO,
                           capture_output=True, text=True, timeout=120, check=False)
    finally:
        sipp.stop()
    cycles = [ln for ln in r.stdout.splitlines() if ln.startswith("CYCLE")]
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert cycles == [f"CYCLE {i} connected" for i in range(12)]
    assert r.stdout.rstrip().endswith("DONE")
