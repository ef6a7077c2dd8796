"""Real engine + simulated line: the headset bridge is prepared at every call start and
released at every call end (answered, busy, rejected, cancelled), and mute reaches it.

The bridge here is a recording stand-in (the real one needs PulseAudio and is exercised
with real audio in test_sip_audio.py); what is checked is the engine's side of the
contract in `sip.audio.bridge.AudioBridge`: prepare() → attach(media) → detach().
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.calls import CallService
from agent_desktop.phone import CallState
from tests.integration.conftest import EngineFactory
from tests.integration.rig.proc import Peer, free_port
from tests.integration.rig.simline import SimLine

pytestmark = pytest.mark.integration


class RecordingBridge:
    """Logs the calls the engine makes; open/attached state like the real bridge."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.prepared = False
        self.attached = False
        self.muted = False

    @property
    def capture_media(self) -> Any:
        return None  # the engine then records the null capture device on the left

    def prepare(self) -> None:
        self.calls.append("prepare")
        self.prepared = True

    def attach(self, call_media: Any) -> None:
        assert call_media is not None
        self.calls.append("attach")
        self.attached = True

    def detach(self) -> None:
        self.calls.append("detach")
        self.prepared = self.attached = False

    def set_muted(self, muted: bool) -> None:
        self.calls.append(f"muted={muted}")
        self.muted = muted


@pytest.mark.parametrize("user", ["busy", "reject", "notfound"])
def test_streams_prepared_at_dial_are_closed_when_the_call_fails(
        simline: SimLine, engine_factory: EngineFactory,
        service_for: Callable[..., CallService], qtbot: QtBot, user: str) -> None:
    bridge = RecordingBridge()
    svc = service_for(engine_factory(bridge=bridge), simline.domain)
    with qtbot.waitSignal(svc.call_ended, timeout=5000):
        svc.dial(None, f"sip:{user}@{simline.domain}")
    assert bridge.calls[0] == "prepare"
    assert "attach" not in bridge.calls
    assert bridge.calls[-1] == "detach" and not bridge.prepared


def test_cancelled_ringing_call_closes_the_streams(
        simline: SimLine, engine_factory: EngineFactory,
        service_for: Callable[..., CallService], qtbot: QtBot) -> None:
    bridge = RecordingBridge()
    svc = service_for(engine_factory(bridge=bridge), simline.domain)
    with qtbot.waitSignal(svc.call_state, timeout=5000,
                          check_params_cb=lambda _l, st: st == CallState.RINGING):
        log_id = svc.dial(None, f"sip:noanswer@{simline.domain}")
    assert bridge.prepared and bridge.calls == ["prepare"]
    with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
        svc.hangup(log_id)
    assert ended.args[1] == "cancelled"
    assert bridge.calls[-1] == "detach" and not bridge.prepared


def test_answered_call_attaches_mutes_at_the_microphone_and_detaches(
        simline: SimLine, engine_factory: EngineFactory,
        service_for: Callable[..., CallService], qtbot: QtBot) -> None:
    bridge = RecordingBridge()
    engine = engine_factory(bridge=bridge)
    svc = service_for(engine, simline.domain)
    with qtbot.waitSignal(svc.call_state, timeout=10_000,
                          check_params_cb=lambda _l, st: st == CallState.CONNECTED):
        log_id = svc.dial(None, f"sip:answer@{simline.domain}")
    qtbot.waitUntil(lambda: bridge.attached, timeout=5000)
    assert bridge.calls.index("prepare") < bridge.calls.index("attach")
    with qtbot.waitSignal(svc.mute_changed, timeout=2000) as muted:
        svc.set_mute(log_id, True)
    assert muted.args == [log_id, True] and bridge.muted
    with qtbot.waitSignal(svc.call_ended, timeout=5000):
        svc.hangup(log_id)
    assert bridge.calls[-2:] == ["muted=False", "detach"]  # the next call starts unmuted
    assert not bridge.attached and not bridge.prepared


def test_incoming_call_prepares_and_a_rejected_one_closes(
        engine_factory: EngineFactory, service_for: Callable[..., CallService],
        simline: SimLine, qtbot: QtBot, tmp_path: Path) -> None:
    """A real caller (sipp's UAC) rings the engine; the agent rejects it."""
    bridge = RecordingBridge()
    engine = engine_factory(bridge=bridge)
    svc = service_for(engine, simline.domain)
    caller = Peer("sipp-uac", ["sipp", "-sn", "uac", "-s", "agent", engine.local_address,
                               "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1",
                               "-nostdin", "-timeout", "20s"], cwd=tmp_path)
    try:
        with qtbot.waitSignal(svc.incoming, timeout=10_000) as incoming:
            pass
        assert bridge.calls == ["prepare"]
        with qtbot.waitSignal(svc.call_ended, timeout=5000) as ended:
            svc.reject(incoming.args[0])
        assert ended.args[1] == "rejected"
        assert bridge.calls[-1] == "detach" and not bridge.prepared
    finally:
        caller.stop()
