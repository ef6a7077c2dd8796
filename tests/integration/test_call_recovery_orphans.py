"""kill -9 of the real app after a recording's WAV was created but before its Recording row
was written: the next start links the repaired file to its call (agent_desktop.call_recovery).

The worker (`python -m tests.integration.test_call_recovery_orphans worker …`) is the real
thing: our pjsua2 SipEngine with the stereo recorder and CallService, dialling the
simulated line. Its first slot on `recording_started` — connected before the CallService's,
so it runs first — prints the file's path and then holds the GUI thread, exactly where a
kill leaves no row: the call service never sees the signal. pjmedia's clock thread and
the recorder's writer thread go on writing audio meanwhile. The test SIGKILLs it once the
file holds more than half a second of audio.
"""

from __future__ import annotations

import hashlib
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_desktop.call_recovery import INTERRUPTED_REASON, recover_interrupted_calls, sidecar_path
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Outbox, Recording
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
    child = CallChild.start(argv)

    def hold_here(_call_id: int, path: str) -> None:
        say(f"WAV {path}")
        time.sleep(60)  # the test kills us in here, before the row is written

    child.engine.recording_started.connect(hold_here)  # before CallService connects its slot
    log_id = child.call_service().dial(None, child.uri)
    say(f"CALLLOG {log_id}")
    return child.run()


@pytest.fixture
def line() -> Iterator[SimLine]:
    yield from line_for_killed_app()


def run_and_kill(tmp_path: Path, uri: str) -> tuple[int, Path]:
    """Start the worker; SIGKILL it once its row-less WAV holds > 0.5 s of audio."""

    def grown(line: str) -> bool:
        if not line.startswith("WAV "):
            return False
        wav = Path(line[4:])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
                not wav.exists() or wav.stat().st_size < 44 + 16000 * 4 // 2):
            time.sleep(0.05)
        return True

    seen = run_until_killed("tests.integration.test_call_recovery_orphans", tmp_path, uri,
                            grown)
    log_ids = [int(ln.split()[1]) for ln in seen if ln.startswith("CALLLOG ")]
    assert log_ids and seen[-1].startswith("WAV "), "\n".join(seen)
    return log_ids[0], Path(seen[-1][4:])


def test_recording_killed_before_its_row_is_linked_to_its_call(tmp_path: Path,
                                                              line: SimLine) -> None:
    (tmp_path / "rec").mkdir()
    log_id, wav = run_and_kill(tmp_path, line.uri("answer"))
    line.wait_line(r"^END 1 ", 15)  # the line timed out the dead app's call

    db = Database.open(tmp_path / "agent.sqlite3")
    try:
        with db.session() as s:
            assert s.query(Recording).count() == 0, "the kill was meant to land before the row"
            assert s.get(CallLog, log_id).state == "dialing"  # type: ignore[union-attr]
        assert sidecar_path(wav).exists(), "the recorder notes the start before the WAV"

        assert recover_interrupted_calls(db, tmp_path / "rec") == [log_id]
        assert recover_interrupted_calls(db, tmp_path / "rec") == []  # idempotent

        with db.session() as s:
            row = s.get(CallLog, log_id)
            assert row is not None
            (rec,) = s.query(Recording).all()
            assert rec.call_log_id == log_id and rec.path == wav.name
            assert rec.state == "repaired"
            assert rec.sha256 == hashlib.sha256(wav.read_bytes()).hexdigest()
            assert rec.size_bytes == wav.stat().st_size
            with wave.open(str(wav)) as w:  # playable to its end: header repaired
                assert (w.getnchannels(), w.getframerate()) == (2, 16000)
                seconds = w.getnframes() / w.getframerate()
                assert len(w.readframes(w.getnframes())) == w.getnframes() * 4
            assert seconds >= 0.5
            assert rec.duration_s == pytest.approx(seconds, abs=0.001)
            assert (row.state, row.outcome, row.sip_reason) == ("ended", "answered",
                                                                 INTERRUPTED_REASON)
            assert row.answered_at is not None and row.ended_at is not None
            assert row.started_at <= row.answered_at <= row.ended_at
            assert row.talk_seconds == pytest.approx(seconds, abs=0.001)
            assert s.query(Outbox).filter_by(entity="recording",
                                             entity_uuid=rec.uuid).count() == 1
        assert not sidecar_path(wav).exists()
    finally:
        db.close()


if __name__ == "__main__":  # pragma: no cover
    worker_main(worker)
