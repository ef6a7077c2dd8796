"""TLS transport with server verification on: a trusted peer connects, an untrusted one
is refused with a clear reason (baresip as the TLS peer; sipp here has no TLS)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.phone import CallState
from tests.integration.conftest import EngineFactory
from tests.integration.rig.baresip import Baresip
from tests.integration.rig.certs import Certs, make_ca, make_certs

pytestmark = pytest.mark.integration
WAV = Path(__file__).resolve().parents[2] / "resources" / "media" / "customer_line.wav"


@pytest.fixture
def tls_peer(tmp_path: Path) -> Iterator[tuple[Baresip, Certs]]:
    certs = make_certs(tmp_path / "certs")
    peer = Baresip(tmp_path, WAV, "2001", tls_pem=certs.server_pem)
    yield peer, certs
    peer.stop()


def test_tls_call_to_trusted_peer(tls_peer: tuple[Baresip, Certs],
                                  engine_factory: EngineFactory,
                                  service_for: Callable[..., CallService],
                                  qtbot: QtBot) -> None:
    peer, certs = tls_peer
    engine = engine_factory(transport="tls", ca_file=str(certs.ca))
    svc = service_for(engine, f"127.0.0.1:{peer.tls_port}")
    with qtbot.waitSignal(svc.call_state, timeout=8000,
                          check_params_cb=lambda _i, s: s == CallState.CONNECTED):
        log_id = svc.dial(None, "2001")
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        svc.hangup(log_id)
    assert ended.args[1] == "answered"


def test_tls_peer_with_untrusted_certificate_is_refused(
        tls_peer: tuple[Baresip, Certs], tmp_path: Path, engine_factory: EngineFactory,
        service_for: Callable[..., CallService], qtbot: QtBot) -> None:
    peer, _certs = tls_peer
    other_ca = make_ca(tmp_path / "other", "other-ca")
    engine = engine_factory(transport="tls", ca_file=str(other_ca))
    svc = service_for(engine, f"127.0.0.1:{peer.tls_port}")
    with qtbot.waitSignal(svc.call_ended, timeout=8000) as ended:
        svc.dial(None, "2001")
    assert ended.args[1:] == ["failed", "Secure connection refused: the other side's "
                              "certificate is not trusted (check the CA file in settings)"]
    assert not peer.has_line(r"(?i)incoming call")
