"""The simulated line survives callers that die: media timeout, no stale-call cap, clean exit.

Callers here are real sipp UACs killed with SIGKILL while connected (they never send BYE,
exactly like a killed app), then more calls from sipp and from our real engine.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from tests.integration.conftest import EngineFactory
from tests.integration.rig.proc import Peer, free_port
from tests.integration.rig.simline import SimLine

pytestmark = pytest.mark.integration


class SippCaller(Peer):
    """`sipp -sn uac` placing one call to `uri`, held for `hold_ms` before its BYE."""

    def __init__(self, domain: str, user: str, hold_ms: int, workdir: Path) -> None:
        cmd = ["sipp", "-sn", "uac", "-s", user, domain, "-i", "127.0.0.1",
               "-p", str(free_port()), "-m", "1", "-d", str(hold_ms), "-nostdin",
               "-timeout", "30s"]
        super().__init__(f"sipp-uac-{user}", cmd, cwd=workdir)


@pytest.fixture
def line() -> Iterator[SimLine]:
    peer = SimLine(ring_ms=50, media_timeout_s=2)
    yield peer
    peer.stop()


@pytest.mark.slow
def test_killed_callers_are_timed_out_and_never_block_new_calls(
        line: SimLine, tmp_path: Path, engine_factory: EngineFactory,
        service_for: Callable[..., CallService], qtbot: QtBot) -> None:
    # Four callers connect, then die without a BYE: every call slot of the line is taken.
    for n in range(1, 5):
        caller = SippCaller(line.domain, "answer", 600_000, tmp_path)
        try:
            line.wait_line(rf"^CONNECTED {n}$", 10)
        finally:
            caller.kill()
            caller.stop()
    for n in range(1, 5):  # no RTP from a dead caller: the line hangs up by itself
        line.wait_line(rf"^TIMEOUT {n}$", 15)
        line.wait_line(rf"^END {n} ", 15)

    # A slot comes back once the BYE to the dead caller is over: at once if the kernel
    # answers it with ICMP "port unreachable", else after pjsip's 32 s transaction timeout
    # (Linux rate-limits ICMP, so this happens). Until then the line is still 486 (pjsua
    # holds at most 4 calls): keep trying, each try a new real caller.
    n = 4
    deadline = time.monotonic() + 60
    while True:
        caller = SippCaller(line.domain, "answer", 300, tmp_path)
        try:
            rc = caller.proc.wait(15)
        finally:
            caller.stop()
        if rc == 0:
            n += 1
            break
        assert time.monotonic() < deadline, "the line never took a call again:\n" + \
            "\n".join(line.lines[-20:])
        time.sleep(1)
    line.wait_line(rf"^CONNECTED {n}$", 5)

    # Then six more calls all answer at the first try: five from sipp, one from our engine.
    for _ in range(5):
        n += 1
        caller = SippCaller(line.domain, "answer", 300, tmp_path)
        try:
            assert caller.proc.wait(15) == 0, "\n".join(caller.lines[-20:])
            line.wait_line(rf"^CONNECTED {n}$", 5)
        finally:
            caller.stop()
    svc = service_for(engine_factory(), line.domain)
    with qtbot.waitSignal(svc.call_state, timeout=10_000,
                          check_params_cb=lambda _lid, st: st == "connected"):
        log_id = svc.dial(None, f"sip:answer@{line.domain}")
    line.wait_line(rf"^CONNECTED {n + 1}$", 5)
    with qtbot.waitSignal(svc.call_ended, timeout=10_000) as ended:
        svc.hangup(log_id)
    assert ended.args[1] == "answered"


def test_sigterm_with_calls_up_and_dead_callers_exits_cleanly(tmp_path: Path) -> None:
    callers: list[SippCaller] = []
    peer = SimLine(ring_ms=50, media_timeout_s=0, hangup_after_s=60)
    try:
        callers.append(SippCaller(peer.domain, "answer", 600_000, tmp_path))
        peer.wait_line(r"^CONNECTED 1$", 10)
        callers.append(SippCaller(peer.domain, "hangup", 600_000, tmp_path))  # timer pending
        peer.wait_line(r"^CONNECTED 2$", 10)
        callers[-1].kill()
        callers.append(SippCaller(peer.domain, "noanswer", 600_000, tmp_path))  # ringing
        peer.wait_line(r"^CALL 3 ", 10)
        os.killpg(peer.pid, signal.SIGTERM)
        rc = peer.proc.wait(15)
        peer.wait_line(r"^BYE$", 2)
        assert rc == 0, "\n".join(peer.lines[-30:])
        assert not peer.has_line("Assertion")
    finally:
        peer.stop()
        for c in callers:
            c.stop()
