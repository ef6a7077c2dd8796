"""Headset unplugged mid-call → the default device takes over and the agent is told;
plugged back in → the bridge returns to it. Real PulseAudio, real pjsua2 call."""

from __future__ import annotations

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


def test_unplugged_headset_falls_back_to_default_and_is_picked_up_again(
        pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path) -> None:
    loaded = pulse.pactl("load-module", "module-null-sink", "sink_name=spare",
                         "sink_properties=device.description=Spare")
    assert loaded.returncode == 0, loaded.stderr
    pulse.record_headset(tmp_path / "default-headset.wav")
    run = run_call_child(pulse.env, tone_peer.uri, tmp_path / "call.wav", 8,
                         "--output", "Spare", "--unplug-at", "2.5", "--replug-at", "5",
                         "--prepare")
    assert run.returncode == 0, run.stderr[-3000:]
    rep = run.report
    assert "Spare" in rep["outputs"] and HEADSET in rep["outputs"]
    assert rep["signals"] == [["device_lost", "Spare"], ["device_changed", "Spare"]]
    assert rep["stats"]["port_errors"] == 0

    pulse.stop()
    _, heard = read_wav(tmp_path / "default-headset.wav")
    loud_s = (abs(heard[:, 0].astype(int)) > 2000).sum() / 16000
    # The default headset carried the call only while Spare was unplugged (2.5 s).
    assert 1.5 < loud_s < 3.5, f"default headset played {loud_s:.2f} s of the call"


def test_unplugged_microphone_falls_back_and_the_agent_stays_audible(
        pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path) -> None:
    """Both microphones hear the same 440 Hz feed: the recording's left channel must carry
    it before the unplug, on the default mic in between, and after the replug."""
    plug = ("module-remap-source source_name=sparemic master=micfeed.monitor "
            "source_properties=device.description=SpareMic")
    loaded = pulse.pactl("load-module", *plug.split())
    assert loaded.returncode == 0, loaded.stderr
    pulse.play_into_mic(sine_wav(tmp_path / "mic.wav", 440, 40))
    out = tmp_path / "call.wav"
    run = run_call_child(pulse.env, tone_peer.uri, out, 8, "--input", "SpareMic",
                         "--plug", plug, "--unplug-at", "2.5", "--replug-at", "5",
                         "--prepare")
    assert run.returncode == 0, run.stderr[-3000:]
    rep = run.report
    assert "SpareMic" in rep["inputs"] and MIC in rep["inputs"]
    assert rep["signals"] == [["device_lost", "SpareMic"], ["device_changed", "SpareMic"]]
    _, s = read_wav(out)
    left = s[:, 0]
    for a, b in ((1.5, 2.4), (3.5, 4.8), (6.5, 7.8)):
        seg = left[int(a * 16000):int(b * 16000)]
        assert dominant_hz(seg) == pytest.approx(440, abs=3), (a, b)
        assert rms(seg) > 1000, (a, b)


def test_a_remembered_headset_that_is_not_plugged_in_uses_the_default_and_says_so(
        pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path) -> None:
    pulse.record_headset(tmp_path / "default-headset.wav")
    run = run_call_child(pulse.env, tone_peer.uri, tmp_path / "call.wav", 4,
                         "--stored-output", "Office Headset", "--prepare")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.report["signals"] == [["device_lost", "Office Headset"]]
    pulse.stop()
    _, heard = read_wav(tmp_path / "default-headset.wav")
    loud = abs(heard[:, 0].astype(int)) > 2000
    assert loud.sum() > 16000 * 2, "the call was not heard on the default headset"
    start = int(loud.argmax()) + 1600
    assert dominant_hz(heard[start:start + 16000, 0]) == pytest.approx(1000, abs=3)


def test_a_headset_plugged_in_during_a_call_without_any_device_is_picked_up(
        tone_peer: TonePeer, tmp_path: Path) -> None:
    rig = PulseRig(tmp_path / "bare-pulse", with_devices=False)
    rig.start()
    try:
        assert rig.pactl("list", "short", "sinks").stdout.strip() == ""
        plug = ("module-null-sink sink_name=late "
                "sink_properties=device.description=LateHeadset")
        # The device list is polled every 2 s: an 8 s call leaves a loaded machine time
        # to notice a headset plugged in at 2 s before the call ends.
        run = run_call_child(rig.env, tone_peer.uri, tmp_path / "call.wav", 8,
                             "--plug", plug, "--replug-at", "2", "--prepare")
    finally:
        rig.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    kinds = [k for k, _ in run.report["signals"]]
    assert kinds == ["no_device", "device_changed"], run.report["signals"]
    assert run.report["signals"][1][1] == "LateHeadset"
    assert "CONFIRMED" in run.report["events"]
