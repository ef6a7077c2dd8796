"""StereoRecorder's frame pairing and pause semantics, driven without pjsua2: the tap
callbacks are called directly, as pjmedia's clock thread would, and the writer drained.
(The same recorder with real pjsua2 taps is tested in tests/integration.)"""

from __future__ import annotations

import wave
from array import array
from pathlib import Path

import numpy as np
import pytest

from agent_desktop.wav import RecordingError, StereoWavWriter
from sip.recorder import StereoRecorder


def mono(value: int) -> bytes:
    return array("h", [value] * 320).tobytes()


def channels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path)) as w:
        s = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return s[:, 0], s[:, 1]


def recorder(tmp_path: Path) -> StereoRecorder:
    rec = StereoRecorder(tmp_path / "r.wav")
    rec._writer = StereoWavWriter(rec.path)  # what start() does before wiring the taps
    return rec


def test_frames_are_paired_left_agent_right_customer(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    for i in range(10):
        rec._on_left(mono(100 + i))
        rec._on_right(mono(-100 - i))
    rec._drain(final=False)
    rec._writer.close()  # type: ignore[union-attr]
    left, right = channels(rec.path)
    assert list(left[::320]) == [100 + i for i in range(10)]
    assert list(right[::320]) == [-100 - i for i in range(10)]


def test_audio_captured_while_paused_is_never_written_even_if_drained_later(
        tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    for _ in range(5):
        rec._on_left(mono(1))
        rec._on_right(mono(2))
    assert rec.pause() == pytest.approx(0.1)
    for _ in range(5):  # the card number
        rec._on_left(mono(9))
        rec._on_right(mono(9))
    assert rec.resume() == pytest.approx(0.2)
    for _ in range(5):
        rec._on_left(mono(1))
        rec._on_right(mono(2))
    rec._drain(final=True)  # drained only now, after resume()
    summary = rec._writer.close()  # type: ignore[union-attr]
    assert summary.paused_spans == [(0.1, 0.2)]
    left, right = channels(rec.path)
    assert 9 not in set(left) | set(right)
    assert set(left[1600:3200]) == {0} and set(right[1600:3200]) == {0}
    assert set(left[3200:]) == {1} and set(right[3200:]) == {2}


def test_a_silent_side_is_padded_instead_of_holding_the_other_in_memory(
        tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    for _ in range(40):  # only the customer's tap delivers (e.g. no mic media)
        rec._on_right(mono(5))
    rec._drain(final=False)
    assert len(rec._right) <= 25
    rec._drain(final=True)
    rec._writer.close()  # type: ignore[union-attr]
    left, right = channels(rec.path)
    assert len(right) == 40 * 320
    assert set(left) == {0} and set(right) == {5}


def test_empty_frames_are_silence(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    rec._on_left(None)
    rec._on_right(mono(3))
    rec._drain(final=True)
    rec._writer.close()  # type: ignore[union-attr]
    left, right = channels(rec.path)
    assert set(left) == {0} and set(right) == {3}


def test_an_uncreatable_folder_is_a_plain_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rec = StereoRecorder(blocker / "2026-11" / "call.wav")
    with pytest.raises(RecordingError, match="Recording stopped"):
        rec.start(None, None)  # fails before touching pjsua2


def test_stop_before_start_says_so(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="never started"):
        StereoRecorder(tmp_path / "x.wav").stop()
