"""The C rings of the native media path (sip/audio/native/nm_ring.c) against ByteRing.

The C ring is a port of sip.audio.ring.ByteRing, so the strongest check is differential:
the same writes and reads at the same (simulated) instants through both must hand out
the same bytes and count the same under/overruns, trims and drift adjustments — for the
bridge's real configuration, over minutes of jittered producer and consumer clocks
±1000 ppm apart. Then the C ring alone with two real threads (one producer, one
consumer, the GIL released inside every C call), its counters, and the loader's
fallbacks.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from array import array
from pathlib import Path

import numpy as np
import pjsua2  # noqa: F401 - the native library resolves pjsua in the loaded module
import pytest

from sip.audio.bridge import BridgeConfig
from sip.audio.native import load
from sip.audio.native.binding import NativeLib, NativeRing
from sip.audio.ring import BYTES_PER_MS, ByteRing

FRAME = 20 * BYTES_PER_MS


@pytest.fixture(scope="module")
def lib() -> NativeLib:
    native = load()
    assert native is not None, "the native media library did not build or load"
    return native


def speech(seconds: float, seed: int = 5) -> bytes:
    """A tone whose loudness comes and goes plus noise: every byte differs, and the
    quietest-point search has real choices to make."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    x = 8000 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)) * np.sin(2 * np.pi * 440 * t)
    return np.clip(x + rng.normal(0, 300, t.size), -32768, 32767).astype("<i2").tobytes()


def run_both(py: ByteRing, c: NativeRing, clock: list[float], ppm: float, seconds: float,
             read_ms: float, read_bytes: int, jitter_ms: float, seed: int,
             stall_s: float = 0.0) -> dict[str, int]:
    """Producer: 20 ms frames on a clock `ppm` off, stalled for `stall_s` once every 7 s
    (then catching up in a burst, as pjmedia's clock does); consumer: `read_bytes` every
    `read_ms`; both jittered. Every event goes to both rings at the same instant."""
    src = speech(seconds + 2)
    rnd = random.Random(seed)
    w_i = r_i = written = 0
    while True:
        t_w = w_i * 0.020 * (1 + ppm / 1e6) + rnd.uniform(0, jitter_ms) / 1000
        if stall_s and t_w % 7 < stall_s:
            t_w += stall_s - t_w % 7
        t_r = r_i * read_ms / 1000 + rnd.uniform(0, jitter_ms) / 1000
        now = min(t_w, t_r)
        if now > seconds:
            break
        clock[0] = now
        if t_w <= t_r:
            chunk = src[written:written + FRAME]
            assert py.write(chunk) == c.write(chunk, now=now)
            written += FRAME
            w_i += 1
        else:
            wanted = read_bytes + rnd.choice((0, 0, 64))
            a = py.read(read_bytes, wanted)
            b = c.read(read_bytes, wanted, now=now)
            assert a == b, f"outputs differ at {now:.3f} s"
            r_i += 1
        assert len(py) == len(c)
    for name in ("underruns", "overruns", "drift_adjustments", "bytes_written", "bytes_read",
                 "startup_underruns", "startup_overruns"):
        assert getattr(py, name) == getattr(c, name), name
    assert [(k, round(w, 6), round(g, 6)) for k, w, g in py.gaps] == \
        [(k, round(w, 6), round(g, 6)) for k, w, g in c.gaps]
    return {"drift_adjustments": c.drift_adjustments, "underruns": c.underruns,
            "overruns": c.overruns}


@pytest.mark.parametrize(("ppm", "read_ms", "read_bytes", "jitter_ms", "stall_s"), [
    (1000, 20, FRAME, 2.0, 0.0),       # mic ring: PulseAudio fast, pjmedia reads 20 ms
    (-1000, 16, 16 * 32, 2.0, 0.0),    # headset ring: pulled in 16 ms periods
    (350, 20, FRAME, 0.0, 0.0),        # the phase-locked 20/20 ms case of session 3
    (0, 10, 10 * 32, 6.0, 0.15),       # 150 ms producer stalls: under/overruns happen
])
def test_the_c_ring_hands_out_what_byte_ring_hands_out(
        lib: NativeLib, ppm: float, read_ms: float, read_bytes: int,
        jitter_ms: float, stall_s: float) -> None:
    clock = [0.0]
    py, _ = BridgeConfig().make_rings(lambda: clock[0])
    # The same configuration on both (the native path alone raises the mic prebuffer).
    c, _ = BridgeConfig(native_mic_prebuffer_ms=0, native_gap_ms=80).make_native_rings(lib)
    seconds = 180.0
    got = run_both(py, c, clock, ppm, seconds, read_ms, read_bytes, jitter_ms, seed=11,
                   stall_s=stall_s)
    if ppm:
        # e.g. 1000 ppm over 3 min = 180 ms to make up, 1 ms per adjustment.
        assert got["drift_adjustments"] >= abs(ppm) * seconds / 1e6 * 1000 * 0.6, got
    if stall_s:
        assert got["underruns"] > 0, "the stalls must exercise the underrun path"


def test_counters_prebuffer_growth_overflow_and_trim(lib: NativeLib) -> None:
    ms = BYTES_PER_MS
    ring = NativeRing(lib, 100 * ms, 40 * ms, 60 * ms, grow_to=80 * ms)
    assert ring.read(FRAME, now=0.0) == bytes(FRAME) and ring.underruns == 0  # priming
    ring.write(b"\x01\x00" * (20 * 16), now=0.01)
    assert not ring.primed and ring.read(FRAME, now=0.02) == bytes(FRAME)
    ring.write(b"\x02\x00" * (30 * 16), now=0.03)  # 50 ms now: primed at the next read
    assert ring.read(FRAME, now=0.04) == b"\x01\x00" * 320 and ring.primed
    short = ring.read(2 * FRAME, now=0.05)  # 30 ms left: short read
    assert short[:30 * ms] == b"\x02\x00" * (30 * 16) and short[30 * ms:] == bytes(10 * ms)
    assert ring.underruns == 1 and ring.prebuffer == 60 * ms  # grown by half its size
    assert len(ring.underrun_times) == 1 and ring.underrun_times[0] == pytest.approx(0.05)
    assert ring.write(bytes(130 * ms), now=0.06) == 70 * ms  # overflow: down to keep
    assert ring.overruns == 1 and len(ring) == 60 * ms
    assert ring.trim_to(20 * ms, count=True) == 40 * ms and ring.overruns == 2
    assert ring.reset_counters() == (1, 2)
    assert (ring.underruns, ring.overruns, ring.prebuffer) == (0, 0, 40 * ms)
    ring.clear()
    assert len(ring) == 0 and not ring.primed


def test_bad_arguments_get_byte_ring_s_messages(lib: NativeLib) -> None:
    with pytest.raises(ValueError, match="prebuffer must be between 0 and capacity"):
        NativeRing(lib, 100, 200)
    with pytest.raises(ValueError, match="capacity must be a positive number"):
        NativeRing(lib, 0)


def test_one_producer_and_one_consumer_thread_lose_and_reorder_nothing(
        lib: NativeLib) -> None:
    """Two OS threads at once (ctypes releases the GIL in each call): 20 ms writes of a
    running sample counter, 10 ms reads; the ring never overflows or runs dry by
    construction, so the consumer must see 1, 2, 3, ... exactly."""
    ring = NativeRing(lib, 240 * BYTES_PER_MS, 0, 120 * BYTES_PER_MS)
    frames = 600
    total = frames * 320
    seen: list[int] = []

    def produce() -> None:
        for i in range(frames):
            while len(ring) > 200 * BYTES_PER_MS:
                time.sleep(0.0002)
            ring.write(array("H", [(i * 320 + k) % 65536 for k in range(1, 321)]).tobytes())

    def consume() -> None:
        deadline = time.monotonic() + 60
        while len(seen) < total and time.monotonic() < deadline:
            if len(ring) >= 320:
                seen.extend(array("H", ring.read(320)))
            else:
                time.sleep(0.0002)

    threads = [threading.Thread(target=produce, daemon=True),
               threading.Thread(target=consume, daemon=True)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=90)
    assert not any(th.is_alive() for th in threads)
    assert seen == [(k % 65536) for k in range(1, total + 1)]
    assert (ring.underruns, ring.overruns) == (0, 0)
    assert ring.bytes_written == ring.bytes_read == total * 2


def test_loader_falls_back_with_one_plain_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.INFO, logger="sip.audio.native")
    assert load(src_dir=tmp_path / "missing", cache_dir=tmp_path / "c1") is None
    assert "native audio sources missing" in caplog.text
    src = Path(__file__).resolve().parents[2] / "sip" / "audio" / "native"
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert load(src_dir=src, cache_dir=tmp_path / "c2") is None
    assert "no-such-cc" in caplog.text
    monkeypatch.setenv("AGENT_DESKTOP_NATIVE_AUDIO", "0")
    assert load(src_dir=src, cache_dir=tmp_path / "c3") is None
    assert "AGENT_DESKTOP_NATIVE_AUDIO=0" in caplog.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one line per failed load, nothing else


def test_a_compiled_library_is_reused_and_rebuilt_when_its_source_changes(
        tmp_path: Path) -> None:
    from sip.audio.native import SOURCES, build

    src = Path(__file__).resolve().parents[2] / "sip" / "audio" / "native"
    copy = tmp_path / "src"
    copy.mkdir()
    for name in (*SOURCES, "nm.h"):
        (copy / name).write_bytes((src / name).read_bytes())
    first = build(copy, tmp_path / "cache")
    assert build(copy, tmp_path / "cache") == first
    with open(copy / "nm_ring.c", "a") as f:
        f.write("\n/* edited */\n")
    second = build(copy, tmp_path / "cache")
    assert second != first and second.exists()
    assert not first.exists(), "the build of the old sources is removed"


def test_the_native_microphone_ring_keeps_a_60_ms_prebuffer(lib: NativeLib) -> None:
    """Native capture arrives in even 20 ms fragments: 60 ms leaves the clock's 20 ms
    reads a 40 ms margin (the Python path's 40 ms stays as it was)."""
    mic, spk = BridgeConfig().make_native_rings(lib)
    assert (mic.prebuffer, spk.prebuffer) == (60 * BYTES_PER_MS, 40 * BYTES_PER_MS)
    assert BridgeConfig().make_rings()[0].prebuffer == 40 * BYTES_PER_MS


def mic_rings(lib: NativeLib, clock: list[float],
              gap_ms: int = BridgeConfig.native_gap_ms) -> list[ByteRing | NativeRing]:
    """The native microphone ring as the bridge makes it, in Python and in C (the
    Python one with the native prebuffer and gap threshold, so both sides match)."""
    cfg = BridgeConfig(native_gap_ms=gap_ms)
    c, _ = cfg.make_native_rings(lib)
    py, _ = cfg._rings(ByteRing, c.prebuffer // BYTES_PER_MS, gap_s=gap_ms / 1000,
                       clock=lambda: clock[0])
    return [py, c]


def drive(rings: list[ByteRing | NativeRing], clock: list[float],
          writes: list[float], reads: list[float]) -> None:
    """20 ms frames written at `writes`, 20 ms frames read at `reads` (seconds), in time
    order, into both rings; they must hand out the same bytes."""
    src = speech(max(writes + reads) + 1)
    events = sorted([(t, 1) for t in writes] + [(t, 0) for t in reads])
    w = 0
    for t, is_write in events:
        clock[0] = t
        if is_write:
            chunk = src[w * FRAME:(w + 1) * FRAME]
            w += 1
            for ring in rings:
                ring.write(chunk) if isinstance(ring, ByteRing) else ring.write(chunk, now=t)
        else:
            a, b = (ring.read(FRAME) if isinstance(ring, ByteRing) else
                    ring.read(FRAME, now=t) for ring in rings)
            assert a == b, f"outputs differ at {t:.3f} s"


def pulses(start: float, stop: float, pause_at: float | None = None,
           pause_s: float = 0.0) -> list[float]:
    """A 20 ms cadence from `start` to `stop` with one interval of `pause_s` between the
    last call before `pause_at` and the next (what PulseAudio serving a stream late looks
    like to our thread: the late fragments then come back to back)."""
    times = [round(start + 0.020 * k, 6) for k in range(int((stop - start) / 0.020) + 1)]
    if pause_at is None:
        return times
    first = next(k for k, t in enumerate(times) if t >= pause_at)
    resume = times[first - 1] + pause_s
    late = [k for k, t in enumerate(times) if k >= first and t < resume]
    for n, k in enumerate(late):
        times[k] = resume + 0.0001 * n  # the backlog, back to back
    return times


def test_a_capture_stream_s_start_up_pause_is_a_startup_underrun(lib: NativeLib) -> None:
    """The 0.42 s case: the stream opened while dialling, the peer answered at once; the
    first fragments prime the ring and then pause 81 ms. The read is padded and the
    prebuffer re-armed as for any underrun, but it is counted apart."""
    clock = [0.0]
    rings = mic_rings(lib, clock)
    reads = pulses(0.005, 1.5)
    writes = pulses(0.300, 1.5, pause_at=0.38, pause_s=0.081)
    drive(rings, clock, writes, reads)
    for ring in rings:
        assert (ring.startup_underruns, ring.underruns, tuple(ring.underrun_times)) == \
            (1, 0, ()), type(ring)
        assert ring.prebuffer == 80 * BYTES_PER_MS  # re-armed and grown all the same
        assert [(k, round(g, 3)) for k, _at, g in ring.gaps] == [("write", 0.081)]
    # The same pause once 500 ms of audio have arrived is the call's underrun.
    for ring in rings:
        ring.clear()
        ring.reset_counters()
    drive(rings, clock, pulses(2.0, 3.0, pause_at=2.6, pause_s=0.081), pulses(2.005, 3.0))
    for ring in rings:
        assert (ring.startup_underruns, ring.underruns) == (0, 1), type(ring)
        assert ring.underrun_times[0] == pytest.approx(2.645)  # 65 ms after the last write


@pytest.mark.parametrize(("pause_ms", "underruns"), [(50, 0), (70, 1), (79, 1)])
def test_a_producer_pause_shorter_than_the_old_gap_threshold_underruns(
        lib: NativeLib, pause_ms: int, underruns: int) -> None:
    """The 7–8 s mic underruns 'without a gap': with the 60 ms prebuffer the ring holds
    60 ms at a read, so a capture thread whose next fragment comes 60–80 ms after its
    last one underruns (here reads come 2 ms after writes: from 62 ms on) — and the
    80 ms gap threshold never recorded such a pause. The native rings keep pauses over
    50 ms, so the rig's event list now shows the producer's pause next to the underrun;
    with 80 ms (the Python path's threshold) the same sequence shows no gap."""
    clock = [0.0]
    for gap_ms in (50, 80):
        rings = mic_rings(lib, clock, gap_ms)
        pause = pause_ms / 1000
        drive(rings, clock, pulses(0.0, 9.0, pause_at=7.5, pause_s=pause),
              pulses(0.002, 9.0))
        for ring in rings:
            assert (ring.underruns, ring.startup_underruns) == (underruns, 0), type(ring)
            gaps = [("write", round(g, 3)) for k, _at, g in ring.gaps if k == "write"]
            assert gaps == ([("write", round(pause, 3))] if gap_ms < pause_ms else []), \
                (gap_ms, type(ring))


def test_a_playback_stream_s_start_up_stall_is_dropped_and_counted_apart(
        lib: NativeLib) -> None:
    """The headset side of the same start-up: the playback stream's first writes stall
    ~250 ms while the clock keeps writing; the overflow is a startup_overruns, and the
    playback thread's trim after a stalled write (C only, `trim_starting`) drops the
    backlog uncounted — once both sides have moved 1 s, neither happens any more."""
    clock = [0.0]
    _, c = BridgeConfig().make_native_rings(lib)
    py = BridgeConfig().make_rings(lambda: clock[0])[1]
    writes = pulses(0.0, 1.5)
    reads = [t for t in pulses(0.005, 1.5) if not 0.02 < t < 0.30]
    events = sorted([(t, 1) for t in writes] + [(t, 0) for t in reads])
    for t, is_write in events:
        clock[0] = t
        if is_write:
            assert py.write(bytes(FRAME)) == c.write(bytes(FRAME), now=t)
        else:
            assert py.read(FRAME) == c.read(FRAME, now=t)
    for ring in (py, c):
        assert (ring.overruns, ring.startup_overruns) == (0, 1), type(ring)
        assert not ring.starting  # 1.2 s of audio both ways
    assert len(c) > c.prebuffer and c.trim_starting() == 0, "no trim once started"
    c.clear()
    c.write(bytes(200 * BYTES_PER_MS), now=2.0)
    assert c.starting and c.trim_starting() == 160 * BYTES_PER_MS
    assert len(c) == c.prebuffer == 40 * BYTES_PER_MS and c.overruns == 0
