"""A number whose host swallows every packet: pjsip's INVITE transaction times out.

A bound UDP socket that never answers (no ICMP "port unreachable" either) is what a
firewalled or crashed PBX looks like. pjsip retransmits the INVITE (T1 = 0.5 s doubling)
and gives up after 64·T1 = 32 s with 408; the agent must see a clear state then, and the
call log must say so. Slow by nature: marked `slow`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.phone import CallState
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog
from tests.integration.conftest import EngineFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def black_hole() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_invite_to_a_silent_host_ends_with_408_and_a_clear_reason(
        black_hole: socket.socket, engine_factory: EngineFactory,
        service_for: Callable[..., CallService], db: Database, qtbot: QtBot) -> None:
    port = black_hole.getsockname()[1]
    domain = f"127.0.0.1:{port}"
    # The no-answer timer must not be what ends the call: it is longer than Timer B.
    svc = service_for(engine_factory(), domain, timeout_s=120)
    states: list[str] = []
    svc.call_state.connect(lambda _lid, st: states.append(st))
    with qtbot.waitSignal(svc.call_ended, timeout=45_000) as ended:
        log_id = svc.dial(None, f"sip:answer@{domain}")
    black_hole.settimeout(0.5)
    invite, _addr = black_hole.recvfrom(65535)  # the INVITE did reach the host
    assert invite.startswith(b"INVITE sip:answer@")
    assert ended.args == [log_id, "failed", "No response from the number (408)"]
    assert CallState.CONNECTED not in states
    with db.session() as s:
        row = s.get(CallLog, log_id)
        assert row is not None
        assert (row.state, row.outcome, row.sip_code, row.answered_at) == (
            "ended", "failed", 408, None)
