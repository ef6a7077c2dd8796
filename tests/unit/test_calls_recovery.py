"""Interrupted calls are finalised at start-up: outcome, end time, talk time, recordings."""

from __future__ import annotations

import hashlib
import os
import struct
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import func, select

from agent_desktop.call_recovery import INTERRUPTED_REASON, recover_interrupted_calls
from agent_desktop.calls import CallService
from agent_desktop.dialplan import DialPlan
from agent_desktop.phone import CallState, FakePhoneBackend
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Outbox, Recording


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "agent.sqlite3")
    yield d
    d.close()


def crashed_wav(path: Path, seconds: float, rate: int = 16000) -> None:
    """A stereo 16-bit WAV as a killed recorder leaves it: header still says 0 bytes,
    plus half a frame at the end."""
    frames = int(seconds * rate)
    head = bytearray(44)
    head[0:4], head[8:12], head[12:16], head[36:40] = b"RIFF", b"WAVE", b"fmt ", b"data"
    struct.pack_into("<IHHIIHH", head, 16, 16, 1, 2, rate, rate * 4, 4, 16)
    struct.pack_into("<I", head, 4, 36)
    path.write_bytes(bytes(head) + b"\x01\x00" * (frames * 2) + b"\x07\x00")


def add_call(db: Database, state: str, *, answered: str | None = None,
             started: str = "2026-11-20T09:00:00.000+00:00",
             rec_path: str | None = None) -> int:
    with db.transaction() as s:
        row = CallLog(direction="out", number="138 0013 8000", state=state,
                      started_at=started, answered_at=answered)
        s.add(row)
        s.flush()
        if rec_path is not None:
            s.add(Recording(call_log_id=row.id, path=rec_path, state="recording"))
        return row.id


def get(db: Database, log_id: int) -> tuple[CallLog, list[Recording]]:
    with db.session() as s:
        row = s.get(CallLog, log_id)
        assert row is not None
        recs = list(s.scalars(select(Recording).where(Recording.call_log_id == log_id)))
        s.expunge_all()
        return row, recs


def test_answered_call_with_recording_takes_talk_time_and_end_from_the_file(
        db: Database, tmp_path: Path) -> None:
    wav_path = tmp_path / "rec" / "a.wav"
    wav_path.parent.mkdir()
    crashed_wav(wav_path, 2.5)
    last_write = time.time() + 100  # the last frame was written after the row's update
    os.utime(wav_path, (last_write, last_write))
    lid = add_call(db, "connected", answered="2026-11-20T09:00:03.000+00:00",
                   rec_path="a.wav")
    assert recover_interrupted_calls(db, tmp_path / "rec") == [lid]
    row, (rec,) = get(db, lid)
    assert (row.state, row.outcome, row.sip_reason) == ("ended", "answered",
                                                         INTERRUPTED_REASON)
    assert row.talk_seconds == pytest.approx(2.5)
    assert row.ended_at == datetime.fromtimestamp(last_write, UTC).isoformat(
        timespec="milliseconds")
    with wave.open(str(wav_path)) as w:  # playable again: header matches the data
        assert (w.getnchannels(), w.getnframes()) == (2, 40000)
    assert rec.state == "repaired"
    assert rec.sha256 == hashlib.sha256(wav_path.read_bytes()).hexdigest()
    assert (rec.duration_s, rec.size_bytes) == (2.5, wav_path.stat().st_size)


def test_unanswered_call_fails_at_its_last_update_and_outbox_rows_are_written(
        db: Database, tmp_path: Path) -> None:
    lid = add_call(db, "ringing")
    with db.session() as s:
        before = s.scalar(select(func.count()).select_from(Outbox))
        last_update = s.get(CallLog, lid).updated_at  # type: ignore[union-attr]
    assert recover_interrupted_calls(db, tmp_path) == [lid]
    row, recs = get(db, lid)
    assert (row.state, row.outcome, row.talk_seconds, row.sip_code) == (
        "ended", "failed", 0.0, None)
    assert row.ended_at == last_update
    assert recs == []
    with db.session() as s:
        after = s.scalar(select(func.count()).select_from(Outbox))
    assert before is not None and after is not None and after > before


def test_answered_without_recording_counts_until_the_last_update(
        db: Database, tmp_path: Path) -> None:
    lid = add_call(db, "connected", started="2000-01-01T00:00:00.000+00:00",
                   answered="2000-01-01T00:00:01.000+00:00")
    recover_interrupted_calls(db, None)
    row, _ = get(db, lid)
    assert row.outcome == "answered"
    assert row.ended_at is not None and row.ended_at >= row.answered_at  # type: ignore[operator]
    assert row.talk_seconds > 0


def test_missing_or_foreign_recording_is_marked_not_invented(
        db: Database, tmp_path: Path) -> None:
    (tmp_path / "junk.wav").write_bytes(b"not a wav at all, but long enough to try......")
    a = add_call(db, "connected", answered="2026-11-20T09:00:03.000+00:00",
                 rec_path="gone.wav")
    b = add_call(db, "connected", answered="2026-11-20T09:00:03.000+00:00",
                 rec_path="junk.wav")
    assert sorted(recover_interrupted_calls(db, tmp_path)) == [a, b]
    for lid in (a, b):
        row, (rec,) = get(db, lid)
        assert rec.state == "missing" and rec.sha256 is None
        assert row.outcome == "answered"


def test_idempotent_and_ended_calls_untouched(db: Database, tmp_path: Path) -> None:
    done = add_call(db, "ended")
    open_ = add_call(db, "dialing")
    assert recover_interrupted_calls(db, tmp_path) == [open_]
    first = get(db, open_)[0].ended_at
    with db.session() as s:
        outbox = s.scalar(select(func.count()).select_from(Outbox))
    assert recover_interrupted_calls(db, tmp_path) == []
    assert get(db, open_)[0].ended_at == first
    assert get(db, done)[0].outcome is None  # a finished row is never rewritten
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Outbox)) == outbox


def test_call_service_leaves_its_live_call_alone(db: Database, tmp_path: Path,
                                                qtbot: QtBot) -> None:
    stale = add_call(db, "connected", answered="2026-11-20T09:00:03.000+00:00")
    fake = FakePhoneBackend()
    svc = CallService(db, fake, DialPlan(PhoneNormalizer("CN"), "sim.local"),
                      _NoCallers(), recordings_dir=tmp_path)
    live = svc.dial(None, "138 0013 8000")
    fake.simulate_state(1, CallState.RINGING, 180, "Ringing")
    assert svc.recover_interrupted() == [stale]
    assert get(db, live)[0].state != "ended"
    assert svc.state_of(live) == CallState.RINGING


class _NoCallers:
    def caller_id(self, number: str) -> int | None:
        return None
