"""kill -9 of the real app mid-call: the simulated line hangs up by itself, and at the next
start the call log and its recording are finalised (agent_desktop.call_recovery).

The worker (`python -m tests.integration.test_sip_interrupted worker …`) is the real
thing: our pjsua2 SipEngine with the stereo recorder and CallService, dialling the
simulated line, printing `CONNECTED`/`RINGING` once that state is committed to the DB and
`TALKING` once the recording has grown. The test SIGKILLs it there.
"""

from __future__ import annotations

import hashlib
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_desktop.call_recovery import INTERRUPTED_REASON, recover_interrupted_calls
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Recording
from tests.integration.rig.killed_call import (
    CallChild,
    line_for_killed_app,
    run_until_killed,
    say,
    worker_main,
)
from tests.integration.rig.simline import SimLine

pytestmark = pytest.mark.integration


def worker(argv: list[str]) -> int:  # pragma: no cover - runs in the child process
    from PySide6.QtCore import QTimer

    child = CallChild.start(argv)
    db, engine = child.db, child.engine
    calls = child.call_service()
    recording: list[Path] = []
    engine.recording_started.connect(lambda _c, path: recording.append(Path(path)))

    def committed(log_id: int, state: str) -> bool:
        with db.session() as s:
            row = s.get(CallLog, log_id)
            return row is not None and row.state == state

    def tick() -> None:
        lid = log_id
        if committed(lid, "connected") and recording and recording[0].exists() and \
                recording[0].stat().st_size > 64_000:  # > 0.5 s of 16 kHz stereo
            say(f"TALKING {lid}")
        elif committed(lid, "ringing"):
            say(f"RINGING {lid}")

    calls.call_state.connect(lambda lid, st: say(f"STATE {lid} {st}"))
    log_id = calls.dial(None, child.uri)
    say(f"CALLLOG {log_id}")
    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(100)
    return child.run()


@pytest.fixture
def line() -> Iterator[SimLine]:
    yield from line_for_killed_app()


def run_and_kill(tmp_path: Path, uri: str, until: str) -> int:
    """Start the worker, SIGKILL it at its first `until` line; returns the CallLog id."""
    seen = run_until_killed("tests.integration.test_sip_interrupted", tmp_path, uri,
                            lambda line: line.startswith(until))
    return int(seen[-1].split()[1])


def test_killed_mid_call_is_finalised_with_its_recording(tmp_path: Path,
                                                           line: SimLine) -> None:
    (tmp_path / "rec").mkdir()
    log_id = run_and_kill(tmp_path, line.uri("answer"), "TALKING")
    # The line notices the silence of the dead app and ends its side of the call.
    line.wait_line(r"^TIMEOUT 1$", 15)
    line.wait_line(r"^END 1 ", 15)

    db = Database.open(tmp_path / "agent.sqlite3")
    try:
        with db.session() as s:
            assert s.get(CallLog, log_id).state == "connected"  # type: ignore[union-attr]
        assert recover_interrupted_calls(db, tmp_path / "rec") == [log_id]
        assert recover_interrupted_calls(db, tmp_path / "rec") == []  # idempotent
        with db.session() as s:
            row = s.get(CallLog, log_id)
            assert row is not None
            (rec,) = s.query(Recording).filter_by(call_log_id=log_id).all()
            assert (row.state, row.outcome, row.sip_reason) == ("ended", "answered",
                                                                 INTERRUPTED_REASON)
            assert row.ended_at is not None and row.answered_at is not None
            assert row.ended_at >= row.answered_at
            path = tmp_path / "rec" / rec.path
            assert rec.state == "repaired"
            assert rec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
            assert rec.size_bytes == path.stat().st_size
            with wave.open(str(path)) as w:  # playable: the header matches the data
                assert w.getnchannels() == 2
                seconds = w.getnframes() / w.getframerate()
            assert seconds >= 0.5
            assert rec.duration_s == pytest.approx(seconds, abs=0.001)
            assert row.talk_seconds == pytest.approx(seconds, abs=0.001)
    finally:
        db.close()


def test_killed_while_ringing_is_a_failed_call(tmp_path: Path, line: SimLine) -> None:
    (tmp_path / "rec").mkdir()
    log_id = run_and_kill(tmp_path, line.uri("noanswer"), "RINGING")
    db = Database.open(tmp_path / "agent.sqlite3")
    try:
        assert recover_interrupted_calls(db, tmp_path / "rec") == [log_id]
        with db.session() as s:
            row = s.get(CallLog, log_id)
            assert row is not None
            assert (row.state, row.outcome, row.talk_seconds, row.answered_at) == (
                "ended", "failed", 0.0, None)
            assert row.ended_at is not None and row.ended_at >= row.started_at
    finally:
        db.close()


if __name__ == "__main__":  # pragma: no cover
    worker_main(worker)
