"""A real app process dialling the simulated line, to be SIGKILLed mid-call (kill -9
recovery tests: tests/integration/test_sip_interrupted.py, test_call_recovery_orphans.py).

Child side (`CallChild`): the real call stack of the app — our pjsua2 SipEngine with the
stereo recorder, CallService, the store — in a Qt event loop, reporting what happened
as stdout lines (`say`). Its test module runs it as `python -m <module> worker --db …
--rec … --uri …` and adds only what differs (where it reports, what it holds).

Parent side (`run_until_killed`): starts that child in its own session, reads its lines,
SIGKILLs it at the moment the test chooses, checks it died of that signal, and never
leaves it running (its process group is killed on any failure).

Why a child process: SIGKILL must hit a whole app — pjsua2's media threads, the recorder
thread, the database connection — exactly as a crash or `kill -9` would; pjsua2 also allows
one Endpoint per process.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.integration.rig.simline import SimLine

if TYPE_CHECKING:  # the parent never imports pjsua2 or Qt for these
    from PySide6.QtCore import QCoreApplication

    from agent_desktop.calls import CallService
    from agent_desktop.store.db import Database
    from sip.engine import SipEngine

REPO = Path(__file__).resolve().parents[3]
KILL_WAIT_S = 20


def say(line: str) -> None:
    """One unbuffered stdout line: the child may be killed right after writing it."""
    os.write(1, (line + "\n").encode())


class _NoCallers:
    """Caller ID that knows nobody: these calls go out to the simulated line."""

    def caller_id(self, number: str) -> int | None:
        return None


@dataclass
class CallChild:
    """The app's call stack in the child process, started and ready to dial."""

    app: QCoreApplication
    db: Database
    engine: SipEngine
    recordings: Path
    uri: str

    @classmethod
    def start(cls, argv: list[str]) -> CallChild:  # pragma: no cover - in the child
        from PySide6.QtCore import QCoreApplication

        from agent_desktop.store.db import Database
        from sip.config import SipConfig
        from sip.engine import SipEngine
        from sip.recorder import StereoRecorder

        p = argparse.ArgumentParser()
        p.add_argument("--db", type=Path, required=True)
        p.add_argument("--rec", type=Path, required=True)
        p.add_argument("--uri", required=True)
        args = p.parse_args(argv)
        app = QCoreApplication([])
        db = Database.open(args.db)
        engine = SipEngine(SipConfig(bind_address="127.0.0.1", recordings_dir=args.rec),
                           recorder_factory=StereoRecorder)
        engine.start()
        return cls(app, db, engine, args.rec, args.uri)

    def call_service(self) -> CallService:  # pragma: no cover - in the child
        """The CallService (created separately: a test may connect engine slots first)."""
        from agent_desktop.calls import CallService
        from agent_desktop.dialplan import DialPlan
        from agent_desktop.phones import PhoneNormalizer

        return CallService(self.db, self.engine, DialPlan(PhoneNormalizer("CN"), ""),
                           _NoCallers(), recordings_dir=self.recordings)

    def run(self) -> int:  # pragma: no cover - in the child
        """The event loop, until the test kills us (30 s at most); 1: we were not killed."""
        from PySide6.QtCore import QTimer

        QTimer.singleShot(30_000, self.app.quit)
        self.app.exec()
        return 1


def worker_main(worker: Callable[[list[str]], int]) -> None:  # pragma: no cover
    """`if __name__ == "__main__"` of a test module: run its worker when asked to."""
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(worker(sys.argv[2:]))


def line_for_killed_app() -> Iterator[SimLine]:
    """Body of a `line` fixture: a simulated line that notices a dead caller quickly
    (2 s without media) and must itself exit cleanly at teardown."""
    peer = SimLine(ring_ms=100, media_timeout_s=2)
    yield peer
    assert peer.stop() == 0, "\n".join(peer.lines[-30:])


def run_until_killed(module: str, tmp_path: Path, uri: str,
                     kill_at: Callable[[str], bool]) -> list[str]:
    """Run `python -m module worker` against `uri` with its store and recordings in
    `tmp_path` (agent.sqlite3, rec/); SIGKILL it after the first line for which
    `kill_at(line)` is true (which may wait for something first). Returns its lines,
    the killing one last."""
    cmd = [sys.executable, "-m", module, "worker", "--db", str(tmp_path / "agent.sqlite3"),
           "--rec", str(tmp_path / "rec"), "--uri", uri]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        for raw in proc.stdout:
            seen.append(raw.decode(errors="replace").rstrip())
            if kill_at(seen[-1]):
                os.kill(proc.pid, signal.SIGKILL)
                break
        assert proc.wait(KILL_WAIT_S) == -signal.SIGKILL, "\n".join(seen)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        proc.stdout.close()
    return seen
