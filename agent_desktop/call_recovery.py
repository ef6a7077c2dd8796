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
"""

from __future__ import annotations

import hashlib
import logging
import wave
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Recording

log = logging.getLogger(__name__)

INTERRUPTED_REASON = "Interrupted: the app stopped during the call"
OPEN_STATES = ("dialing", "ringing", "connected")

Repair = Callable[[Path], bool]


@dataclass(frozen=True)
class _FileFacts:
    sha256: str
    duration_s: float
    size_bytes: int
    mtime_iso: str


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


def _inspect(path: Path, repair: Repair) -> _FileFacts | None:
    """Repair the header, then hash and measure; None (logged) if the file is unusable."""
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
                          _iso(mtime))
    except (OSError, ValueError, EOFError, wave.Error) as exc:
        log.error("recording %s of an interrupted call cannot be used: %s", path, exc)
        return None


def recover_interrupted_calls(db: Database, recordings_dir: Path | None, *,
                              exclude_log_ids: Collection[int] = (),
                              repair: Repair | None = None) -> list[int]:
    """Finalise every open CallLog / unfinished Recording not in `exclude_log_ids`.

    Returns the CallLog ids that were finalised (empty on a clean start). Call it once at
    start-up, before any call is placed."""
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
        for row in open_rows:
            if row.id in exclude_log_ids:
                continue
            _finish_call(row, facts.get(row.id, []))
            done.append(row.id)
    if done or by_log:
        log.warning("recovered %d interrupted calls %s and %d unfinished recordings",
                    len(done), done, sum(len(v) for v in by_log.values()))
    return done


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
    return got


def _finish_call(row: CallLog, files: list[_FileFacts]) -> None:
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
