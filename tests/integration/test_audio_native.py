"""The native media path in real calls: PulseAudio (started here) ↔ C threads ↔ C ports
in pjsua's conference bridge ↔ sipp, with the recorder's C taps.

What only this path can do is shown by holding the GIL: the main thread makes one
200 ms C-level call (`sum(range(n))` never hands the GIL over) every second of a call.
The Python ports and Qt streams all need the GIL, so the headset and microphone run dry;
the native path never takes it. Also here: the fallback when the library cannot be
built (the call, its audio and its recording work exactly as before), and choosing
another headset mid-call (the C thread reopens its stream on the new device).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pjsua2  # noqa: F401 - the native library resolves pjsua in the loaded module
import pytest

# Imported here, not in a test: QtMultimedia's import-time warnings (no PipeWire on
# this machine) would fail the test that triggers them (qt_log_level_fail).
from sip.audio.bridge import BridgeConfig
from sip.audio.native import load
from sip.audio.native.binding import NativeStream
from sip.audio.ring import BYTES_PER_MS
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
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def seconds(samples, a: float, b: float):  # type: ignore[no-untyped-def]
    return samples[int(a * 16000):int(b * 16000)]


def assert_both_channels(out: Path, start: float, end: float) -> None:
    """The agent's 440 Hz on the left, the customer's 1 kHz on the right (FFT peaks)."""
    channels, s = read_wav(out)
    assert channels == 2
    assert dominant_hz(seconds(s[:, 1], start, end)) == pytest.approx(1000, abs=3)
    assert dominant_hz(seconds(s[:, 0], start, end)) == pytest.approx(440, abs=3)
    assert rms(seconds(s[:, 0], start, end)) > 1000


@pytest.mark.parametrize("path", ["native", "python"])
def test_a_gui_thread_holding_the_gil_starves_only_the_python_path(
        path: str, pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path) -> None:
    pulse.play_into_mic(sine_wav(tmp_path / "mic.wav", 440, 40))
    env = dict(pulse.env)
    if path == "python":
        env["AGENT_DESKTOP_NATIVE_AUDIO"] = "0"
    out = tmp_path / "call.wav"
    run = run_call_child(env, tone_peer.uri, out, 9, "--prepare", "--gil-stall", "200",
                         "--input", MIC, "--output", HEADSET)
    assert run.returncode == 0, run.stderr[-3000:]
    rep = run.report
    stats = rep["stats"]
    stalls = rep["gil_stalls_ms"]
    print(path, "GIL stalls ms", stalls, "stats", stats)
    assert len(stalls) >= 6 and min(stalls) >= 150, "the GIL was not held as intended"
    assert stats["native"] is (path == "native")
    underruns = stats["mic_underruns"] + stats["speaker_underruns"]
    if path == "native":
        assert underruns == 0, stats
        assert_both_channels(out, 1.5, 8.5)  # the recorder's C taps kept up too
    else:
        assert underruns > 0, stats


def test_without_a_compiler_the_python_ports_carry_the_call(
        pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path) -> None:
    pulse.play_into_mic(sine_wav(tmp_path / "mic.wav", 440, 40))
    pulse.record_headset(tmp_path / "headset.wav")
    env = {**pulse.env, "CC": str(tmp_path / "no-such-cc"),
           "XDG_CACHE_HOME": str(tmp_path / "empty-cache")}  # no earlier build to reuse
    out = tmp_path / "call.wav"
    run = run_call_child(env, tone_peer.uri, out, 5, "--prepare", "--input", MIC,
                         "--output", HEADSET)
    assert run.returncode == 0, run.stderr[-3000:]
    rep = run.report
    assert rep["events"][-1] == "DISCONNECTED" and "CONFIRMED" in rep["events"]
    assert rep["stats"]["native"] is False and rep["stats"]["port_errors"] == 0
    fallback = [ln for ln in run.stderr.splitlines() if "native audio path unavailable" in ln]
    assert len(fallback) == 1 and "no-such-cc" in fallback[0], run.stderr[-2000:]
    assert_both_channels(out, 1.5, 4.5)
    pulse.stop()
    _, heard = read_wav(tmp_path / "headset.wav")
    assert (abs(heard[:, 0].astype(int)) > 2000).sum() > 16000 * 2


def test_choosing_another_headset_mid_call_moves_the_audio_there(
        pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path) -> None:
    loaded = pulse.pactl("load-module", "module-null-sink", "sink_name=spare",
                         "sink_properties=device.description=Spare")
    assert loaded.returncode == 0, loaded.stderr
    pulse.play_into_mic(sine_wav(tmp_path / "mic.wav", 440, 40))
    pulse.record_headset(tmp_path / "headset.wav")
    pulse.children.append(subprocess.Popen(  # recorded like the headset, stopped with it

        ["parecord", "--device=spare.monitor", "--latency-msec=20", "--rate=16000",
         "--channels=1", "--format=s16le", "--file-format=wav", str(tmp_path / "spare.wav")],
        env=pulse.env))
    out = tmp_path / "call.wav"
    run = run_call_child(pulse.env, tone_peer.uri, out, 8, "--prepare", "--input", MIC,
                         "--output", HEADSET, "--switch-output", "Spare@4")
    assert run.returncode == 0, run.stderr[-3000:]
    rep = run.report
    assert rep["stats"]["native"] is True
    assert ["device_changed", "Spare"] in rep["signals"]
    assert rep["settings"]["audio.output_device"] == HEADSET  # as chosen before the call
    assert_both_channels(out, 1.5, 7.5)  # the recording does not notice the switch
    pulse.stop()
    _, before = read_wav(tmp_path / "headset.wav")
    _, after = read_wav(tmp_path / "spare.wav")
    loud_before = (abs(before[:, 0].astype(int)) > 2000).sum() / 16000
    loud_after = (abs(after[:, 0].astype(int)) > 2000).sum() / 16000
    # ~3.5 s of the tone on the first headset, ~4 s on the new one, none on both.
    assert 2.0 < loud_before < 5.0 and 2.5 < loud_after < 5.5, (loud_before, loud_after)
    loud = abs(after[:, 0].astype(int)) > 2000
    start = int(loud.argmax()) + 1600
    assert dominant_hz(after[start:start + 16000, 0]) == pytest.approx(1000, abs=3)
    assert os.path.getsize(out) > 0


def test_engine_start_stop_with_native_calls_in_flight_never_aborts(
        pulse: PulseRig, tmp_path: Path) -> None:
    from tests.integration.rig.simline import SimLine

    line = SimLine()
    try:
        r = subprocess.run([sys.executable, "-m", "tests.integration.rig.native_cycles",
                            line.domain, "4", str(tmp_path / "rec")], cwd=REPO,
                           env=pulse.env, capture_output=True, text=True, timeout=180)
    finally:
        assert line.stop() == 0, "the simulated line did not shut down cleanly"
    out = [ln for ln in r.stdout.splitlines() if ln.startswith(("CYCLE", "DONE"))]
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert out[-1] == "DONE" and len(out) == 5, out
    for ln in out[:-1]:
        fields = dict(kv.split("=", 1) for kv in ln.split()[2:])
        assert fields["native"] == "True" and fields["attached"] == "True", ln
        assert int(fields["mic_port_calls"]) >= 40, ln  # the clock called our C port
        assert fields["detached"] == "True" and fields["all_ended"] == "True", ln
        sizes = [int(x) for x in fields["recordings"].strip("[]").split(",") if x]
        assert len(sizes) == 1 and sizes[0] > 44 + 16000 * 4 // 2, ln  # > 0.5 s of stereo


def test_a_playback_stream_stalled_while_starting_drops_the_backlog_uncounted(
        pulse: PulseRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real playback thread against a real PulseAudio that stops serving it for
    180 ms right after the stream opened (SIGSTOP of the rig's own server): the call's
    audio that piled up meanwhile is dropped down to the prebuffer after the stalled
    write (no 220 ms of latency left behind), and nothing counts as the call's overrun."""
    HEADSET_SINK = "headset"  # the rig's sink_name for HEADSET
    for key in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH", "HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(key, pulse.env[key])  # libpulse in this process: the rig's server
    monkeypatch.delenv("PULSE_SERVER", raising=False)
    lib = load()
    assert lib is not None
    _, ring = BridgeConfig().make_native_rings(lib)
    stream = NativeStream(lib, True, ring, 10)
    stop = threading.Event()

    def clock() -> None:  # pjmedia's clock thread stand-in: 20 ms every 20 ms
        due = time.monotonic()
        while not stop.is_set():
            ring.write(bytes(20 * BYTES_PER_MS))
            due += 0.020
            time.sleep(max(0.0, due - time.monotonic()))

    producer = threading.Thread(target=clock, name="test-clock")
    assert pulse.proc is not None
    try:
        stream.open(HEADSET_SINK)
        # The rig's null sink first renders in ~1 s blocks (a real device starts at
        # once): wait until the stream plays in real time (10 ms blocks: ~30 per 0.3 s,
        # twice in a row), then start the call's audio.
        deadline, steady = time.monotonic() + 10, 0
        while steady < 2 and time.monotonic() < deadline:
            before = stream.counters()["blocks"]
            time.sleep(0.3)
            steady = steady + 1 if stream.counters()["blocks"] - before >= 20 else 0
        assert steady == 2, "the playback stream never ran in real time"
        ring.clear()
        ring.reset_counters()
        producer.start()
        time.sleep(0.15)
        os.kill(pulse.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(0.18)
        finally:
            os.kill(pulse.proc.pid, signal.SIGCONT)
        time.sleep(0.25)
        level_ms = len(ring) / BYTES_PER_MS
        assert ring.starting, "still within the headset's 1 s start-up"
    finally:
        stop.set()
        if producer.is_alive():
            producer.join()
        stream.close()
    stalls = [g for side, _at, g in ring.gaps if side == "read" and g > 0.1]
    assert stalls, f"the write never stalled: {ring.gaps}"
    print("playback stalls s", stalls, "level after", level_ms, "ms")
    assert level_ms <= 100, f"the backlog stayed: {level_ms} ms"  # 190 ms untrimmed
    assert (ring.overruns, ring.underruns) == (0, 0)
