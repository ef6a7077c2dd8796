"""Round trip through everything: microphone → bridge → pjsua2 → RTP → sipp echo → RTP →
pjsua2 (jitter buffer) → bridge → headset, with the real PulseAudio rig.

Clicks are played into a combined sink that feeds the microphone and the headset at the
same time; on the headset each click then appears twice, and the gap is the agent's own
voice coming back through the whole call path (what a far end would hear, plus the way
back). The test asserts the clicks really come back; the figure is printed:
    pytest tests/integration/test_audio_echo_latency.py -s
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.audio_rig import (
    PulseRig,
    free_port,
    pulse,
    read_wav,
    run_call_child,
    stop_process,
)
from tests.integration.test_audio_backends import click_train, echo_lag_ms

__all__ = ["pulse"]

pytestmark = pytest.mark.integration


@pytest.fixture
def echo_peer(tmp_path: Path) -> Iterator[str]:
    port, rtp = free_port(), free_port()
    proc = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port),
                             "-mp", str(rtp), "-rtp_echo", "-m", "1", "-nostdin"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    assert proc.poll() is None, "sipp echo peer exited at start"
    yield f"sip:echo@127.0.0.1:{port}"
    stop_process(proc)


def test_agent_voice_comes_back_through_a_real_call(
        pulse: PulseRig, echo_peer: str, tmp_path: Path) -> None:
    both = pulse.pactl("load-module", "module-combine-sink", "sink_name=both",
                       "slaves=micfeed,headset", "adjust_time=1")
    assert both.returncode == 0, both.stderr
    heard_path = tmp_path / "headset.wav"
    pulse.record_headset(heard_path)
    pulse.children.append(subprocess.Popen(
        ["paplay", "--device=both", "--latency-msec=20",
         str(click_train(tmp_path / "clicks.wav"))], env=pulse.env))
    run = run_call_child(pulse.env, echo_peer, tmp_path / "call.wav", 12, "--prepare")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "CONFIRMED" in run.report["events"]
    pulse.stop()
    _, heard = read_wav(heard_path)
    lag, echoes = echo_lag_ms(heard[:, 0])
    print(f"\nround trip mic → call → echo → headset: {lag:.0f} ms over {echoes} clicks; "
          f"bridge stats {run.report['stats']}")
    assert echoes >= 8, "the agent's clicks did not come back through the call"
    assert 20 < lag < 315
