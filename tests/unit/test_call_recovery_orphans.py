"""Recordings a kill left without a Recording row are linked to their call at start-up.

The real kill -9 of the engine is in tests/integration/test_call_recovery_orphans.py; these
pin down the matching rules on hand-made files: sidecar start, start from the file's times,
the latest call without a recording, a created interrupted call when none fits, files of
live calls and foreign files left alone, idempotence and outbox rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent_desktop.call_recovery import (
    INTERRUPTED_REASON,
    INTERRUPTED_REPAIRED_REASON,
    recover_interrupted_calls,
    remove_sidecar,
    sidecar_path,
    write_sidecar,
)
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Outbox, Recording

RATE = 16000


@pytest.fixture
def rec_dir(tmp_path: Path) -> Path:
    d = tmp_path / "recordings"
    d.mkdir()
    return d


def killed_wav(path: Path, seconds: float) -> None:
    """Stereo 16-bit WAV as a killed recorder leaves it: the header still says 0 bytes."""
    head = bytearray(44)
    head[0:4], head[8:12], head[12:16], head[36:40] = b"RIFF", b"WAVE", b"fmt ", b"data"
    struct.pack_into("<IHHIIHH", head, 16, 16, 1, 2, RATE, RATE * 4, 4, 16)
    struct.pack_into("<I", head, 4, 36)
    path.write_bytes(bytes(head) + b"\x03\x00" * int(seconds * RATE * 2))


def add_call(db: Database, started: str, *, state: str = "dialing",
             ended: str | None = None, direction: str = "out") -> int:
    with db.transaction() as s:
        row = CallLog(direction=direction, number="138 0013 8000", state=state,
                      started_at=started, ended_at=ended,
                      outcome="busy" if state == "ended" else None)
        s.add(row)
        s.flush()
        return row.id


def recordings(db: Database) -> list[tuple[int, str, str, float, str | None]]:
    with db.session() as s:
        return [(r.call_log_id, r.path, r.state, r.duration_s, r.sha256)
                for r in s.scalars(select(Recording).order_by(Recording.id))]


def call(db: Database, log_id: int) -> CallLog:
    with db.session() as s:
        row = s.get(CallLog, log_id)
        assert row is not None
        s.expunge(row)
        return row


def old(path: Path, seconds_ago: float = 600.0) -> None:
    """Make a file look written `seconds_ago` (not a recording still going on)."""
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def test_orphan_with_its_start_note_is_linked_to_the_open_call(
        db: Database, rec_dir: Path) -> None:
    lid = add_call(db, "2026-11-20T09:00:00.000+00:00")
    wav = rec_dir / "20261120-090000-ab12cd34-call1.wav"
    write_sidecar(wav, "2026-11-20T09:00:00.250+00:00")
    killed_wav(wav, 1.5)
    note = json.loads(sidecar_path(wav).read_text())
    assert note["pid"] == os.getpid()
    note["pid"] = 2 ** 22 + 7  # the killed process (beyond pid_max: surely gone)
    sidecar_path(wav).write_text(json.dumps(note))

    assert recover_interrupted_calls(db, rec_dir) == [lid]

    (got,) = recordings(db)
    assert got[:4] == (lid, wav.name, "repaired", 1.5)
    assert got[4] == hashlib.sha256(wav.read_bytes()).hexdigest()
    assert wav.stat().st_size == 44 + int(1.5 * RATE) * 4  # header repaired
    row = call(db, lid)
    assert (row.state, row.outcome, row.sip_reason) == ("ended", "answered",
                                                         INTERRUPTED_REASON)
    # connected was never written (write-behind), but audio flowed from 09:00:00.250
    assert row.answered_at == "2026-11-20T09:00:00.250+00:00"
    assert row.talk_seconds == 1.5
    assert not sidecar_path(wav).exists()
    # idempotent: nothing more to do, nothing adopted twice
    assert recover_interrupted_calls(db, rec_dir) == []
    assert len(recordings(db)) == 1


def test_without_a_note_the_start_is_last_write_minus_length(db: Database,
                                                             rec_dir: Path) -> None:
    ended_before = add_call(db, "2026-11-20T08:00:00.000+00:00", state="ended",
                            ended="2026-11-20T08:00:05.000+00:00")
    lid = add_call(db, "2026-11-20T09:00:00.000+00:00", state="ringing")
    later = add_call(db, "2026-11-20T09:30:00.000+00:00", state="ended",
                     ended="2026-11-20T09:30:09.000+00:00")
    wav = rec_dir / "2026-11" / "x-call1.wav"  # subfolders are searched too
    wav.parent.mkdir()
    killed_wav(wav, 2.0)
    # last written at 09:00:03 UTC → started 09:00:01
    from datetime import UTC, datetime
    t = datetime(2026, 11, 20, 9, 0, 3, tzinfo=UTC).timestamp()
    os.utime(wav, (t, t))

    assert recover_interrupted_calls(db, rec_dir) == [lid]
    assert [(r[0], r[1]) for r in recordings(db)] == [(lid, "2026-11/x-call1.wav")]
    assert call(db, lid).answered_at == "2026-11-20T09:00:01.000+00:00"
    assert call(db, ended_before).outcome == call(db, later).outcome == "busy"


def test_no_fitting_call_creates_an_interrupted_call_that_syncs(db: Database,
                                                                rec_dir: Path) -> None:
    # Ended before the recording began, and one that starts after it: neither fits.
    add_call(db, "2026-11-20T08:00:00.000+00:00", state="ended",
             ended="2026-11-20T08:00:30.000+00:00")
    add_call(db, "2026-11-20T10:00:00.000+00:00", state="ended",
             ended="2026-11-20T10:00:30.000+00:00")
    wav = rec_dir / "lost-row.wav"
    write_sidecar(wav, "2026-11-20T09:00:00.000+00:00")
    killed_wav(wav, 3.0)
    old(wav)
    old(sidecar_path(wav))
    with db.session() as s:
        outbox_before = s.scalar(select(func.count()).select_from(Outbox))

    (created,) = recover_interrupted_calls(db, rec_dir)

    row = call(db, created)
    assert (row.direction, row.state, row.outcome, row.sip_reason) == (
        "out", "ended", "answered", INTERRUPTED_REPAIRED_REASON)
    assert row.started_at == row.answered_at == "2026-11-20T09:00:00.000+00:00"
    assert row.talk_seconds == 3.0 and row.ended_at is not None
    assert [r[:3] for r in recordings(db)] == [(created, "lost-row.wav", "repaired")]
    with db.session() as s:
        new = s.scalars(select(Outbox).order_by(Outbox.mutation_id)
                        .offset(outbox_before)).all()
        assert {(o.entity, o.op) for o in new} >= {("call_log", "upsert"),
                                                   ("recording", "upsert")}
    assert recover_interrupted_calls(db, rec_dir) == []


def test_the_latest_call_without_a_recording_gets_it(db: Database, rec_dir: Path) -> None:
    first = add_call(db, "2026-11-20T09:00:00.000+00:00", state="connected")
    second = add_call(db, "2026-11-20T09:00:20.000+00:00", state="connected")
    with db.transaction() as s:  # the first call already has its (unfinished) recording
        s.add(Recording(call_log_id=first, path="first.wav", state="recording"))
    killed_wav(rec_dir / "first.wav", 1.0)
    a = rec_dir / "second-a.wav"
    write_sidecar(a, "2026-11-20T09:00:20.100+00:00")
    killed_wav(a, 1.0)
    old(a)

    assert sorted(recover_interrupted_calls(db, rec_dir)) == [first, second]
    assert sorted((r[0], r[1]) for r in recordings(db)) == [(first, "first.wav"),
                                                            (second, "second-a.wav")]


def test_live_foreign_and_known_files_are_left_alone(db: Database, rec_dir: Path) -> None:
    lid = add_call(db, "2026-11-20T09:00:00.000+00:00", state="connected")
    live = rec_dir / "live.wav"  # being written by this very process right now
    write_sidecar(live)
    killed_wav(live, 0.5)
    foreign = rec_dir / "not-ours.wav"
    foreign.write_bytes(b"this is not audio")
    old(foreign)
    moved = rec_dir / "moved.wav"  # its row kept an absolute path from an old data folder
    killed_wav(moved, 0.5)
    old(moved)
    with db.transaction() as s:
        other = CallLog(direction="in", number="1", state="ended", outcome="answered")
        s.add(other)
        s.flush()
        s.add(Recording(call_log_id=other.id, path="/old/data/recordings/moved.wav",
                        state="complete"))
    stray = sidecar_path(rec_dir / "never-created.wav")  # killed between note and WAV
    stray.write_text('{"started_at": "2026-11-20T09:00:00.000+00:00", "pid": 1}')

    assert recover_interrupted_calls(db, rec_dir, exclude_log_ids={lid}) == []

    assert [r[1] for r in recordings(db)] == ["/old/data/recordings/moved.wav"]
    assert foreign.read_bytes() == b"this is not audio"
    assert sidecar_path(live).exists() and not stray.exists()
    # After a restart (another process), the same file is an orphan and is adopted.
    remove_sidecar(live)
    old(live)
    assert recover_interrupted_calls(db, rec_dir) == [lid]
    assert [r[1] for r in recordings(db)][-1] == "live.wav"


def test_a_note_unreadable_falls_back_to_file_times(db: Database, rec_dir: Path) -> None:
    lid = add_call(db, "2026-11-20T09:00:00.000+00:00")
    wav = rec_dir / "garbled-note.wav"
    killed_wav(wav, 1.0)
    sidecar_path(wav).write_text("{not json")
    from datetime import UTC, datetime
    t = datetime(2026, 11, 20, 9, 0, 2, tzinfo=UTC).timestamp()
    os.utime(wav, (t, t))
    assert recover_interrupted_calls(db, rec_dir) == [lid]
    assert call(db, lid).answered_at == "2026-11-20T09:00:01.000+00:00"
    assert not sidecar_path(wav).exists()
