"""Real audio through the bridge: PulseAudio (started here) ↔ Qt ↔ pjsua2 ↔ sipp.

The customer is a sipp UAS streaming a 1 kHz PCMU tone; the agent's microphone is a
PulseAudio null sink fed with a 440 Hz tone. The recording must hold 440 Hz on the left
(agent, through the bridge's mic port) and 1 kHz on the right (customer), the headset
must receive the 1 kHz tone, and the paused span must be silent on both sides.
"""

from __future__ import annotations

import hashlib
import os
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
    run_call_child,
    sine_wav,
    tone_peer,
)

__all__ = ["pulse", "tone_peer"]  # fixtures

pytestmark = pytest.mark.integration


def window(samples, start_s: float, end_s: float):  # type: ignore[no-untyped-def]
    return samples[int(start_s * 16000):int(end_s * 16000)]


def test_call_audio_goes_both_ways_and_is_recorded_in_stereo(
        pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path) -> None:
    pulse.play_into_mic(sine_wav(tmp_path / "mic.wav", 440, 40))
    pulse.record_headset(tmp_path / "headset.wav")
    out = tmp_path / "rec" / "call.wav"
    run = run_call_child(pulse.env, tone_peer.uri, out, 7, "--pause", "3,4", "--prepare",
                         "--mute", "5,5.6", "--input", MIC, "--output", HEADSET)
    assert run.returncode == 0, run.stderr[-3000:]
    rep = run.report
    assert rep["events"][-1] == "DISCONNECTED" and "CONFIRMED" in rep["events"]
    assert rep["signals"] == [], "no device trouble expected"
    assert MIC in rep["inputs"] and HEADSET in rep["outputs"]
    assert "No Such Microphone" in rep["bad_input_error"] and MIC in rep["bad_input_error"]
    assert rep["settings"] == {"audio.input_device": MIC, "audio.output_device": HEADSET}

    rec = rep["recording"]
    assert rec["error"] is None
    assert rec["duration_s"] == pytest.approx(7, abs=0.2)
    assert rec["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert rec["size_bytes"] == out.stat().st_size
    (p0, p1), = rec["paused_spans"]
    assert p0 == pytest.approx(3, abs=0.1) and p1 == pytest.approx(4, abs=0.1)

    channels, s = read_wav(out)
    assert channels == 2
    left, right = s[:, 0], s[:, 1]
    for a, b in ((0.5, 2.9), (4.1, 6.9)):
        assert dominant_hz(window(right, a, b)) == pytest.approx(1000, abs=3)
    # The microphone stream needs a moment to start delivering; after that, the agent.
    for a, b in ((1.5, 2.9), (4.1, 4.9), (5.8, 6.9)):
        assert dominant_hz(window(left, a, b)) == pytest.approx(440, abs=3)
        assert rms(window(left, a, b)) > 1000
    # Paused: both sides silent. Muted (5.0–5.6 s): the agent only.
    assert rms(window(left, p0 + 0.02, p1 - 0.02)) == 0
    assert rms(window(right, p0 + 0.02, p1 - 0.02)) == 0
    m0, m1 = rep["marks"]["mute"], rep["marks"]["unmute"]
    assert rms(window(left, m0 + 0.1, m1 - 0.05)) == 0
    assert rms(window(right, m0 + 0.1, m1 - 0.05)) > 1000
    assert rep["counters"] is not None  # the once-a-second counters signal fired

    stats = rep["stats"]
    assert stats["port_errors"] == 0
    assert all(isinstance(stats[k], int) for k in ("mic_underruns", "speaker_underruns"))
    print("bridge stats", stats, "cpu %", rep["cpu_percent"])

    pulse.stop()  # flushes parecord
    _, heard = read_wav(tmp_path / "headset.wav")
    loud = abs(heard[:, 0].astype(int)) > 2000
    assert loud.sum() > 16000 * 3, "the headset did not get the customer's audio"
    start = int(loud.argmax()) + 1600  # skip the first 0.1 s of the tone
    assert dominant_hz(heard[start:start + 32000, 0]) == pytest.approx(1000, abs=3)


def test_without_any_audio_device_the_call_still_works_and_says_so(
        tone_peer: TonePeer, tmp_path: Path) -> None:
    run_dir = tmp_path / "empty-runtime"
    run_dir.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir),
           "PULSE_RUNTIME_PATH": str(run_dir / "pulse"),
           "PULSE_SERVER": f"unix:{run_dir}/no-such-socket", "HOME": str(tmp_path)}
    out = tmp_path / "silent.wav"
    run = run_call_child(env, tone_peer.uri, out, 3)
    assert run.returncode == 0, run.stderr[-3000:]
    rep = run.report
    assert "CONFIRMED" in rep["events"]
    kinds = [k for k, _ in rep["signals"]]
    assert kinds == ["no_device"]
    text = rep["signals"][0][1]
    assert text.startswith("No audio device") and "microphone" in text
    assert rep["inputs"] == [] and rep["outputs"] == []
    assert rep["stats"]["mic_underruns"] == 0 and rep["stats"]["speaker_overruns"] == 0
    _, s = read_wav(out)
    assert dominant_hz(window(s[:, 1], 0.5, 2.5)) == pytest.approx(1000, abs=3)
    assert rms(s[:, 0]) == 0
