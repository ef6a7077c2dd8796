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
from collections import deque

#: 16 kHz mono signed 16-bit: bytes per millisecond.
BYTES_PER_MS = 32
#: A pause this long between two reads (or two writes) is kept in `gaps` for diagnosis:
#: both sides normally come every 16–64 ms.
GAP_S = 0.08


class ByteRing:
    """Thread-safe bounded FIFO of bytes with drop-oldest and under/overrun counters.

    All methods are short and hold the lock only for a memcpy-sized amount of work, so
    they are safe to call from pjmedia's clock thread callbacks.
    """

    def __init__(self, capacity: int, prebuffer: int = 0, keep: int | None = None, *,
                 high: int | None = None, settle_s: float = 1.0,
                 grow_to: int | None = None) -> None:
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
    def overruns(self) -> int:
        return self._overruns

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append `data`; if that exceeds capacity, drop the oldest bytes down to `keep`.

        Returns the number of bytes dropped (0 normally). Dropping keeps an even byte
        count so 16-bit samples never get split.
        """
        now = time.monotonic()
        if self._last_write and now - self._last_write > GAP_S:
            self.gaps.append(("write", now, now - self._last_write))
        self._last_write = now
        with self._lock:
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
        self._overruns += 1
        self.overrun_times.append(now)
        return excess

    def read(self, n: int) -> bytes:
        """Take exactly `n` bytes; pad with silence (zeros) and count an underrun if short."""
        now = time.monotonic()
        if self._last_read and now - self._last_read > GAP_S:
            self.gaps.append(("read", now, now - self._last_read))
        self._last_read = now
        with self._lock:
            have = len(self._buf)
            if not self._primed:
                if have < self._prebuffer:
                    return bytes(n)
                self._primed = True
            if have >= n:
                out = bytes(self._buf[:n])
                del self._buf[:n]
                self._floor = min(self._floor, have - n)
                return out
            out = bytes(self._buf)
            self._buf.clear()
            self._underruns += 1
            self.underrun_times.append(time.monotonic())
            if self._grow_to is not None and self._prebuffer < self._grow_to:
                step = max(2, self._initial_prebuffer // 2) & ~1
                self._prebuffer = min(self._prebuffer + step, self._grow_to)
                self._keep = max(self._keep, self._prebuffer)
            self._primed = self._prebuffer == 0
        return out + bytes(n - have)

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
            if count:
                self._overruns += 1
                self.overrun_times.append(time.monotonic())
            return excess

    def clear(self) -> None:
        """Discard buffered audio (stale audio must not reach a newly active call)."""
        with self._lock:
            self._buf.clear()
            self._prebuffer, self._keep = self._initial_prebuffer, self._initial_keep
            self._primed = self._prebuffer == 0
            self._last_read = self._last_write = 0.0
            self._floor, self._floor_since = self._capacity, 0.0

    def reset_counters(self) -> tuple[int, int]:
        """Zero the counters and return the old (underruns, overruns), e.g. per call.

        The prebuffer also goes back to its initial size: underruns before this point
        (a stream starting) say nothing about the call's jitter."""
        with self._lock:
            old = (self._underruns, self._overruns)
            self._prebuffer, self._keep = self._initial_prebuffer, self._initial_keep
            self._underruns = 0
            self._overruns = 0
            self.underrun_times.clear()
            self.overrun_times.clear()
            self.gaps.clear()
            return old
