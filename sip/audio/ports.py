"""pjsua2 media ports that move 20 ms frames between the conference bridge and rings.

Every callback here runs on pjmedia's clock thread while holding the GIL, 50 times a
second per port, so each one does a single copy and nothing else. Frame memory is read
and written in place through the `std::vector`'s data pointer: `bytes(frame.buf)` walks
the SWIG vector element by element (~230 µs, measured), a copy through the data pointer
~1 µs; see docs/decisions.md for the callbacks' measured cost.
A start-up self-check verifies the vector layout and falls back to the slow, always
correct SWIG path if this pjsua2 build lays vectors out differently.

Each callback catches every exception and keeps only its text: a traceback saved by
pjsua2 would keep the port (and the call's media) alive past `libDestroy()`, which
aborts the whole process.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable

import pjsua2 as pj

from sip.audio.ring import ByteRing

log = logging.getLogger(__name__)

CLOCK_RATE = 16000
FRAME_MS = 20
FRAME_BYTES = CLOCK_RATE * FRAME_MS // 1000 * 2  # 640: 20 ms of 16-bit mono


_SILENCE = bytes(FRAME_BYTES)


def audio_format() -> pj.MediaFormatAudio:
    """16 kHz mono 16-bit, 20 ms frames: the conference bridge's own format."""
    fmt = pj.MediaFormatAudio()
    fmt.init(pj.PJMEDIA_FORMAT_PCM, CLOCK_RATE, 1, FRAME_MS * 1000, 16)
    return fmt


def _data_pointer(vec: pj.ByteVector) -> tuple[int, int]:
    """(address, length) of a libstdc++ std::vector<unsigned char> behind a SWIG proxy."""
    addr = int(vec.this)
    start = ctypes.c_void_p.from_address(addr).value or 0
    end = ctypes.c_void_p.from_address(addr + ctypes.sizeof(ctypes.c_void_p)).value or 0
    return start, end - start


_ARRAYS: dict[int, type[ctypes.Array[ctypes.c_char]]] = {}


def _array_at(ptr: int, n: int) -> ctypes.Array[ctypes.c_char]:
    """A ctypes view of n bytes at ptr. Reads via `.raw` and writes via a memoryview are
    single memcpy's that keep the GIL (0.5–1.2 µs measured); `string_at`/`memmove` release
    and re-take it, and slice assignment on the array copies byte by byte (~36 µs)."""
    t = _ARRAYS.get(n)
    if t is None:
        t = _ARRAYS[n] = ctypes.c_char * n
    return t.from_address(ptr)


def _layout_ok() -> bool:
    try:
        vec = pj.ByteVector()
        for b in (1, 2, 3, 250):
            vec.push_back(b)
        ptr, n = _data_pointer(vec)
        if n != 4 or _array_at(ptr, 4).raw != bytes([1, 2, 3, 250]):
            return False
        memoryview(_array_at(ptr, 4)).cast("B")[:] = b"\x09\x08\x07\x06"
        return [vec[i] for i in range(4)] == [9, 8, 7, 6]
    except Exception as exc:  # any surprise → the slow, safe path
        log.warning("pjsua2 ByteVector layout check failed (%r); using the slow copy", exc)
        return False


FAST_PATH = _layout_ok()


def read_frame(frame: pj.MediaFrame) -> bytes | None:
    """The frame's audio bytes, or None for an empty/non-audio frame (silence)."""
    if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO:
        return None
    if FAST_PATH:
        ptr, n = _data_pointer(frame.buf)
        if not ptr or n <= 0:
            return None
        return _array_at(ptr, n).raw
    data = bytes(frame.buf)
    return data or None


def write_frame(frame: pj.MediaFrame, data: bytes) -> None:
    """Fill `frame` with `data` in place and mark it as audio."""
    if FAST_PATH:
        buf = frame.buf
        buf.resize(len(data))
        ptr, n = _data_pointer(buf)
        memoryview(_array_at(ptr, n)).cast("B")[:] = data
    else:
        vec = pj.ByteVector()
        for b in data:
            vec.push_back(b)
        frame.buf = vec
    frame.size = len(data)
    frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO


class _GuardedPort(pj.AudioMediaPort):
    """Base: counts callback failures instead of letting pjsua2 keep a traceback, and
    destroys its C++ half explicitly (`close()`) while the Python object is still alive.

    Why `close()` exists (measured, tests/integration/test_audio_port_lifetime.py): when
    the last Python reference to a port goes, CPython starts deallocating it (refcount 0,
    instance dict cleared) and only then runs the C++ destructor, with the GIL released.
    pjmedia's clock thread may be waiting for the GIL right then, inside this port's
    `get_frame`/`put_frame` with the port's lock held; it enters the Python callback on
    the dying object, whose refcount goes 0 → 1 → 0 and deallocates it a second time:
    heap corruption, and a SIGSEGV somewhere later (often at exit). Destroying the C++
    object first — while Python still holds a reference — makes that callback harmless
    and the C++ destructor then guarantees no further one (it clears the port's pointer
    under the port's lock). The Python shell left behind no longer owns anything.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.errors = 0
        self.last_error = ""
        self.closed = False
        self._owner = threading.get_ident()

    def _record_error(self, exc: Exception) -> None:
        if "errors" not in vars(self):  # torn down mid-callback: see _alive()
            return
        self.errors += 1
        if self.errors == 1 or self.errors % 500 == 0:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("audio port %s callback failed (%d so far): %s", self.name,
                      self.errors, self.last_error)

    def _alive(self) -> bool:
        """False once the port is closed or Python tears it down (a last line of defence:
        with `close()` the clock thread cannot reach a dying port any more)."""
        try:
            return not vars(self).get("closed", True)
        except TypeError:
            return False

    def create(self) -> None:
        """Register with the conference bridge (pjsua2 thread only)."""
        self.createPort(self.name, audio_format())

    def close(self) -> None:
        """Leave the conference bridge and destroy the C++ port now (pjsua2 thread only).

        Call after `stopTransmit`, before dropping the last reference and before
        `libDestroy()`. Idempotent. Afterwards no pjmedia thread calls this object and it
        must not be used any more (its C++ half is gone)."""
        if self.closed:
            return
        self.closed = True
        # The destructor (GIL released) waits for a callback in flight, queues the
        # removal from the bridge and detaches the C port from this object; pjmedia
        # frees the C port itself once the clock thread has processed the removal.
        pj.AudioMediaPort.__swig_destroy__(self)

    def startTransmit(self, sink: pj.AudioMedia) -> None:
        if self.closed:
            raise RuntimeError(f"audio port {self.name} is closed")
        super().startTransmit(sink)

    def stopTransmit(self, sink: pj.AudioMedia) -> None:
        """A closed port's connections went with it (and its C++ half is gone: calling
        into it would read freed memory), e.g. the recorder stopping after the bridge."""
        if not self.closed:
            super().stopTransmit(sink)

    def __del__(self) -> None:
        """Safety net for a port dropped without `close()` (e.g. a recorder's taps): the
        finalizer runs before deallocation, with the object still whole, so closing here
        is as safe as an explicit `close()` — on the thread that owns pjsua2. On another
        thread (a garbage-collection cycle) pjsua2 must not be called at all."""
        try:
            if not vars(self).get("closed", True) and threading.get_ident() == self._owner:
                self.close()
        except Exception as exc:  # never raise from a finalizer
            log.error("audio port %s could not be closed: %r", vars(self).get("name"), exc)


class SourcePort(_GuardedPort):
    """Feeds the conference bridge from a ring (microphone → call)."""

    def __init__(self, name: str, ring: ByteRing) -> None:
        super().__init__(name)
        self.ring = ring
        #: Muted: the ring is still drained (no stale audio on unmute) but silence is
        #: sent, so neither the customer nor the recording hears the agent.
        self.muted = False
        # Every SWIG call may hand the GIL to another thread and wait to get it back, so
        # the hot path uses two: `frame.buf = vec` (a C++ copy of a vector we filled in
        # place) and `frame.type`. pjsua2 presets `frame.size` to the bytes it wants.
        self._vec = pj.ByteVector()
        self._vec.resize(FRAME_BYTES)
        self._view = memoryview(_array_at(*_data_pointer(self._vec))).cast("B") \
            if FAST_PATH else None

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        if not self._alive():
            return
        try:
            data = self.ring.read(FRAME_BYTES)
            if self.muted:
                data = _SILENCE
            if self._view is not None:
                self._view[:] = data
                frame.buf = self._vec
                frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            else:
                write_frame(frame, data)
        except Exception as exc:
            self._record_error(exc)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        return


class SinkPort(_GuardedPort):
    """Receives the conference bridge's mix into a ring (call → headset)."""

    def __init__(self, name: str, ring: ByteRing) -> None:
        super().__init__(name)
        self.ring = ring

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        if not self._alive():
            return
        try:
            data = read_frame(frame)
            self.ring.write(data if data is not None else bytes(FRAME_BYTES))
        except Exception as exc:
            self._record_error(exc)

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        return


class TapPort(_GuardedPort):
    """Hands every received frame (None = silence) to a callback; used by the recorder.

    The bridge calls a port's `onFrameReceived` once per clock tick even when nothing
    transmits to it (with an empty frame), so two taps stay in step frame for frame.
    """

    def __init__(self, name: str, sink: Callable[[bytes | None], None]) -> None:
        super().__init__(name)
        self._sink = sink

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        if not self._alive():
            return
        try:
            self._sink(read_frame(frame))
        except Exception as exc:
            self._record_error(exc)

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        return
