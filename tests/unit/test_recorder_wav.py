"""Crash-safe stereo WAV writer: valid while growing, repaired after a kill, pause spans,
full disk. The real recorder (pjsua2 taps) is covered in tests/integration."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import wave
from array import array
from pathlib import Path

import pytest

from agent_desktop.wav import (
    HEADER_SIZE,
    RecordingError,
    StereoWavWriter,
    describe_os_error,
    interleave,
    repair_wav_header,
    wav_header,
)
from sip.recorder import repair_recordings

FRAME = 640  # 20 ms of 16 kHz 16-bit mono


def mono(value: int, nbytes: int = FRAME) -> bytes:
    return array("h", [value] * (nbytes // 2)).tobytes()


def read_stereo(path: Path) -> tuple[wave._wave_params, array]:
    with wave.open(str(path)) as w:
        params = w.getparams()
        samples = array("h")
        samples.frombytes(w.readframes(w.getnframes()))
    return params, samples


def test_interleave_puts_left_on_even_and_right_on_odd_samples() -> None:
    left = array("h", [1, 2, 3]).tobytes()
    right = array("h", [-1, -2, -3]).tobytes()
    out = array("h")
    out.frombytes(interleave(left, right, 6))
    assert list(out) == [1, -1, 2, -2, 3, -3]
    out2 = array("h")
    out2.frombytes(interleave(None, right, 6))
    assert list(out2) == [0, -1, 0, -2, 0, -3]
    out3 = array("h")
    out3.frombytes(interleave(left[:2], None, 6))  # short frame padded with silence
    assert list(out3) == [1, 0, 0, 0, 0, 0]


def test_header_is_valid_while_the_file_grows(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    w = StereoWavWriter(path, header_every_s=1.0)
    for _ in range(60):  # 1.2 s
        w.append(mono(100), mono(-100))
    params, samples = read_stereo(path)  # still open, never closed
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, 16000)
    assert params.nframes == 16000  # header updated at the 1 s mark
    assert samples[0] == 100 and samples[1] == -100
    summary = w.close()
    params, _ = read_stereo(path)
    assert params.nframes == 60 * 320
    assert summary.duration_s == pytest.approx(1.2)
    assert path.stat().st_size == HEADER_SIZE + 60 * 320 * 4
    assert repair_wav_header(path) is False  # a cleanly closed file needs nothing


def test_pause_writes_silence_and_marks_the_span(tmp_path: Path) -> None:
    path = tmp_path / "paused.wav"
    w = StereoWavWriter(path)
    for i in range(150):  # 3 s; paused from 1.0 s to 2.0 s
        w.append(mono(1000), mono(-2000), paused=50 <= i < 100)
    summary = w.close()
    assert summary.paused_spans == [(1.0, 2.0)]
    _, s = read_stereo(path)
    left, right = s[0::2], s[1::2]
    assert set(left[:16000]) == {1000} and set(right[:16000]) == {-2000}
    assert set(left[16000:32000]) == {0} and set(right[16000:32000]) == {0}
    assert set(left[32000:]) == {1000} and set(right[32000:]) == {-2000}


def test_a_pause_open_at_the_end_is_closed_at_the_last_frame(tmp_path: Path) -> None:
    w = StereoWavWriter(tmp_path / "p.wav")
    for i in range(20):
        w.append(mono(1), mono(1), paused=i >= 10)
    assert w.close().paused_spans == [(0.2, 0.4)]


CHILD = r"""
import sys, time
from array import array
from pathlib import Path
from agent_desktop.wav import StereoWavWriter
w = StereoWavWriter(Path(sys.argv[1]), header_every_s=1.0)
left = array("h", [1234] * 320).tobytes()
right = array("h", [-4321] * 320).tobytes()
for i in range(10**9):
    w.append(left, right)
    if i == 130:
        print("written", flush=True)
    time.sleep(0.002)
"""


def test_killed_writer_leaves_a_file_that_repair_makes_whole(tmp_path: Path) -> None:
    """SIGKILL mid-write (no close, no final header): the header lags the data; after
    repair the WAV plays for as long as the data really is, every frame intact."""
    path = tmp_path / "crash.wav"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"written"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    data_on_disk = path.stat().st_size - HEADER_SIZE
    before, _ = read_stereo(path)  # playable even before the repair
    assert before.nframes * 4 < data_on_disk  # ...but shorter than what was written

    assert repair_wav_header(path) is True
    after, samples = read_stereo(path)
    whole = data_on_disk - data_on_disk % 4
    assert after.nframes == whole // 4
    assert after.nframes / 16000 >= 131 * 0.02
    assert set(samples[0::2]) == {1234}
    assert set(samples[1::2]) == {-4321}
    assert repair_wav_header(path) is False


def test_repair_trims_a_torn_last_sample_frame(tmp_path: Path) -> None:
    path = tmp_path / "torn.wav"
    path.write_bytes(wav_header(0) + bytes(4 * 100) + b"\x01\x02\x03")
    assert repair_wav_header(path) is True
    params, _ = read_stereo(path)
    assert params.nframes == 100
    assert path.stat().st_size == HEADER_SIZE + 400


def test_repair_refuses_files_that_are_not_our_wavs(tmp_path: Path) -> None:
    short = tmp_path / "short.wav"
    short.write_bytes(b"RIFF")
    with pytest.raises(ValueError, match="shorter than a WAV header"):
        repair_wav_header(short)
    other = tmp_path / "other.wav"
    other.write_bytes(b"ID3" + bytes(100))
    with pytest.raises(ValueError, match="not a WAV file"):
        repair_wav_header(other)


def test_repair_recordings_fixes_a_folder_and_leaves_strangers_alone(tmp_path: Path) -> None:
    good = tmp_path / "a.wav"
    good.write_bytes(wav_header(400) + bytes(400))
    (tmp_path / "2026-11").mkdir()
    broken = tmp_path / "2026-11" / "b.wav"  # recordings are filed by month
    broken.write_bytes(wav_header(0) + bytes(800))
    stranger = tmp_path / "c.wav"
    stranger.write_bytes(b"not audio at all, but long enough to have a header.....")
    assert repair_recordings(tmp_path) == [broken]
    assert stranger.read_bytes().startswith(b"not audio")
    assert repair_recordings(tmp_path / "missing") == []


class FullDisk:
    """A file that accepts `room` bytes, then behaves like a full disk (a short write,
    then ENOSPC) — what os.write does when a filesystem fills up."""

    def __init__(self, path: Path, room: int) -> None:
        self.f = open(path, "w+b")  # noqa: SIM115
        self.room = room

    def write(self, data: bytes) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = min(len(data), self.room)
        self.f.write(data[:n])
        self.f.flush()
        self.room -= n
        return n

    def pwrite(self, data: bytes, offset: int) -> None:
        os.pwrite(self.f.fileno(), data, offset)

    def fsync(self) -> None:
        os.fsync(self.f.fileno())

    def truncate(self, size: int) -> None:
        self.f.truncate(size)

    def close(self) -> None:
        self.f.close()


def test_full_disk_mid_call_raises_a_plain_error_and_keeps_the_audio(tmp_path: Path) -> None:
    path = tmp_path / "full.wav"
    room = HEADER_SIZE + 10 * 1280 + 3  # ten whole frames and a torn sample frame
    w = StereoWavWriter(path, sink=FullDisk(path, room))
    with pytest.raises(RecordingError, match="the disk is full") as err:
        for _ in range(100):
            w.append(mono(7), mono(-7))
    assert "kept" in str(err.value)
    assert w.error == str(err.value)
    with pytest.raises(RecordingError):  # stays failed, never silently drops audio
        w.append(mono(7), mono(-7))
    summary = w.close()
    assert summary.error == str(err.value)
    params, samples = read_stereo(path)
    assert params.nframes == 10 * 320  # torn bytes trimmed, header matches the file
    assert set(samples) == {7, -7}
    assert repair_wav_header(path) is False


def test_a_really_full_device_fails_at_start_with_a_plain_error() -> None:
    """/dev/full is the kernel's always-full disk: the real ENOSPC path."""
    with pytest.raises(RecordingError, match="disk is full"):
        StereoWavWriter(Path("/dev/full"))


@pytest.mark.parametrize(("code", "words"), [
    (errno.EDQUOT, "disk is full"),
    (errno.EFBIG, "largest size"),
    (errno.EACCES, "no permission"),
    (errno.EIO, "failed"),
])
def test_os_errors_become_sentences(code: int, words: str) -> None:
    msg = describe_os_error(OSError(code, os.strerror(code)), Path("/rec/x.wav"))
    assert words in msg
    assert msg.startswith("Recording stopped")
