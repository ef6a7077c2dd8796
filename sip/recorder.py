"""Automatic stereo call recording: the agent on the left, the customer on the right.

pjsua2's own `AudioMediaRecorder` is mono and writes its header only when closed, so the
recorder taps the conference bridge with two ports instead — the agent's microphone
media into the left tap, the call's media into the right — and a writer thread
interleaves the two 20 ms streams into a crash-safe WAV (`agent_desktop.wav`).

Threads: `start()` and `stop()` call pjsua2 and so must run on the engine's pjsua2
thread. The taps' callbacks run on pjmedia's clock thread and only append to a deque.
The writer thread does all disk work (never the clock thread, never the GUI thread).
On the native media path (the bridge's microphone is a `NativePort`) the taps are C
ports (sip.audio.native) that copy each frame, with its paused flag, into lock-free
queues; the writer thread moves them into the same deques, so pairing, padding,
pause-as-silence and the crash-safe file are the same code either way — and the clock
thread never waits for the GIL on the recorder's account.
`pause()`/`resume()` only flip a flag and may be called from any thread; the flag is
read when a frame is *captured*, so nothing spoken while paused is ever written, even
if the writer is behind.

Signals:
    failed(str): writing stopped (e.g. full disk); the text is ready to show the agent.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pjsua2 as pj
from PySide6.QtCore import QObject, Signal

from agent_desktop.call_recovery import remove_sidecar, write_sidecar
from agent_desktop.wav import (
    FileSink,
    RecordingError,
    StereoWavWriter,
    describe_os_error,
    repair_wav_header,
)
from sip.audio.native.binding import (
    TAP_LEFT,
    TAP_RIGHT,
    NativeLib,
    NativeMediaError,
    NativePort,
    NativeTaps,
)
from sip.audio.ports import FRAME_BYTES, TapPort

log = logging.getLogger(__name__)

__all__ = ["RecordingError", "RecordingResult", "StereoRecorder", "repair_recordings",
           "repair_wav_header"]

#: If one side falls this many frames behind the other, pad it with silence rather than
#: hold the other side's audio in memory (it only happens if a tap stops being called).
_MAX_SKEW_FRAMES = 25
_WRITER_TICK_S = 0.1


@dataclass(frozen=True)
class RecordingResult:
    """A finished recording, ready for a Recording row."""

    path: Path
    sha256: str
    duration_s: float
    size_bytes: int
    paused_spans: list[tuple[float, float]] = field(default_factory=list)
    error: str | None = None


class StereoRecorder(QObject):
    """Records one call into `path` as a 16 kHz 16-bit stereo WAV written as it goes."""

    failed = Signal(str)

    def __init__(self, path: Path, sink: FileSink | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self._sink = sink
        self._left: deque[tuple[bytes | None, bool]] = deque()
        self._right: deque[tuple[bytes | None, bool]] = deque()
        self._paused = False
        self._frames_seen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._writer: StereoWavWriter | None = None
        self._thread: threading.Thread | None = None
        self._taps: list[TapPort | NativePort] = []
        self._sources: list[pj.AudioMedia | NativePort] = []
        self._native: NativeLib | None = None
        self._queues: NativeTaps | None = None
        self._result: RecordingResult | None = None

    # -- pjsua2 thread ---------------------------------------------------------------

    def start(self, left: pj.AudioMedia | NativePort, right: pj.AudioMedia) -> None:
        """Open the file and connect the taps: `left` = agent (microphone media),
        `right` = customer (the call's audio media). Raises `RecordingError` when the
        file cannot be created (e.g. disk full), with a sentence for the agent."""
        if self._thread is not None:
            raise RuntimeError("this recorder was already started; use one per call")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("cannot create the recordings folder %s: %s", self.path.parent, exc)
            raise RecordingError(describe_os_error(exc, self.path)) from None
        # Before the WAV exists: a kill before the call service writes this recording's
        # row leaves a file that start-up recovery can still link to its call.
        write_sidecar(self.path)
        try:
            self._writer = StereoWavWriter(self.path, sink=self._sink)
        except Exception:
            remove_sidecar(self.path)
            raise
        self._native = left.lib if isinstance(left, NativePort) else None
        self._taps = self._make_taps()
        self._thread = threading.Thread(target=self._run, name="recorder-writer", daemon=True)
        self._thread.start()
        for src, tap in zip((left, right), self._taps, strict=True):
            if self._native is not None:
                self._native.connect(src.getPortId(), tap.getPortId())
            else:
                assert isinstance(src, pj.AudioMedia) and isinstance(tap, TapPort)
                src.startTransmit(tap)
        self._sources = [left, right]
        log.info("recording started: %s", self.path)

    def _make_taps(self) -> list[TapPort | NativePort]:
        """Native taps when the agent's side is native (else, or if they cannot be
        created, the Python tap ports, said once in the log)."""
        if self._native is not None:
            try:
                self._queues = NativeTaps(self._native)
                ltap = NativePort(self._native, TAP_LEFT, "rec-left", taps=self._queues)
                try:
                    rtap = NativePort(self._native, TAP_RIGHT, "rec-right", taps=self._queues)
                except NativeMediaError:
                    ltap.close()
                    raise
                return [ltap, rtap]
            except NativeMediaError as exc:
                log.warning("native recorder taps unavailable, using Python taps: %s", exc)
                self._queues = None
        ptaps = [TapPort("rec-left", self._on_left), TapPort("rec-right", self._on_right)]
        for tap in ptaps:
            tap.create()
        return list(ptaps)

    def stop(self) -> RecordingResult:
        """Disconnect the taps, finish the file, and return its sha256 and duration.

        Safe to call twice (the second call returns the same result)."""
        if self._result is not None:
            return self._result
        if self._thread is None or self._writer is None:
            raise RuntimeError("stop() called on a recorder that was never started")
        for media, tap in zip(self._sources, self._taps, strict=True):
            try:
                if self._native is not None:
                    self._native.connect(media.getPortId(), tap.getPortId(), connect=False)
                elif isinstance(media, pj.AudioMedia) and isinstance(tap, TapPort):
                    media.stopTransmit(tap)
            except NativeMediaError as exc:
                log.warning("disconnecting %s failed: %s", tap.name, exc)
            except pj.Error as exc:
                log.warning("stopTransmit to %s failed: %s", tap.name, exc.info())
        self._sources = []
        # The ports are destroyed here, on the pjsua2 thread, before anything else can
        # reach libDestroy() with them still registered (native ones explicitly; the
        # queues they fill stay alive until both the ports and this recorder let go).
        for tap in self._taps:
            if isinstance(tap, NativePort):
                tap.close()
        self._stop.set()
        self._thread.join()
        self._taps = []
        if self._queues is not None:
            lost = self._queues.dropped(0) + self._queues.dropped(1)
            if lost:
                log.warning("recording %s: %d frame(s) dropped, the writer fell behind",
                            self.path, lost)
        summary = self._writer.close()
        remove_sidecar(self.path)  # the result below carries everything the note knew
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        self._result = RecordingResult(
            path=self.path, sha256=digest.hexdigest(), duration_s=round(summary.duration_s, 3),
            size_bytes=self.path.stat().st_size, paused_spans=summary.paused_spans,
            error=summary.error,
        )
        log.info("recording finished: %s, %.2f s, %d paused span(s)%s", self.path,
                 self._result.duration_s, len(summary.paused_spans),
                 f", error: {summary.error}" if summary.error else "")
        return self._result

    # -- any thread ------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> float:
        """Stop keeping audio (card numbers); silence keeps the timeline. Returns the
        call time in seconds at which the pause starts."""
        with self._lock:
            self._paused = True
            if self._queues is not None:
                return self._queues.set_paused(True) * 0.02
            return self._frames_seen * 0.02

    def resume(self) -> float:
        """Keep audio again; returns the call time in seconds at which the pause ended."""
        with self._lock:
            self._paused = False
            if self._queues is not None:
                return self._queues.set_paused(False) * 0.02
            return self._frames_seen * 0.02

    # -- pjmedia clock thread ----------------------------------------------------------

    def _on_left(self, data: bytes | None) -> None:
        self._left.append((data, self._paused))

    def _on_right(self, data: bytes | None) -> None:
        with self._lock:
            self._frames_seen += 1
        self._right.append((data, self._paused))

    # -- writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        assert self._writer is not None
        try:
            while not self._stop.wait(_WRITER_TICK_S):
                self._drain(final=False)
            self._drain(final=True)
            return
        except RecordingError as exc:
            message = str(exc)
        except Exception:
            log.exception("recording writer for %s failed", self.path)
            message = f"Recording stopped: an internal error occurred ({self.path})."
        self.failed.emit(message)
        # The call goes on: keep emptying the taps' queues until stop() so memory
        # cannot grow, writing nothing more.
        while True:
            if self._queues is not None:
                self._queues.take(0)
                self._queues.take(1)
            self._left.clear()
            self._right.clear()
            if self._stop.wait(_WRITER_TICK_S):
                break

    def _drain(self, final: bool) -> None:
        assert self._writer is not None
        left, right = self._left, self._right
        if self._queues is not None:  # native taps: their frames join the same queues
            left.extend(self._queues.take(0))
            right.extend(self._queues.take(1))
        while left and right:
            ldata, lpaused = left.popleft()
            rdata, rpaused = right.popleft()
            self._writer.append(ldata, rdata, paused=lpaused or rpaused,
                                frame_bytes=FRAME_BYTES)
        # One side silent for a long time (or left over at the end): pad the other.
        for side, is_left in ((left, True), (right, False)):
            while side and (final or len(side) > _MAX_SKEW_FRAMES):
                data, paused = side.popleft()
                if is_left:
                    self._writer.append(data, None, paused=paused, frame_bytes=FRAME_BYTES)
                else:
                    self._writer.append(None, data, paused=paused, frame_bytes=FRAME_BYTES)


def repair_recordings(folder: Path) -> list[Path]:
    """Run `repair_wav_header` on every WAV under `folder`, subfolders included (the
    engine files recordings by month). Called at app start-up, after a possible crash.

    Returns the files that needed repair; files that are not ours are logged, not
    touched."""
    repaired: list[Path] = []
    if not folder.is_dir():
        return repaired
    for path in sorted(folder.rglob("*.wav")):
        try:
            if repair_wav_header(path):
                repaired.append(path)
        except (ValueError, OSError) as exc:
            log.warning("recording %s left as is: %s", path, exc)
    return repaired
