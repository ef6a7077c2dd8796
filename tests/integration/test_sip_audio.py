"""The real engine with the real headset bridge (PulseAudio null sinks) and the stereo
recorder: the customer's tone reaches the headset and the right channel, the agent's
microphone reaches the left channel, and mute silences the agent at the source."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.audio_rig import (
    HEADSET,
    MIC,
    PulseRig,
    TonePeer,
    dominant_hz,
    pulse,
    read_wav,
    rms,
    sine_wav,
    tone_peer,
)

pytestmark = pytest.mark.integration
__all__ = ["pulse", "tone_peer"]  # fixtures
REPO = Path(__file__).resolve().parents[2]


def test_engine_call_with_headset_bridge_and_recording(pulse: PulseRig,
                                                       tone_peer: TonePeer,
                                                       tmp_path: Path) -> None:
    pulse.play_into_mic(sine_wav(tmp_path / "mic.wav", 440, 40))
    pulse.record_headset(tmp_path / "headset.wav")
    rec_dir = tmp_path / "rec"
    r = subprocess.run([sys.executable, "-m", "tests.integration.rig.engine_audio",
                        tone_peer.uri, str(rec_dir), "6", MIC, HEADSET], env=pulse.env,
                       cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])
    assert rep["ended"] == ["answered", "Call ended by you"]
    assert rep["states"][-1] == "disconnected" and "connected" in rep["states"]
    rec = rep["recording"]
    path = Path(rec["path"])
    assert path.parent == rec_dir
    assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    channels, s = read_wav(path)
    assert channels == 2
    left, right = s[:, 0], s[:, 1]

    def win(x, a: float, b: float):  # type: ignore[no-untyped-def]
        return x[int(a * 16000):int(b * 16000)]

    assert dominant_hz(win(right, 0.5, 2.5)) == pytest.approx(1000, abs=3)
    assert dominant_hz(win(left, 1.5, 2.8)) == pytest.approx(440, abs=3)
    assert rms(win(left, 1.5, 2.8)) > 1000
    # Muted for 0.6 s from m0 (wall clock since CONNECTED; the recording's timeline may
    # lag it a little on a loaded machine): a 0.3 s stretch of the agent's side is
    # silent there, while the customer's side is not.
    m0, m1 = rep["mute"]
    step = int(0.05 * 16000)
    starts = range(int(m0 * 16000), int((m1 + 0.6) * 16000), step)
    quiet = min(starts, key=lambda i: rms(left[i:i + int(0.3 * 16000)]))
    assert rms(left[quiet:quiet + int(0.3 * 16000)]) < rms(win(left, 1.5, 2.8)) / 20
    assert rms(right[quiet:quiet + int(0.3 * 16000)]) > 1000  # the customer still heard

    pulse.stop()  # flushes parecord
    _, heard = read_wav(tmp_path / "headset.wav")
    loud = abs(heard[:, 0].astype(int)) > 2000
    assert loud.sum() > 16000 * 2, "the headset did not get the customer's audio"
    start = int(loud.argmax()) + 1600
    assert dominant_hz(heard[start:start + 16000, 0]) == pytest.approx(1000, abs=3)
