"""The real recorder (pjsua2 taps + writer thread) under faults: the app killed mid-call,
and the disk filling up during a call. Each call runs in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_desktop.wav import HEADER_SIZE
from sip.recorder import repair_recordings
from tests.integration.audio_rig import (
    REPO,
    TonePeer,
    dominant_hz,
    read_wav,
    run_call_child,
    tone_peer,
)

__all__ = ["tone_peer"]  # fixture

pytestmark = pytest.mark.integration


def no_sound_env(tmp_path: Path) -> dict[str, str]:
    run = tmp_path / "runtime"
    run.mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "XDG_RUNTIME_DIR": str(run), "PULSE_RUNTIME_PATH": str(run),
            "PULSE_SERVER": f"unix:{run}/none", "HOME": str(tmp_path)}


def test_app_killed_mid_call_leaves_a_recording_that_repair_makes_playable(
        tone_peer: TonePeer, tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    out = folder / "call.wav"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.audio_rig", tone_peer.uri, str(out), "60"],
        cwd=REPO, env=no_sound_env(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        lines: list[bytes] = []  # pjlib prints a few log lines first; b"" means the child ended
        while not lines or lines[-1] not in (b"recording\n", b""):
            lines.append(proc.stdout.readline())
        assert lines[-1] == b"recording\n", lines
        # Let ~2.5 s of the call be written, then kill -9 (no stop(), no final header).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
                not out.exists() or out.stat().st_size < HEADER_SIZE + 64000 * 2.5):
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    on_disk = out.stat().st_size - HEADER_SIZE
    assert on_disk >= 64000 * 2.5
    assert repair_recordings(folder) == [out]
    channels, s = read_wav(out)
    assert channels == 2
    assert len(s) == on_disk // 4
    assert len(s) / 16000 >= 2.5
    assert dominant_hz(s[8000:len(s) - 1600, 1]) == pytest.approx(1000, abs=3)


def test_disk_full_during_a_call_stops_recording_with_a_plain_message_call_goes_on(
        tone_peer: TonePeer, tmp_path: Path) -> None:
    """The child's file-size limit makes the kernel refuse writes mid-call (EFBIG), the
    same path as a full disk: the recorder says so, keeps the audio written so far with a
    correct header, and the call itself is unaffected."""
    limit = HEADER_SIZE + 64000 * 2 + 1001  # ~2 s of stereo audio, ends mid-sample
    out = tmp_path / "limited.wav"
    run = run_call_child(no_sound_env(tmp_path), tone_peer.uri, out, 4,
                         "--fsize-limit", str(limit))
    assert run.returncode == 0, run.stderr[-3000:]
    rep = run.report
    assert rep["events"][-1] == "DISCONNECTED" and "CONFIRMED" in rep["events"]
    failures = [text for kind, text in rep["signals"] if kind == "recorder_failed"]
    assert len(failures) == 1
    assert failures[0].startswith("Recording stopped") and "kept" in failures[0]
    rec = rep["recording"]
    assert rec["error"] == failures[0]
    assert rec["size_bytes"] == out.stat().st_size <= limit
    channels, s = read_wav(out)
    assert channels == 2
    assert (out.stat().st_size - HEADER_SIZE) == len(s) * 4  # header matches the file
    assert rec["duration_s"] == pytest.approx(len(s) / 16000, abs=0.001)
    assert len(s) / 16000 == pytest.approx(2.0, abs=0.05)
    assert dominant_hz(s[8000:, 1]) == pytest.approx(1000, abs=3)
