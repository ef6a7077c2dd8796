"""ctypes binding of the native media library (nm_*.c): rings, ports, taps, streams.

Every call into C here is short except `NativeStream.open`/`close` (they wait for the
stream thread) and ctypes releases the GIL around each call, so none of them holds up
the clock or the audio threads — which never call back into Python at all.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MIC, HEADSET, TAP_LEFT, TAP_RIGHT = 0, 1, 2, 3
_ERR = 512
_c = ctypes
_P = _c.c_void_p


class NativeMediaError(RuntimeError):
    """The native media path cannot be used, or a call into it failed (plain words)."""


class _RingStats(_c.Structure):
    _fields_ = [(n, _c.c_int64) for n in (
        "underruns", "overruns", "drift_adjustments", "bytes_written", "bytes_read",
        "len", "primed", "prebuffer", "window_min", "startup_underruns",
        "startup_overruns", "starting")]


def _sig(lib: ctypes.CDLL, name: str, res: Any, *args: Any) -> None:
    fn = getattr(lib, name)
    fn.restype = res
    fn.argtypes = list(args)


def _pjsua2_path() -> str:
    import pjsua2

    mod = getattr(pjsua2, "_pjsua2", None)
    path = getattr(mod, "__file__", None)
    if not path:
        import importlib

        path = importlib.import_module("pjsua2._pjsua2").__file__
    return str(path)


class NativeLib:
    """The loaded library, checked against the pjsua2 wheel of this process."""

    def __init__(self, path: Path) -> None:
        try:
            lib = _c.CDLL(str(path))
        except OSError as exc:
            raise NativeMediaError(f"cannot load {path}: {exc}") from None
        ch, i, d, i64, buf = _c.c_char_p, _c.c_int, _c.c_double, _c.c_int64, _c.c_char_p
        _sig(lib, "nm_init", i, ch, buf, i)
        _sig(lib, "nm_now", d)
        _sig(lib, "nm_ring_new", _P, i, i, i, i, d, i, i, i, i, d)
        _sig(lib, "nm_ring_release", None, _P)
        _sig(lib, "nm_ring_write", i, _P, ch, i, d)
        _sig(lib, "nm_ring_read", i, _P, _c.c_void_p, i, i, d)
        _sig(lib, "nm_ring_len", i, _P)
        _sig(lib, "nm_ring_take_window_min", i, _P)
        _sig(lib, "nm_ring_trim_to", i, _P, i, i)
        _sig(lib, "nm_ring_trim_starting", i, _P)
        _sig(lib, "nm_ring_clear", None, _P)
        _sig(lib, "nm_ring_reset_counters", None, _P)
        _sig(lib, "nm_ring_get_stats", None, _P, _c.POINTER(_RingStats))
        _sig(lib, "nm_ring_events", i, _P, i, _c.POINTER(d), i)
        _sig(lib, "nm_ring_gaps", i, _P, _c.POINTER(d), i)
        _sig(lib, "nm_rec_new", _P, _c.c_uint)
        _sig(lib, "nm_rec_release", None, _P)
        _sig(lib, "nm_rec_set_paused", i64, _P, i)
        _sig(lib, "nm_rec_frames_seen", i64, _P)
        _sig(lib, "nm_rec_dropped", i64, _P, i)
        _sig(lib, "nm_rec_read", i, _P, i, _c.c_void_p, i)
        _sig(lib, "nm_tap_frame_size", i)
        _sig(lib, "nm_port_new", _P, i, _P, _P, ch, _c.POINTER(i), buf, i)
        _sig(lib, "nm_port_close", i, _P, buf, i)
        _sig(lib, "nm_port_set_muted", None, _P, i)
        _sig(lib, "nm_port_calls", i64, _P)
        _sig(lib, "nm_conf_connect", i, i, i, i, buf, i)
        _sig(lib, "nm_stream_new", _P, i, _P, i, buf, i)
        _sig(lib, "nm_stream_open", i, _P, ch, d, buf, i)
        _sig(lib, "nm_stream_free", None, _P)
        _sig(lib, "nm_stream_counters", None, _P, _c.POINTER(i64))
        self._lib = lib
        err = _c.create_string_buffer(_ERR)
        if lib.nm_init(_pjsua2_path().encode(), err, _ERR) != 0:
            raise NativeMediaError(err.value.decode(errors="replace"))
        self.version = err.value.decode(errors="replace")
        self.tap_frame_size = int(lib.nm_tap_frame_size())

    @property
    def c(self) -> Any:
        return self._lib

    def now(self) -> float:
        return float(self._lib.nm_now())

    def call(self, fn: Callable[..., int], *args: Any) -> None:
        """Call an `nm_*` function that reports errors in a trailing text buffer."""
        err = _c.create_string_buffer(_ERR)
        if fn(*args, err, _ERR) != 0:
            raise NativeMediaError(err.value.decode(errors="replace"))

    def connect(self, src: int, dst: int, connect: bool = True) -> None:
        """pjsua_conf_connect/disconnect (pjsua2 thread only)."""
        self.call(self._lib.nm_conf_connect, src, dst, int(connect))


class NativeRing:
    """A C ring with ByteRing's interface (sip.audio.ring): same arguments, semantics
    and counters, so the bridge, the rig and the bench read either kind alike."""

    def __init__(self, lib: NativeLib, capacity: int, prebuffer: int = 0,
                 keep: int | None = None, *, high: int | None = None,
                 settle_s: float = 1.0, grow_to: int | None = None,
                 drift_window: int = 0, drift_band: int = 8 * 32, startup: int = 0,
                 gap_s: float | None = None) -> None:
        # The same checks and messages as ByteRing: the C side trusts its arguments.
        from sip.audio.ring import GAP_S, ByteRing

        gap_s = GAP_S if gap_s is None else gap_s
        ByteRing(capacity, prebuffer, keep, high=high, settle_s=settle_s, grow_to=grow_to,
                 drift_window=drift_window, drift_band=drift_band, startup=startup,
                 gap_s=gap_s)
        keep = capacity // 2 if keep is None else keep
        self._lib = lib
        self._c = lib.c
        self._capacity = capacity
        self.ptr = self._c.nm_ring_new(capacity, prebuffer, keep, high or 0, settle_s,
                                       grow_to or 0, drift_window, drift_band, startup,
                                       gap_s)
        if not self.ptr:
            raise MemoryError("native ring allocation failed")
        self._out = _c.create_string_buffer(capacity * 2)

    def __del__(self) -> None:
        ptr, self.ptr = getattr(self, "ptr", None), None
        if ptr:
            self._c.nm_ring_release(ptr)

    def _stats(self) -> _RingStats:
        s = _RingStats()
        self._c.nm_ring_get_stats(self.ptr, _c.byref(s))
        return s

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return int(self._c.nm_ring_len(self.ptr))

    @property
    def prebuffer(self) -> int:
        return int(self._stats().prebuffer)

    @property
    def primed(self) -> bool:
        return bool(self._stats().primed)

    @property
    def underruns(self) -> int:
        return int(self._stats().underruns)

    @property
    def overruns(self) -> int:
        return int(self._stats().overruns)

    @property
    def startup_underruns(self) -> int:
        """Underruns while a side's stream was starting (ByteRing `startup`)."""
        return int(self._stats().startup_underruns)

    @property
    def startup_overruns(self) -> int:
        return int(self._stats().startup_overruns)

    @property
    def drift_adjustments(self) -> int:
        return int(self._stats().drift_adjustments)

    @property
    def bytes_written(self) -> int:
        return int(self._stats().bytes_written)

    @property
    def bytes_read(self) -> int:
        return int(self._stats().bytes_read)

    def _events(self, overruns: bool) -> tuple[float, ...]:
        arr = (_c.c_double * 64)()
        n = self._c.nm_ring_events(self.ptr, int(overruns), arr, 64)
        return tuple(arr[:n])

    @property
    def underrun_times(self) -> tuple[float, ...]:
        """time.monotonic() of the newest underruns (C uses the same clock)."""
        return self._events(False)

    @property
    def overrun_times(self) -> tuple[float, ...]:
        return self._events(True)

    @property
    def gaps(self) -> tuple[tuple[str, float, float], ...]:
        """Long pauses of either side: ("read"/"write", when it came back, pause in s)."""
        arr = (_c.c_double * (3 * 64))()
        n = self._c.nm_ring_gaps(self.ptr, arr, 64)
        return tuple(("write" if arr[3 * k] else "read", arr[3 * k + 1], arr[3 * k + 2])
                     for k in range(n))

    def write(self, data: bytes | bytearray | memoryview, now: float | None = None) -> int:
        b = bytes(data)
        return int(self._c.nm_ring_write(self.ptr, b, len(b), -1.0 if now is None else now))

    def read(self, n: int, wanted: int = 0, now: float | None = None) -> bytes:
        out = self._out if n <= len(self._out) else _c.create_string_buffer(n)
        self._c.nm_ring_read(self.ptr, out, n, wanted, -1.0 if now is None else now)
        return out.raw[:n]

    def take_window_min(self) -> int:
        return int(self._c.nm_ring_take_window_min(self.ptr))

    def trim_to(self, keep: int, *, count: bool = False) -> int:
        return int(self._c.nm_ring_trim_to(self.ptr, keep, int(count)))

    def trim_starting(self) -> int:
        """What the playback thread does after a stalled write: while the ring is
        starting, drop what piled up beyond the prebuffer, uncounted (bytes dropped)."""
        return int(self._c.nm_ring_trim_starting(self.ptr))

    @property
    def starting(self) -> bool:
        s = self._stats()
        return bool(s.starting)

    def clear(self) -> None:
        self._c.nm_ring_clear(self.ptr)

    def reset_counters(self) -> tuple[int, int]:
        s = self._stats()
        self._c.nm_ring_reset_counters(self.ptr)
        return int(s.underruns), int(s.overruns)


class NativePort:
    """A pjmedia port of ours in the conference bridge (create/close on the pjsua2
    thread). `getPortId()` lets it stand where a `pj.AudioMedia` is expected as a
    source of the recorder's left tap."""

    def __init__(self, lib: NativeLib, kind: int, name: str, *,
                 ring: NativeRing | None = None, taps: NativeTaps | None = None) -> None:
        self._lib = lib
        self.name = name
        self.errors = 0  # like _GuardedPort: C callbacks cannot fail
        self._owner = threading.get_ident()
        slot = _c.c_int(-1)
        err = _c.create_string_buffer(_ERR)
        ptr = lib.c.nm_port_new(kind, ring.ptr if ring is not None else None,
                                taps.ptr if taps is not None else None,
                                 name.encode(), _c.byref(slot), err, _ERR)
        if not ptr:
            raise NativeMediaError(f"audio port {name}: {err.value.decode(errors='replace')}")
        self._ptr: int | None = ptr
        self.slot = int(slot.value)

    @property
    def lib(self) -> NativeLib:
        return self._lib

    def getPortId(self) -> int:  # pjsua2 naming: it stands in for an AudioMedia
        return self.slot

    @property
    def closed(self) -> bool:
        return self._ptr is None

    @property
    def calls(self) -> int:
        """How often the clock thread called this port (diagnosis and tests)."""
        return int(self._lib.c.nm_port_calls(self._ptr)) if self._ptr else 0

    def set_muted(self, muted: bool) -> None:
        if self._ptr:
            self._lib.c.nm_port_set_muted(self._ptr, int(muted))

    def close(self) -> None:
        """Leave the bridge (pjsua2 thread); idempotent. The C memory goes when the
        bridge has processed the removal, so a callback in flight is harmless."""
        ptr, self._ptr = self._ptr, None
        if ptr:
            self._lib.call(self._lib.c.nm_port_close, ptr)

    def __del__(self) -> None:
        if getattr(self, "_ptr", None) and threading.get_ident() == self._owner:
            try:
                self.close()
            except NativeMediaError as exc:
                log.error("audio port %s could not be closed: %s", self.name, exc)


class NativeTaps:
    """The recorder's two capture queues (left = agent, right = customer), filled by the
    tap ports on the clock thread without Python, drained by the writer thread."""

    FLAG_DATA, FLAG_PAUSED = 1, 2

    def __init__(self, lib: NativeLib, frames: int = 1500) -> None:
        self._lib = lib
        self.ptr = lib.c.nm_rec_new(frames)
        if not self.ptr:
            raise MemoryError("native recorder queue allocation failed")
        self._fs = lib.tap_frame_size
        self._buf = _c.create_string_buffer(self._fs * 256)

    def __del__(self) -> None:
        ptr, self.ptr = getattr(self, "ptr", None), None
        if ptr:
            self._lib.c.nm_rec_release(ptr)

    def set_paused(self, paused: bool) -> int:
        """Returns the frames seen so far on the right side (20 ms each)."""
        return int(self._lib.c.nm_rec_set_paused(self.ptr, int(paused)))

    @property
    def frames_seen(self) -> int:
        return int(self._lib.c.nm_rec_frames_seen(self.ptr))

    def dropped(self, side: int) -> int:
        return int(self._lib.c.nm_rec_dropped(self.ptr, side))

    def take(self, side: int) -> list[tuple[bytes | None, bool]]:
        """Every queued frame of one side as (audio or None for silence, paused)."""
        out: list[tuple[bytes | None, bool]] = []
        fs = self._fs
        while True:
            n = self._lib.c.nm_rec_read(self.ptr, side, self._buf, 256)
            raw = self._buf.raw
            for k in range(n):
                flags = raw[k * fs]
                data = raw[k * fs + 1:(k + 1) * fs] if flags & self.FLAG_DATA else None
                out.append((data, bool(flags & self.FLAG_PAUSED)))
            if n < 256:
                return out


class NativeStream:
    """One PulseAudio stream and its thread: capture into `ring` or play from it."""

    def __init__(self, lib: NativeLib, playback: bool, ring: NativeRing,
                 block_ms: int) -> None:
        self._lib = lib
        err = _c.create_string_buffer(_ERR)
        self._ptr: int | None = lib.c.nm_stream_new(int(playback), ring.ptr, block_ms, err,
                                                    _ERR)
        if not self._ptr:
            raise NativeMediaError(err.value.decode(errors="replace"))

    def open(self, device: str, timeout_s: float = 5.0) -> None:
        """(Re)open on the PulseAudio device `device` ("" = default); raises
        NativeMediaError with PulseAudio's reason."""
        if not self._ptr:
            raise NativeMediaError("stream is closed")
        self._lib.call(self._lib.c.nm_stream_open, self._ptr, device.encode(), timeout_s)

    def counters(self) -> dict[str, int]:
        arr = (_c.c_int64 * 4)()
        if self._ptr:
            self._lib.c.nm_stream_counters(self._ptr, arr)
        return {"blocks": arr[0], "io_errors": arr[1], "latency_us": arr[2],
                "realtime": arr[3]}

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr:
            self._lib.c.nm_stream_free(ptr)

    def __del__(self) -> None:
        self.close()
