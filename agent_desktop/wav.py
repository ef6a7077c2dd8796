"""Crash-safe stereo WAV writing and start-up repair, free of pjsua2 and Qt.

Why not `wave` or pjsua2's `AudioMediaRecorder`: both write the RIFF sizes only when the
file is closed, so a crash mid-call leaves a file most players reject or play as empty,
and pjsua2's recorder is mono. Here the canonical 44-byte header is written first, audio
is appended as it comes, and the two size fields are rewritten in place every second, so
the file on disk is always a playable WAV that is at most a second "short"; the next start
runs `repair_wav_header()` to recompute the sizes from the real file length.

A write that fails (full disk, quota, file-size limit) raises `RecordingError` with a
plain sentence; what was already written stays on disk with a header that matches it.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
CHANNELS = 2
SAMPLE_WIDTH = 2
BLOCK_ALIGN = CHANNELS * SAMPLE_WIDTH
HEADER_SIZE = 44


class RecordingError(RuntimeError):
    """Writing the recording failed; the message is meant for the agent as is."""


class FileSink(Protocol):
    """The few file operations the writer needs (a fake can raise ENOSPC in tests)."""

    def write(self, data: bytes) -> int: ...
    def pwrite(self, data: bytes, offset: int) -> None: ...
    def fsync(self) -> None: ...
    def truncate(self, size: int) -> None: ...
    def close(self) -> None: ...


class OsFileSink:
    """Unbuffered file descriptor: every `write` reaches the kernel at once, so a crash of
    this process loses nothing already handed over (only an OS crash needs fsync)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)

    def write(self, data: bytes) -> int:
        return os.write(self._fd, data)

    def pwrite(self, data: bytes, offset: int) -> None:
        os.pwrite(self._fd, data, offset)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def close(self) -> None:
        os.close(self._fd)


def wav_header(data_bytes: int, channels: int = CHANNELS, rate: int = SAMPLE_RATE) -> bytes:
    """Canonical 44-byte PCM header for `data_bytes` of 16-bit audio."""
    align = channels * SAMPLE_WIDTH
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, channels, rate,
        rate * align, align, SAMPLE_WIDTH * 8, b"data", data_bytes,
    )


def describe_os_error(exc: OSError, path: Path) -> str:
    """Turn an OSError from writing a recording into a sentence an agent understands."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"Recording stopped: the disk is full ({path.parent}). "
                "The part recorded so far is kept.")
    if exc.errno == errno.EFBIG:
        return (f"Recording stopped: the file {path.name} reached the largest size "
                "allowed. The part recorded so far is kept.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"Recording stopped: no permission to write {path}."
    return f"Recording stopped: writing {path} failed ({exc.strerror or exc})."


def interleave(left: bytes | None, right: bytes | None, frame_bytes: int) -> bytes:
    """Interleave two mono 16-bit frames into one stereo frame; None means silence."""
    n = frame_bytes // SAMPLE_WIDTH
    out = array("h", bytes(2 * frame_bytes))
    if left:
        out[0::2] = _mono(left, n)
    if right:
        out[1::2] = _mono(right, n)
    return out.tobytes()


def _mono(data: bytes, n: int) -> array:
    a = array("h")
    usable = min(len(data), 2 * n) & ~1
    a.frombytes(data[:usable])
    if len(a) < n:
        a.extend([0] * (n - len(a)))
    return a


@dataclass
class WavSummary:
    """What a finished (or failed) writer left on disk."""

    path: Path
    data_bytes: int
    paused_spans: list[tuple[float, float]] = field(default_factory=list)
    error: str | None = None

    @property
    def duration_s(self) -> float:
        return self.data_bytes / (SAMPLE_RATE * BLOCK_ALIGN)


class StereoWavWriter:
    """Single-threaded writer of a 16 kHz 16-bit stereo WAV that is valid while it grows.

    `append()` takes one frame per side (None = silence) and a `paused` flag; paused frames
    are written as silence and collected into `[start, end]` spans in seconds, so the
    timeline of the call is kept while nothing of what was said is stored.
    """

    def __init__(self, path: Path, sink: FileSink | None = None,
                 header_every_s: float = 1.0, fsync_every_s: float = 5.0) -> None:
        self.path = path
        self._header_every = int(header_every_s * SAMPLE_RATE * BLOCK_ALIGN)
        self._fsync_every = int(fsync_every_s * SAMPLE_RATE * BLOCK_ALIGN)
        self._data_bytes = 0
        self._header_at = 0
        self._fsync_at = 0
        self._pause_start: int | None = None
        self._spans: list[tuple[float, float]] = []
        self._error: str | None = None
        try:
            self._sink: FileSink = sink if sink is not None else OsFileSink(path)
            self._write_all(wav_header(0), counts=False)
        except OSError as exc:
            msg = describe_os_error(exc, path)
            log.error("cannot start recording %s: %s", path, exc)
            raise RecordingError(msg) from None

    @property
    def data_bytes(self) -> int:
        return self._data_bytes

    @property
    def position_s(self) -> float:
        return self._data_bytes / (SAMPLE_RATE * BLOCK_ALIGN)

    @property
    def error(self) -> str | None:
        return self._error

    def append(self, left: bytes | None, right: bytes | None, paused: bool = False,
               frame_bytes: int = 640) -> None:
        """Write one stereo frame built from two mono frames of `frame_bytes` each."""
        if self._error is not None:
            raise RecordingError(self._error)
        if paused and self._pause_start is None:
            self._pause_start = self._data_bytes
        elif not paused and self._pause_start is not None:
            self._close_span()
        chunk = interleave(None if paused else left, None if paused else right, frame_bytes)
        try:
            self._write_all(chunk)
        except OSError as exc:
            self._fail(exc)
        if self._data_bytes - self._header_at >= self._header_every:
            self.update_header()
        if self._data_bytes - self._fsync_at >= self._fsync_every:
            self._fsync_at = self._data_bytes
            try:
                self._sink.fsync()
            except OSError as exc:
                self._fail(exc)

    def update_header(self) -> None:
        """Rewrite the RIFF and data sizes in place (no new disk space needed)."""
        self._header_at = self._data_bytes
        try:
            self._sink.pwrite(wav_header(self._data_bytes), 0)
        except OSError as exc:
            log.error("updating the header of %s failed: %s", self.path, exc)

    def close(self) -> WavSummary:
        """Finish the file: close an open pause span, final header, fsync."""
        if self._pause_start is not None:
            self._close_span()
        self.update_header()
        try:
            self._sink.fsync()
        except OSError as exc:
            log.error("fsync of %s failed: %s", self.path, exc)
        try:
            self._sink.close()
        except OSError as exc:
            log.error("closing %s failed: %s", self.path, exc)
        return WavSummary(self.path, self._data_bytes, list(self._spans), self._error)

    def _close_span(self) -> None:
        assert self._pause_start is not None
        rate = SAMPLE_RATE * BLOCK_ALIGN
        self._spans.append((round(self._pause_start / rate, 3),
                            round(self._data_bytes / rate, 3)))
        self._pause_start = None

    def _write_all(self, data: bytes, counts: bool = True) -> None:
        view = memoryview(data)
        while view:
            n = self._sink.write(bytes(view))
            if n <= 0:
                raise OSError(errno.EIO, "write returned no progress")
            if counts:
                self._data_bytes += n
            view = view[n:]

    def _fail(self, exc: OSError) -> None:
        """Keep what was written: trim a torn sample frame, fix the header, then raise."""
        self._error = describe_os_error(exc, self.path)
        log.error("recording %s failed after %.2f s: %s", self.path, self.position_s, exc)
        whole = self._data_bytes - self._data_bytes % BLOCK_ALIGN
        if whole != self._data_bytes:
            try:
                self._sink.truncate(HEADER_SIZE + whole)
            except OSError as texc:
                log.error("trimming %s failed: %s", self.path, texc)
            self._data_bytes = whole
        self.update_header()
        raise RecordingError(self._error) from None


def repair_wav_header(path: Path) -> bool:
    """Make the sizes in a WAV header agree with the file's length (after a crash).

    Returns True when the header was rewritten, False when it was already right. A file
    too short or not a RIFF/WAVE file with our 44-byte layout raises `ValueError` with the
    reason: it is not ours to touch.
    """
    size = path.stat().st_size
    if size < HEADER_SIZE:
        raise ValueError(f"{path} is only {size} bytes, shorter than a WAV header")
    with open(path, "r+b") as f:
        head = f.read(HEADER_SIZE)
        if head[0:4] != b"RIFF" or head[8:12] != b"WAVE" or head[36:40] != b"data":
            raise ValueError(f"{path} is not a WAV file with a 44-byte header")
        channels, = struct.unpack_from("<H", head, 22)
        rate, = struct.unpack_from("<I", head, 24)
        align, = struct.unpack_from("<H", head, 32)
        if align == 0:
            raise ValueError(f"{path} has a block alignment of 0 in its header")
        data = size - HEADER_SIZE
        whole = data - data % align
        riff_size, = struct.unpack_from("<I", head, 4)
        data_size, = struct.unpack_from("<I", head, 40)
        if riff_size == 36 + whole and data_size == whole and whole == data:
            return False
        if whole != data:
            f.truncate(HEADER_SIZE + whole)
        f.seek(0)
        f.write(wav_header(whole, channels, rate))
        f.flush()
        os.fsync(f.fileno())
    log.info("repaired WAV header of %s: %d bytes of audio (%.2f s)", path, whole,
             whole / (rate * align))
    return True
