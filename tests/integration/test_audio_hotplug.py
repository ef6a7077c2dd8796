"""Headset unplugged mid-call → the default device takes over and the agent is told;
plugged back in → the bridge returns to it. Real PulseAudio, real pjsua2 call."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.audio_rig import (
    HEADSET,
    PulseRig,
    TonePeer,
    pulse,
    read_wav,
    run_call_child,
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
