"""Finalise calls a crash or kill left open, so the call log never shows a ghost call.

Why at start-up and outside the phone: a CallLog row is written before the first SIP
packet and finalised at DISCONNECTED; if the app dies in between (crash, kill -9, power
cut) the row stays in dialing/ringing/connected forever, its Recording row stays
"recording", and neither the timeline, the stats nor the server ever learn how it ended.
Nothing about that needs pjsua2 or the engine, so the composition root runs this before
the phone starts (or even with the phone disabled), and `CallService.recover_interrupted`
runs it for rows that are not live calls of this process.

What is known after the fact, and what is made of it:
- the recording file (written as the call goes, header possibly stale): its header is
  repaired, then its length is the talk time of an answered call and its modification
  time the best end time;
- otherwise the row's last update (`updated_at`: the write-behind of ringing/connected).
Outcome: `answered` when `answered_at` is set (the customer did talk), else `failed`;
reason INTERRUPTED_REASON. Outbox rows come from the normal ORM path. Running it twice
changes nothing the second time.

Orphaned recordings (a kill after the WAV was created but before its Recording row was
committed — the row is written when the engine's `recording_started` reaches the call
service, a few milliseconds later): every WAV under the recordings folder that no row
names is adopted. The recorder leaves a sidecar (`<file>.wav.json`, written before the
WAV, removed when the recording stops) with the exact UTC start and its process id; without
one the start is the file's modification time minus its length. The file is linked to the
call that was going on then: the latest CallLog without a recording that started before it
(a CallLog is always committed before its media starts, so this is the call in all but a
lost-write case). If there is no such call (its row could not be written, e.g. a full
disk) a CallLog is created for it — outbound, number unknown, ended with
INTERRUPTED_REPAIRED_REASON — so the audio is listed and synced, never left unlisted.
A call whose connected state had not been written yet (write-behind) but whose recording
holds audio is taken as answered at the recording's start: media flowed, and treating a
real conversation as failed would drop its wrap-up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import wave
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Recording

log = logging.getLogger(__name__)

INTERRUPTED_REASON = "Interrupted: the app stopped during the call"
INTERRUPTED_REPAIRED_REASON = ("Interrupted: the app stopped during the call before its "
                               "details were saved; only the recording was kept")
OPEN_STATES = ("dialing", "ringing", "connected")
SIDECAR_SUFFIX = ".json"
#: Clock slack when matching a recording's start to a call's start (ISO text compares
#: to the millisecond; the recorder starts after the call row, never seconds before).
MATCH_SLACK = timedelta(seconds=2)
#: A WAV modified this recently may belong to a call live in this process: left alone.
LIVE_WINDOW_S = 15.0

Repair = Callable[[Path], bool]


@dataclass(frozen=True)
class _FileFacts:
    sha256: str
    duration_s: float
    size_bytes: int
    mtime_iso: str
    start_iso: str = ""  # when the recording began, if known


def sidecar_path(wav: Path) -> Path:
    """Where the recorder notes a recording's start (`x.wav` → `x.wav.json`)."""
    return wav.with_name(wav.name + SIDECAR_SUFFIX)


def write_sidecar(wav: Path, started_at: str | None = None) -> None:
    """Note the start of a recording before its WAV exists (called by the recorder).

    Why: a kill can land after the WAV is created and before its Recording row is
    committed; the sidecar's exact start (and process id, to tell a live recording from
    an orphan) lets the next start link the file to its call. A failure (e.g. a full disk)
    is logged and not raised: the recording itself matters more than its sidecar."""
    started_at = started_at or datetime.now(UTC).isoformat(timespec="milliseconds")
    try:
        sidecar_path(wav).write_text(json.dumps({"started_at": started_at,
                                                 "pid": os.getpid()}), encoding="utf-8")
    except OSError as exc:
        log.warning("could not write the start note of recording %s: %s", wav, exc)


def remove_sidecar(wav: Path) -> None:
    """The recording ended normally (its row carries everything): drop the note."""
    try:
        sidecar_path(wav).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the start note of recording %s: %s", wav, exc)


def _read_sidecar(wav: Path) -> dict[str, object]:
    try:
        data = json.loads(sidecar_path(wav).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("start note of recording %s unreadable (%s); using the file's times",
                    wav, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _default_repair() -> Repair:
    # The same header rule the recorder writes with (agent_desktop.wav is pure Python and
    # shared with sip/recorder.py), so a file fixed here matches one fixed by the engine.
    from agent_desktop.wav import repair_wav_header

    return repair_wav_header


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _seconds_between(start_iso: str, end_iso: str) -> float:
    try:
        return max(0.0, (datetime.fromisoformat(end_iso)
                         - datetime.fromisoformat(start_iso)).total_seconds())
    except ValueError:
        return 0.0


def _inspect(path: Path, repair: Repair, start_iso: str = "") -> _FileFacts | None:
    """Repair the header, then hash and measure; None (logged) if the file is unusable.

    Without a known start, the start is the last write minus the audio's length."""
    try:
        mtime = path.stat().st_mtime  # before the repair rewrites the header
        if repair(path):
            log.warning("recording %s: header repaired after an interrupted call", path)
        with wave.open(str(path), "rb") as w:
            duration = w.getnframes() / float(w.getframerate() or 1)
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                h.update(chunk)
        return _FileFacts(h.hexdigest(), round(duration, 3), path.stat().st_size,
                          _iso(mtime), start_iso or _iso(mtime - duration))
    except (OSError, ValueError, EOFError, wave.Error) as exc:
        log.error("recording %s of an interrupted call cannot be used: %s", path, exc)
        return None


def recover_interrupted_calls(db: Database, recordings_dir: Path | None, *,
                              exclude_log_ids: Collection[int] = (),
                              repair: Repair | None = None) -> list[int]:
    """Finalise every open CallLog / unfinished Recording not in `exclude_log_ids`, and
    adopt recordings no row names (see the module text).

    Returns the CallLog ids that were finalised or created (empty on a clean start). Call
    it once at start-up, before any call is placed; with calls live in this process, pass
    their ids (recent WAVs that may be theirs are then left for the next start)."""
    repair = repair or _default_repair()
    done: list[int] = []
    with db.transaction() as s:
        open_rows = s.scalars(select(CallLog).where(CallLog.state.in_(OPEN_STATES))).all()
        stale_recs = s.scalars(select(Recording).where(Recording.state == "recording")).all()
        by_log: dict[int, list[Recording]] = {}
        for rec in stale_recs:
            if rec.call_log_id not in exclude_log_ids:
                by_log.setdefault(rec.call_log_id, []).append(rec)
        facts: dict[int, list[_FileFacts]] = {}
        for log_id, recs in by_log.items():
            for rec in recs:
                got = _finish_recording(rec, recordings_dir, repair)
                if got is not None:
                    facts.setdefault(log_id, []).append(got)
        adopted, created = _adopt_orphans(s, recordings_dir, repair, exclude_log_ids)
        for log_id, got_list in adopted.items():
            facts.setdefault(log_id, []).extend(got_list)
        for row in open_rows:
            if row.id in exclude_log_ids:
                continue
            _finish_call(row, facts.get(row.id, []))
            done.append(row.id)
        done += created
    if done or by_log or adopted:
        log.warning("recovered %d interrupted calls %s, %d unfinished recordings and %d "
                    "recordings without a row", len(done), done,
                    sum(len(v) for v in by_log.values()),
                    sum(len(v) for v in adopted.values()))
    return done


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours to signal
        return True
    return True


def _maybe_live(wav: Path, note: dict[str, object], live_calls: bool) -> bool:
    """Could a call still going on (here or in another running process) own this file?"""
    try:
        if time.time() - wav.stat().st_mtime > LIVE_WINDOW_S:
            return False
    except OSError:
        return False
    pid = note.get("pid")
    if isinstance(pid, int):
        return pid == os.getpid() or _pid_alive(pid)
    return live_calls


def _orphan_wavs(s: Session, root: Path) -> list[Path]:
    """WAVs under `root` whose file name no Recording row carries. By name, not by path:
    names are unique (time stamp + random part), and a row stored with a path from a data
    folder that has since moved must not make its file look orphaned."""
    known = {Path(stored).name for (stored,) in s.execute(select(Recording.path))}
    return [w for w in sorted(root.rglob("*.wav")) if w.name not in known]


def _adopt_orphans(s: Session, recordings_dir: Path | None, repair: Repair,
                   exclude_log_ids: Collection[int]) -> tuple[dict[int, list[_FileFacts]],
                                                              list[int]]:
    """Give every WAV no row names a Recording row linked to its call (or a new,
    interrupted CallLog). Returns ({call log id: facts of adopted files}, created ids)."""
    adopted: dict[int, list[_FileFacts]] = {}
    created: list[int] = []
    if recordings_dir is None or not recordings_dir.is_dir():
        return adopted, created
    root = recordings_dir.resolve()
    for wav in _orphan_wavs(s, root):
        note = _read_sidecar(wav)
        if _maybe_live(wav, note, bool(exclude_log_ids)):
            log.info("recording %s may belong to a call still going on; left for later", wav)
            continue
        started = note.get("started_at")
        got = _inspect(wav, repair, started if isinstance(started, str) else "")
        if got is None:
            continue  # not a WAV of ours (logged): never adopted, never touched again
        call = _call_at(s, got.start_iso, exclude_log_ids)
        if call is None:
            call = _interrupted_call_for(got)
            s.add(call)
            s.flush()
            created.append(call.id)
        rel = wav.relative_to(root)
        s.add(Recording(call_log_id=call.id, path=str(rel), state="repaired",
                        sha256=got.sha256, duration_s=got.duration_s,
                        size_bytes=got.size_bytes, started_at=got.start_iso))
        s.flush()
        adopted.setdefault(call.id, []).append(got)
        log.warning("recording %s had no row (the app stopped as it started); linked to "
                    "call log %d%s", rel, call.id, " (created)" if call.id in created else "")
        remove_sidecar(wav)
    for note_file in sorted(root.rglob("*.wav" + SIDECAR_SUFFIX)):
        wav = note_file.with_name(note_file.name[: -len(SIDECAR_SUFFIX)])
        if not wav.exists():  # killed between the note and the WAV: nothing to keep
            note_file.unlink(missing_ok=True)
    return adopted, created


def _call_at(s: Session, start_iso: str, exclude_log_ids: Collection[int]) -> CallLog | None:
    """The latest call without a recording that started before `start_iso` (plus slack)
    and had not ended before it."""
    try:
        start = datetime.fromisoformat(start_iso)
    except ValueError:
        return None
    upper = (start + MATCH_SLACK).isoformat(timespec="milliseconds")
    lower = (start - MATCH_SLACK).isoformat(timespec="milliseconds")
    has_rec = exists().where(Recording.call_log_id == CallLog.id)
    stmt = (select(CallLog).where(CallLog.deleted_at.is_(None), ~has_rec,
                                  CallLog.started_at <= upper,
                                  (CallLog.ended_at.is_(None)) | (CallLog.ended_at >= lower))
            .order_by(CallLog.started_at.desc(), CallLog.id.desc()))
    if exclude_log_ids:
        stmt = stmt.where(CallLog.id.not_in(list(exclude_log_ids)))
    return s.scalars(stmt.limit(1)).first()


def _interrupted_call_for(got: _FileFacts) -> CallLog:
    """A CallLog for a recording whose call left no row. Outbound: an incoming call's row
    is written while it rings, long before any audio; answered, because audio flowed."""
    return CallLog(direction="out", number="", state="ended", started_at=got.start_iso,
                   answered_at=got.start_iso, ended_at=max(got.mtime_iso, got.start_iso),
                   outcome="answered", talk_seconds=got.duration_s, sip_code=None,
                   sip_reason=INTERRUPTED_REPAIRED_REASON)


def _finish_recording(rec: Recording, recordings_dir: Path | None,
                      repair: Repair) -> _FileFacts | None:
    path = Path(rec.path)
    if not path.is_absolute() and recordings_dir is not None:
        path = recordings_dir / path
    got = _inspect(path, repair) if path.is_file() else None
    if got is None:
        if not path.is_file():
            log.error("recording %s of call log %d is missing; marked missing", path,
                      rec.call_log_id)
        rec.state = "missing"
        return None
    rec.state = "repaired"
    rec.sha256 = got.sha256
    rec.duration_s = got.duration_s
    rec.size_bytes = got.size_bytes
    remove_sidecar(path)
    return _FileFacts(got.sha256, got.duration_s, got.size_bytes, got.mtime_iso,
                      rec.started_at or got.start_iso)


def _finish_call(row: CallLog, files: list[_FileFacts]) -> None:
    heard = [f for f in files if f.duration_s > 0]
    if not row.answered_at and heard:
        # The connected state is written 100 ms after the fact; media flowed, so the
        # customer was on the line (see the module text).
        row.answered_at = max(row.started_at, min(f.start_iso or f.mtime_iso for f in heard))
        log.info("call log %d: answered at %s, from its recording", row.id, row.answered_at)
    candidates = [t for t in (row.started_at, row.answered_at, row.updated_at) if t]
    candidates += [f.mtime_iso for f in files]
    ended = max(candidates)
    if row.answered_at:
        row.outcome = "answered"
        row.talk_seconds = (max(f.duration_s for f in files) if files
                            else round(_seconds_between(row.answered_at, ended), 3))
    else:
        row.outcome = "failed"
        row.talk_seconds = 0.0
    row.state = "ended"
    row.ended_at = ended
    row.sip_code = None
    row.sip_reason = INTERRUPTED_REASON
    log.info("call log %d (%s %s) finalised after interruption: %s, ended %s, talk %.1f s",
             row.id, row.direction, row.number, row.outcome, ended, row.talk_seconds)
