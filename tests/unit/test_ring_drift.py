"""Clock-drift compensation in ByteRing: a producer and a consumer on clocks ±1000 ppm
apart for 10 simulated minutes (the call rig measured ~350–400 ppm between pjmedia's
clock and PulseAudio's), the real bridge configuration.

Why simulated time: the ring's drift logic is driven by the bytes the consumer takes, not
by a clock, so a discrete-event loop reproduces 10 minutes of a call in about a second.
"""

from __future__ import annotations

import random
from array import array

import numpy as np
import pytest

from sip.audio.bridge import BridgeConfig
from sip.audio.ring import BYTES_PER_MS, SLICE, ByteRing, shrink, stretch

FRAME = 20 * BYTES_PER_MS  # pjmedia's 20 ms frames
SECONDS = 600


def signal(seconds: float, seed: int = 7) -> bytes:
    """Speech-like test audio: a tone whose loudness comes and goes, plus noise, so that
    every byte is distinct enough for the comparison to catch any stray edit."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)
    x = 8000 * env * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 300, t.size)
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


class SimClock:
    """Simulated time for the ring's `clock`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rings(**cfg: object) -> tuple[ByteRing, ByteRing, SimClock]:
    """The real bridge configuration's (mic, headset) rings on a simulated clock."""
    clock = SimClock()
    mic, spk = BridgeConfig(**cfg).make_rings(clock)  # type: ignore[arg-type]
    return mic, spk, clock


def simulate(ring: ByteRing, clock: SimClock, ppm: float, *, read_bytes: int,
             read_ms: float, jitter_ms: float = 2.0,
             seconds: int = SECONDS) -> tuple[bytes, bytes, list[int]]:
    """Producer: 20 ms frames on a clock `ppm` slow (negative: fast); consumer: `read_bytes` every
    `read_ms` on the true clock, each event jittered by up to `jitter_ms`. Returns (what
    was written, the audio read once primed, the level found at each read after 5 s)."""
    src = signal(seconds + 2)
    rnd = random.Random(3)
    period_w = 0.020 * (1 + ppm / 1e6)
    w_i = r_i = 0
    written = 0
    out = bytearray()
    levels: list[int] = []
    while True:
        t_w = w_i * period_w + rnd.uniform(0, jitter_ms) / 1000
        t_r = r_i * read_ms / 1000 + rnd.uniform(0, jitter_ms) / 1000
        if min(t_w, t_r) > seconds:
            break
        clock.now = min(t_w, t_r)
        if t_w <= t_r:
            ring.write(src[written:written + FRAME])
            written += FRAME
            w_i += 1
        else:
            was_primed = ring.primed
            if t_r > 5:
                levels.append(len(ring))
            data = ring.read(read_bytes)
            if was_primed or ring.primed:
                out += data
            r_i += 1
    return src[:written], bytes(out), levels


def check_untouched(src: bytes, out: bytes, log: list[tuple[str, int]]) -> None:
    """Between adjustments the output is the input byte for byte; each stretch is
    x[0:L] + crossfade + x[L:2L] and each shrink replaces 2 slices by one."""
    i = o = 0
    for kind, pos in log:
        assert out[o:pos] == src[i:i + pos - o]
        i += pos - o
        o = pos
        if kind == "stretch":
            assert out[o:o + SLICE] == src[i:i + SLICE]
            assert out[o + 2 * SLICE:o + 3 * SLICE] == src[i + SLICE:i + 2 * SLICE]
            o += 3 * SLICE
        else:
            o += SLICE
        i += 2 * SLICE
    assert out[o:] == src[i:i + len(out) - o]
    assert len(out) - o > 0


# mic: pjmedia reads 20 ms frames; headset: pulled in 16 ms periods, or in 20 ms periods
# with little jitter: phase-locked to the producer, the margin a read finds is then flat
# until the phases cross and 20 ms lower at once (what the call rig showed).
SIDES = {"mic": (FRAME, 20.0, 2.0), "headset": (512, 16.0, 2.0),
         "headset-locked": (FRAME, 20.0, 0.1)}


@pytest.mark.parametrize("side", list(SIDES))
@pytest.mark.parametrize("ppm", [-1000.0, 1000.0])
def test_ten_minutes_at_1000_ppm_no_underrun_level_held(side: str, ppm: float) -> None:
    mic, spk, clock = rings()
    ring = mic if side == "mic" else spk
    read_bytes, read_ms, jitter = SIDES[side]
    src, out, levels = simulate(ring, clock, ppm, read_bytes=read_bytes, read_ms=read_ms,
                                jitter_ms=jitter)
    assert ring.underruns == 0
    assert ring.overruns == 0
    # 1000 ppm of 600 s is 600 ms: about one 1 ms slice per second, all the same way.
    assert 500 <= ring.drift_adjustments <= 700
    kinds = {k for k, _ in ring.drift_log}
    assert kinds == ({"stretch"} if ppm > 0 else {"shrink"})
    # Without compensation the level would move by 600 ms; it stays within the band
    # (6 ms each way) plus one frame's and one read's worth of sawtooth.
    assert max(levels) - min(levels) <= 2 * 6 * BYTES_PER_MS + read_bytes + FRAME
    check_untouched(src, out, list(ring.drift_log))


@pytest.mark.parametrize("ppm", [-1000.0, 1000.0])
def test_a_reader_taking_all_the_ring_holds_is_compensated_without_gaps(ppm: float) -> None:
    """The headset reader hands the sink min(what it asks, what the ring holds) and
    passes what it asked as `wanted`: drift is still corrected, and no read comes back
    short (the ring also refuses a cut that would leave less than the demand)."""
    _mic, spk, clock = rings()
    rnd = random.Random(5)
    period_w = 0.020 * (1 + ppm / 1e6)
    w_i = r_i = 0
    ask = 50 * BYTES_PER_MS  # a sink topping up 50 ms at a time
    while (t := min(w_i * period_w, r_i * 0.050)) < 300:
        clock.now = t + rnd.uniform(0, 0.002)
        if w_i * period_w <= r_i * 0.050:
            spk.write(bytes(FRAME))
            w_i += 1
        else:
            avail = len(spk) & ~1
            spk.read(min(ask, avail) if avail and spk.primed else ask, ask)
            r_i += 1
    assert spk.underruns == 0
    assert spk.drift_adjustments > 100


def test_same_clock_with_jitter_makes_no_adjustment() -> None:
    mic, spk, clock = rings()
    for ring, rb, rms in ((mic, FRAME, 20.0), (spk, 512, 16.0)):
        clock.now = 0.0
        src, out, _levels = simulate(ring, clock, 0.0, read_bytes=rb, read_ms=rms,
                                     jitter_ms=6.0, seconds=120)
        assert ring.drift_adjustments == 0
        assert ring.underruns == 0
        assert out == src[:len(out)]


def test_without_compensation_the_rig_drift_underruns() -> None:
    """The failure this fixes, reproduced: the headset ring at the drift measured in the
    rig (its producer, pjmedia, 350 ppm slower than the sink) and no compensation
    underruns within 150 s."""
    _mic, spk, clock = rings(drift_compensation=False)
    simulate(spk, clock, 350.0, read_bytes=FRAME, read_ms=20.0, jitter_ms=0.1, seconds=150)
    assert spk.underruns >= 1
    assert spk.drift_adjustments == 0


def test_stretch_and_shrink_keep_both_seams_continuous() -> None:
    ramp = array("h", range(0, 64 * 100, 100)).tobytes()  # 64 samples, a smooth ramp
    buf = bytearray(ramp)
    stretch(buf, 0)
    x = array("h", bytes(buf))
    assert len(buf) == len(ramp) + SLICE
    steps = [abs(x[k + 1] - x[k]) for k in range(len(x) - 1)]
    # The crossfade goes from x[L] back to x[L-1] over L samples: no jump beyond the
    # ramp's own slope at either seam.
    assert max(steps) <= 200
    buf = bytearray(ramp)
    shrink(buf, 0)
    y = array("h", bytes(buf))
    assert len(buf) == len(ramp) - SLICE
    assert abs(y[0] - 0) <= 200 and abs(y[15] - 3100) <= 200 and y[16] == 3200


def test_bad_drift_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="drift_window"):
        ByteRing(1000, drift_window=-1)
    with pytest.raises(ValueError, match="drift_band"):
        ByteRing(1000, drift_window=100, drift_band=0)
