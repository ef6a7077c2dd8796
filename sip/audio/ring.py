"""A bounded byte ring shared by the pjmedia clock thread and the OS audio thread.

Why a ring and not a queue of frames: the OS side delivers blocks of whatever size the
driver chooses (PulseAudio hands out 2048-byte chunks, pjmedia wants exactly 640 bytes =
20 ms at 16 kHz), so the two sides meet on a byte stream. The ring is bounded and drops
the *oldest* audio when full: latency must never creep beyond ~120 ms in a live call,
and losing a stale fragment is far less audible than falling behind.

Counters are events, not bytes: an *overrun* is one write that had to discard old audio,
an *underrun* is one read that found less than it asked for (the gap is filled with
silence so the consumer always gets a full frame).
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import deque
from collections.abc import Callable

#: 16 kHz mono signed 16-bit: bytes per millisecond.
BYTES_PER_MS = 32
#: A pause this long between two reads (or two writes) is kept in `gaps` for diagnosis:
#: both sides normally come every 16–64 ms (a ring whose sides both come every 20 ms
#: can keep shorter ones: `gap_s`).
GAP_S = 0.08
#: Drift compensation: one adjustment repeats or removes this many bytes (1 ms).
SLICE = BYTES_PER_MS
_L = SLICE // 2  # samples in a slice


def _now() -> float:
    """time.monotonic(), looked up at each call (tests patch the module's `time`)."""
    return time.monotonic()


def _crossfade(a: array[int], b: array[int]) -> list[int]:
    """`a` fading out into `b` fading in, sample by sample (both `_L` samples)."""
    return [int(a[k] * (_L - k - 0.5) / _L + b[k] * (k + 0.5) / _L) for k in range(_L)]


def _quietest(buf: bytearray, span: int) -> int:
    """Byte offset of the quietest 2-slice window among the first `span` bytes (a
    repeat or a cut is least audible in a pause between syllables)."""
    best, best_at = -1, 0
    for at in range(0, min(span, len(buf) - 2 * SLICE) + 1, SLICE):
        energy = sum(map(abs, array("h", buf[at:at + 2 * SLICE])))
        if best < 0 or energy < best:
            best, best_at = energy, at
    return best_at


def stretch(buf: bytearray, at: int) -> None:
    """Insert one slice at `at`: x[0:L] + crossfade(x[L:2L] -> x[0:L]) + x[L:2L], so
    both seams continue the waveform (needs 2 slices of audio from `at`)."""
    x = array("h", buf[at:at + 2 * SLICE])
    mid = array("h", _crossfade(x[_L:], x[:_L]))
    buf[at + SLICE:at + SLICE] = mid.tobytes()


def shrink(buf: bytearray, at: int) -> None:
    """Remove one slice at `at`: the 2 slices there become x[0:L] fading into x[L:2L]."""
    x = array("h", buf[at:at + 2 * SLICE])
    buf[at:at + 2 * SLICE] = array("h", _crossfade(x[:_L], x[_L:])).tobytes()


class ByteRing:
    """Thread-safe bounded FIFO of bytes with drop-oldest and under/overrun counters.

    All methods are short and hold the lock only for a memcpy-sized amount of work, so
    they are safe to call from pjmedia's clock thread callbacks.
    """

    def __init__(self, capacity: int, prebuffer: int = 0, keep: int | None = None, *,
                 high: int | None = None, settle_s: float = 1.0,
                 grow_to: int | None = None, drift_window: int = 0,
                 drift_band: int = 8 * BYTES_PER_MS, startup: int = 0,
                 gap_s: float = GAP_S,
                 clock: Callable[[], float] | None = None) -> None:
        """`prebuffer` bytes must accumulate before reads return audio (a tiny jitter
        buffer): the OS delivers audio in bursts (PulseAudio: ~64 ms chunks), so reading
        20 ms frames from an almost empty ring would chop every burst. Until primed, and
        again after every underrun, reads return silence without counting an underrun.

        `keep` (default: half the capacity) is how much of the newest audio survives an
        overflow. Dropping only the excess would leave the ring at capacity, every
        following write would overflow again and the latency would stay at its maximum;
        dropping down to `keep` costs one audible skip and restores a low latency.

        `high` (optional) lets the capacity absorb bursts without turning them into
        latency. A producer that catches up after a stall (pjmedia's clock runs the missed
        ticks back to back) writes 100 ms or more at once; with a tight capacity that
        burst overflowed, the drop down to `keep` then left too little for the consumer's
        own catch-up read and an underrun followed a few frames later (measured: overrun
        + underrun pairs 70–150 ms apart in the call benchmark). With room for the burst,
        the consumer drains it; only if the ring never fell below `high` bytes for
        `settle_s` is the backlog latency that would stay for the rest of the call, and it
        is dropped down to `keep` (one overrun).

        `grow_to` (optional) makes the prebuffer adaptive: each underrun proves the
        machine's scheduling jitter exceeds the margin, so the prebuffer grows by half
        its initial size, up to `grow_to`, for the rest of the call (`clear()` at the next
        call goes back to the initial size). A quiet call keeps the low latency; a
        jittery one trades some latency for fewer gaps.

        `drift_window` (bytes the consumer takes per measuring window; 0 = off) turns on
        clock-drift compensation. The two sides run on different clocks (measured in the
        call rig: pjmedia's clock thread ~200 ppm slow, PulseAudio ~150–200 ppm fast), so
        a ring that starts with 40 ms of margin loses (or gains) ~350–400 ppm, 20 ms a
        minute: the headset underran once a minute, the mic ring would grow until the
        latency guard cuts it. The mean level the reads find over a window is compared
        with the mean of the first settled window after any (re)start, under/overrun or
        trim; two windows in a row more than `drift_band` away start a correction: one
        `SLICE` (1 ms) repeated or removed per window, with crossfaded seams at the
        quietest point near the head, until the level is back within a quarter band.
        Each is a `drift_adjustments`, not an under/overrun (no gap, no audio lost).
        The level judged at a read is its margin (`have - wanted`) plus the part of the
        producer's last write that a steady producer would not have delivered yet
        (interpolated from `clock`): when both sides run in 20 ms periods the raw
        margin is a step function of their phase, flat for a minute and then 20 ms lower
        at once (measured: an underrun with no warning); interpolated it slides steadily.
        `clock` is injectable so tests can run minutes of simulated time.

        `startup` (bytes, default 0): until both sides have moved this much after a
        `clear()` (the ring is `starting`), an underrun is a `startup_underruns` and an
        overrun a `startup_overruns`, not `underruns`/`overruns`. A stream that has just
        opened runs irregularly (measured on the native path: the capture stream paused
        81 ms 0.42 s into a call whose peer answered in 7 ms, the ring primed just before
        it; the playback stream stalled ~250 ms in its first second and the headset ring
        overflowed) — that is the stream starting, not the call's jitter, as the Qt
        headset side's `STARTUP_READS` says for its sink. The audio is handled exactly as
        always (silence, prebuffer re-armed and grown, oldest audio dropped): only the
        count differs, and it stays visible.

        `gap_s`: a pause of either side longer than this is kept in `gaps`.
        """
        if capacity <= 0:
            raise ValueError(f"ring capacity must be a positive number of bytes, got {capacity}")
        if not 0 <= prebuffer <= capacity:
            raise ValueError(f"prebuffer must be between 0 and capacity ({capacity}), "
                             f"got {prebuffer}")
        keep = capacity // 2 if keep is None else keep
        if not 0 <= keep <= capacity:
            raise ValueError(f"keep must be between 0 and capacity ({capacity}), got {keep}")
        if grow_to is not None and not prebuffer <= grow_to <= (high or capacity):
            raise ValueError(f"grow_to must be between prebuffer ({prebuffer}) and "
                             f"{'high' if high else 'capacity'} ({high or capacity}), "
                             f"got {grow_to}")
        if high is not None and not keep <= high <= capacity:
            raise ValueError(f"high must be between keep ({keep}) and capacity ({capacity}), "
                             f"got {high}")
        self._capacity = capacity
        self._keep = max(keep, prebuffer) & ~1
        self._high = high
        self._settle_s = settle_s
        self._floor = capacity  # lowest level seen since _floor_since
        self._floor_since = 0.0
        self._prebuffer = self._initial_prebuffer = prebuffer
        self._initial_keep = self._keep
        self._grow_to = grow_to
        self._primed = prebuffer == 0
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._underruns = 0
        self._overruns = 0
        #: When the last underruns/overruns happened (time.monotonic()), for diagnosis:
        #: which stall caused which gap (the call benchmark correlates them).
        self.underrun_times: deque[float] = deque(maxlen=64)
        self.overrun_times: deque[float] = deque(maxlen=64)
        #: Long pauses of either side: ("read"/"write", when it came back, pause in s).
        self.gaps: deque[tuple[str, float, float]] = deque(maxlen=64)
        self._last_read = 0.0
        self._last_write = 0.0
        #: Totals for drift diagnosis: bytes handed in by the producer, bytes asked for
        #: by the consumer (silence padding included: that is the consumer's clock).
        self.bytes_written = 0
        self.bytes_read = 0
        self._window_min = capacity
        if drift_window < 0 or drift_band <= 0:
            raise ValueError(f"drift_window must be >= 0 and drift_band > 0 bytes, got "
                             f"{drift_window} and {drift_band}")
        self._dw = drift_window
        self._clock = clock if clock is not None else _now
        if startup < 0 or gap_s <= 0:
            raise ValueError(f"startup must be >= 0 bytes and gap_s > 0 s, got {startup} "
                             f"and {gap_s}")
        self._startup = startup
        self._gap_s = gap_s
        self._written_since_clear = self._read_since_clear = 0
        #: Under/overruns while a side's stream was starting (see `startup`).
        self.startup_underruns = self.startup_overruns = 0
        self._last_len = 0  # bytes in the producer's last write
        self._band = drift_band
        self.drift_adjustments = 0
        #: ("stretch"/"shrink", offset in the audio handed out) per adjustment, newest last.
        self.drift_log: deque[tuple[str, int]] = deque(maxlen=4096)
        self._out = 0  # audio bytes handed out (padding excluded)
        self._rebase()

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        with self._lock:
            return len(self._buf)

    @property
    def prebuffer(self) -> int:
        return self._prebuffer

    @property
    def primed(self) -> bool:
        """False while the prebuffer is filling (reads return uncounted silence)."""
        return self._primed

    @property
    def underruns(self) -> int:
        return self._underruns

    @property
    def starting(self) -> bool:
        """True until both sides have moved `startup` bytes since `clear()`."""
        return min(self._written_since_clear, self._read_since_clear) < self._startup

    @property
    def overruns(self) -> int:
        return self._overruns

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append `data`; if that exceeds capacity, drop the oldest bytes down to `keep`.

        Returns the number of bytes dropped (0 normally). Dropping keeps an even byte
        count so 16-bit samples never get split.
        """
        now = self._clock()
        if self._last_write and now - self._last_write > self._gap_s:
            self.gaps.append(("write", now, now - self._last_write))
        self._last_write = now
        with self._lock:
            self.bytes_written += len(data)
            self._written_since_clear += len(data)
            self._last_len = len(data)
            if self._high is not None and self._settled(now):
                return self._drop_to_keep(now, data)
            self._buf += data
            if len(self._buf) <= self._capacity:
                return 0
            return self._drop_to_keep(now, b"")

    def _settled(self, now: float) -> bool:
        """True when the ring stayed above `high` for `settle_s` (lock held)."""
        self._floor = min(self._floor, len(self._buf))
        if not self._floor_since:
            self._floor_since = now
        if now - self._floor_since < self._settle_s:
            return False
        stuck = self._floor > (self._high or 0)
        self._floor, self._floor_since = self._capacity, now
        return stuck

    def _drop_to_keep(self, now: float, data: bytes | bytearray | memoryview) -> int:
        """Append `data` and drop the oldest bytes down to `keep` (lock held)."""
        self._buf += data
        excess = len(self._buf) - self._keep
        if excess <= 0:
            return 0
        excess += excess & 1
        del self._buf[:excess]
        if self.starting:
            self.startup_overruns += 1
        else:
            self._overruns += 1
            self.overrun_times.append(now)
        self._rebase()
        return excess

    def read(self, n: int, wanted: int = 0) -> bytes:
        """Take exactly `n` bytes; pad with silence (zeros) and count an underrun if short.

        `wanted` (default `n`) is how much the consumer asked for, if it takes less than
        that (the headset reader hands a sound server only what the ring holds): drift
        compensation judges the level against the demand, since what the server lacks
        after a short read is cushion missing just as much as an emptier ring."""
        now = self._clock()
        if self._last_read and now - self._last_read > self._gap_s:
            self.gaps.append(("read", now, now - self._last_read))
        self._last_read = now
        with self._lock:
            self.bytes_read += n
            self._read_since_clear += n
            have = len(self._buf)
            self._window_min = min(self._window_min, have)
            if not self._primed:
                if have < self._prebuffer:
                    return bytes(n)
                self._primed = True
            if self._dw:
                have = self._track(have, wanted or n, now)
            if have >= n:
                self._out += n
                out = bytes(self._buf[:n])
                del self._buf[:n]
                self._floor = min(self._floor, have - n)
                return out
            out = bytes(self._buf)
            self._out += have
            self._buf.clear()
            self._rebase()
            if self.starting:
                self.startup_underruns += 1
            else:
                self._underruns += 1
                self.underrun_times.append(self._clock())
            if self._grow_to is not None and self._prebuffer < self._grow_to:
                step = max(2, self._initial_prebuffer // 2) & ~1
                self._prebuffer = min(self._prebuffer + step, self._grow_to)
                self._keep = max(self._keep, self._prebuffer)
            self._primed = self._prebuffer == 0
        return out + bytes(n - have)

    def _rebase(self) -> None:
        """Forget the drift reference: the level just jumped for another reason (lock
        held, or in __init__)."""
        self._anchor: float | None = None
        self._skip = 1  # the first window after a jump is still settling
        self._sum = self._taken = 0
        self._streak = self._fixing = self._last_side = 0

    def _track(self, have: int, n: int, now: float) -> int:
        """Drift compensation at a read of `n` bytes finding `have` (lock held); returns
        the level after any adjustment. The level judged is the margin `have - n`."""
        # Weighted by the bytes asked for: a window's mean is then over time, not over
        # reads (a server that tops up in small pulls when low would otherwise weigh its
        # low moments several times over).
        # What a steady producer would have delivered of its last write by now (see
        # __init__: this makes the level continuous in the two sides' phase).
        since = min(self._last_len, int((now - self._last_write) * 1000 * BYTES_PER_MS))
        self._sum += (have - n + since) * n
        self._taken += n
        if self._taken < self._dw:
            return have
        mean = self._sum / self._taken
        self._sum = self._taken = 0
        if self._anchor is None:
            if self._skip:
                self._skip -= 1
            else:
                self._anchor = mean
            return have
        dev = mean - self._anchor
        side = -1 if dev < -self._band else 1 if dev > self._band else 0
        self._streak = self._streak + 1 if side and side == self._last_side else abs(side)
        self._last_side = side
        if self._fixing and (dev * self._fixing) <= self._band / 4:
            self._fixing = 0
        elif not self._fixing and self._streak >= 2:
            self._fixing = side
        # A cut must not leave less than the read takes: a reader that asks for all the
        # ring holds (the headset's) would find a gap of its own making.
        if not self._fixing or have < 2 * SLICE or (self._fixing > 0 and have - SLICE < n):
            return have
        at = _quietest(self._buf, 10 * BYTES_PER_MS)
        if self._fixing < 0:
            stretch(self._buf, at)
            self.drift_log.append(("stretch", self._out + at))
        else:
            shrink(self._buf, at)
            self.drift_log.append(("shrink", self._out + at))
        self.drift_adjustments += 1
        return len(self._buf)

    def take_window_min(self) -> int:
        """The lowest level a read found since the last call (diagnosis: a level that
        sinks second after second is clock drift, not jitter), and start a new window."""
        with self._lock:
            low, self._window_min = self._window_min, len(self._buf)
            return low

    def read_available(self, max_bytes: int) -> bytes:
        """Take up to `max_bytes` (whole samples) without padding and without counting."""
        with self._lock:
            n = min(max_bytes, len(self._buf)) & ~1
            out = bytes(self._buf[:n])
            del self._buf[:n]
            return out

    def trim_to(self, keep: int, *, count: bool = False) -> int:
        """Drop the oldest bytes beyond `keep`; returns how many were dropped. Used when a
        consumer (re)starts or resumes after a stall, so audio that piled up while nobody
        was listening does not become permanent latency. `count`: it is the call's audio
        being dropped (not a stream's start-up), so it is an overrun."""
        with self._lock:
            excess = len(self._buf) - keep
            if excess <= 0:
                return 0
            excess += excess & 1
            del self._buf[:excess]
            self._rebase()
            if count and self.starting:
                self.startup_overruns += 1
            elif count:
                self._overruns += 1
                self.overrun_times.append(self._clock())
            return excess

    def clear(self) -> None:
        """Discard buffered audio (stale audio must not reach a newly active call)."""
        with self._lock:
            self._buf.clear()
            self._prebuffer, self._keep = self._initial_prebuffer, self._initial_keep
            self._primed = self._prebuffer == 0
            self._last_read = self._last_write = 0.0
            self._written_since_clear = self._read_since_clear = 0
            self._floor, self._floor_since = self._capacity, 0.0
            self._rebase()

    def reset_counters(self) -> tuple[int, int]:
        """Zero the counters and return the old (underruns, overruns), e.g. per call.

        The prebuffer also goes back to its initial size: underruns before this point
        (a stream starting) say nothing about the call's jitter."""
        with self._lock:
            old = (self._underruns, self._overruns)
            self._prebuffer, self._keep = self._initial_prebuffer, self._initial_keep
            self._underruns = 0
            self._overruns = 0
            self.startup_underruns = self.startup_overruns = 0
            self.underrun_times.clear()
            self.overrun_times.clear()
            self.gaps.clear()
            self._rebase()
            return old
