"""QtMultimedia vs sounddevice/PortAudio for the bridge's OS side, measured the same way.

Each backend runs in its own process against the test's PulseAudio: microphone → mic
ring → a 20 ms "pjmedia clock" thread → speaker ring → headset (the bridge's topology,
without pjsua2), while the main thread is busy 200 ms of every second like a loaded GUI.
A click train is played into a combined sink that reaches both the headset directly and
the microphone; on the headset each click then appears twice, and the lag between the
two is the mic → headset latency the backend adds. The test asserts that audio really
went through each backend; the figures (CPU, under/overruns, latency) are printed for
docs/decisions.md:  pytest tests/integration/test_audio_backends.py -s
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.audio_rig import REPO, PulseRig, pulse, read_wav

__all__ = ["pulse"]

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECONDS = 21.0
WARMUP = 5.0  # a cold PulseAudio stream can take ~2 s to settle


def click_train(path: Path, period_s: float = 0.7, seconds: float = 30) -> Path:
    """10 ms bursts of 1 kHz every `period_s`, 16 kHz mono WAV."""
    import wave

    rate = 16000
    x = np.zeros(int(seconds * rate), dtype=np.int16)
    burst = (12000 * np.sin(2 * np.pi * 1000 * np.arange(160) / rate)).astype(np.int16)
    for start in range(0, len(x) - 160, int(period_s * rate)):
        x[start:start + 160] = burst
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())
    return path


def echo_lag_ms(x: np.ndarray, period_s: float = 0.7,
                rate: int = 16000) -> tuple[float, int]:
    """(median lag in ms, how many clicks were heard twice): onsets of the bursts, then
    the gap between each direct click and its echo (gaps under half a period)."""
    env = np.convolve(np.abs(x.astype(np.float64)), np.ones(32) / 32, mode="same")
    above = env > 0.3 * env.max()
    starts = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    onsets: list[int] = []
    for st in starts:
        if not onsets or st - onsets[-1] > 0.015 * rate:  # 15 ms refractory
            onsets.append(int(st))
    gaps = np.diff(onsets) / rate
    echoes = gaps[gaps < 0.45 * period_s]
    if len(echoes) == 0:
        return 0.0, 0
    return float(np.median(echoes) * 1000), len(echoes)


@pytest.mark.parametrize("backend", ["qt", "sounddevice"])
def test_backend_carries_microphone_to_headset(
        backend: str, pulse: PulseRig, tmp_path: Path) -> None:
    both = pulse.pactl("load-module", "module-combine-sink", "sink_name=both",
                       "slaves=micfeed,headset", "adjust_time=1")
    assert both.returncode == 0, both.stderr
    rec = tmp_path / "headset.wav"
    pulse.record_headset(rec)
    proc = subprocess.Popen(["paplay", "--device=both", "--latency-msec=20",
                             str(click_train(tmp_path / "clicks.wav"))], env=pulse.env)
    pulse.children.append(proc)
    run = subprocess.run([sys.executable, "-m", "tests.integration.test_audio_backends",
                          backend, str(SECONDS)], env=pulse.env, cwd=REPO,
                         capture_output=True, text=True, timeout=SECONDS + 60, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    pulse.stop()
    _, heard = read_wav(rec)
    lag, echoes = echo_lag_ms(heard[:, 0])
    report.update(latency_ms=round(lag, 1), clicks_echoed=echoes)
    print(f"\n{backend}: {json.dumps(report)}")
    # ~28 clicks fall in the measured part of the run; most must come back through.
    assert echoes >= 15, f"the clicks did not come through {backend}: {report}"
    assert 15 < lag < 315


# ---------------------------------------------------------------------------------------
# Child: python -m tests.integration.test_audio_backends qt|sounddevice SECONDS
# ---------------------------------------------------------------------------------------

def _busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        sum(range(200))


def child(backend: str, seconds: float) -> dict[str, object]:
    import psutil
    from PySide6.QtCore import QCoreApplication, QThread, QTimer

    from sip.audio.bridge import BridgeConfig

    sys.setswitchinterval(0.001)
    mic, spk = BridgeConfig().make_rings()  # the bridge's own rings
    app = QCoreApplication([])
    stop = threading.Event()

    def clock() -> None:  # stands in for pjmedia's clock thread
        nxt = time.monotonic()
        while not stop.is_set():
            spk.write(mic.read(640))
            nxt += 0.02
            time.sleep(max(0.0, nxt - time.monotonic()))

    keep: list[Any] = []  # the backend's live objects: (QThread, io) or two streams
    if backend == "qt":
        from sip.audio.qt_io import AudioIO

        thread = QThread()
        io = AudioIO(mic, spk)
        io.moveToThread(thread)
        thread.start(QThread.Priority.TimeCriticalPriority)
        QTimer.singleShot(0, io, io.setup)
        QTimer.singleShot(0, io, lambda: io.open_streams("", ""))
        keep += [thread, io]
    else:
        import sounddevice as sd

        def on_in(indata, frames, t, status) -> None:  # type: ignore[no-untyped-def]
            mic.write(bytes(indata))

        def on_out(outdata, frames, t, status) -> None:  # type: ignore[no-untyped-def]
            outdata[:] = spk.read(len(outdata))

        common = {"samplerate": 16000, "channels": 1, "dtype": "int16", "blocksize": 256,
                  "latency": "low", "device": "pulse"}
        ins = sd.RawInputStream(callback=on_in, **common)
        outs = sd.RawOutputStream(callback=on_out, **common)
        ins.start()
        outs.start()
        keep += [ins, outs]

    ticker = threading.Thread(target=clock, daemon=True)
    ticker.start()
    proc = psutil.Process()
    marks: dict[str, float] = {}

    def cpu_now() -> float:
        return sum(proc.cpu_times()[:2])

    def warm() -> None:
        """Phase 1 (idle GUI): CPU of the audio path alone."""
        mic.reset_counters()
        spk.reset_counters()
        marks["cpu"], marks["t"] = cpu_now(), time.monotonic()

    def loaded() -> None:
        """Phase 2: a GUI busy 200 ms of every second; count glitches."""
        marks["cpu_percent"] = 100 * (cpu_now() - marks["cpu"]) / (time.monotonic() - marks["t"])
        marks["idle_glitches"] = mic.underruns + spk.underruns + mic.overruns + spk.overruns
        mic.reset_counters()
        spk.reset_counters()
        load.start(1000)

    load = QTimer()
    load.timeout.connect(lambda: _busy(200))
    half = WARMUP + (seconds - WARMUP) / 2
    QTimer.singleShot(int(WARMUP * 1000), warm)
    QTimer.singleShot(int(half * 1000), loaded)
    QTimer.singleShot(int(seconds * 1000), app.quit)
    app.exec()
    stop.set()
    ticker.join()
    result = {"backend": backend, "cpu_percent": round(marks["cpu_percent"], 1),
              "idle_gui_glitches": int(marks["idle_glitches"]),
              "busy_gui_mic_underruns": mic.underruns, "busy_gui_mic_overruns": mic.overruns,
              "busy_gui_speaker_underruns": spk.underruns,
              "busy_gui_speaker_overruns": spk.overruns}
    if backend == "qt":
        thread, io = keep
        QTimer.singleShot(0, io, io.teardown)
        time.sleep(0.3)
        thread.quit()
        thread.wait()
    else:
        for s in keep:
            s.stop()
            s.close()
    return result


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], float(sys.argv[2]))))
