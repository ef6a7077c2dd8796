"""The embedded default: a sync server on loopback next to the desktop app (issue 5 item 7).

It runs as a child process (`python -m sync.server.embedded … serve …`), not a thread in
the GUI process: the server's request handling would otherwise compete with the GUI for
the GIL, and a crash of either stays contained. The database is a SQLite file in the app's
data folder, served by one process (one desktop's traffic: each extra worker would only
cost start-up time and memory); demo accounts are created (idempotently) with passwords
the caller chooses — the app keeps them in the keyring, never in a file.

The server never outlives the app, however the app ends (quit, crash, SIGKILL): it holds
the read end of a pipe (the *lifeline*) whose only write end lives in the app; the kernel
closes that end when the app's process ends, the server reads end-of-file and stops
itself (SIGTERM to itself: uvicorn's graceful shutdown; a hard exit if that hangs).
PR_SET_PDEATHSIG was not enough: it fires when the *thread* that forked the child ends,
and the app starts the server from a short-lived thread (measured: the child got SIGTERM
as soon as that thread returned). Before this, a test's app that quit while the server
was still being seeded left a server running for 46 minutes: `stop()` found no process
yet, and the start went on after it. `stop()` now also cancels a start in progress or to
come on the same instance.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sync.server.admin import demo_seed
from sync.server.db import ServerDatabase

# Named, not __name__: the child runs this module as __main__ and its log lines should
# still say where they come from.
log = logging.getLogger("sync.server.embedded")

# After the lifeline breaks: how long uvicorn may take to shut down before a hard exit.
LIFELINE_GRACE_S = 10.0


class EmbeddedServerError(RuntimeError):
    """The embedded server could not start; `str()` says why in plain words."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    """One embedded server process. `stop()` is final for the instance: it stops the
    process and cancels a `start()` running on another thread (or called later); to run
    the server again, make a new instance (it only holds paths)."""

    def __init__(self, data_dir: Path, port: int | None = None,
                 python: str = sys.executable) -> None:
        self.data_dir = data_dir
        self.port = port or _free_port()
        self.python = python
        self.db_url = f"sqlite:///{data_dir / 'server.db'}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._lifeline: int | None = None  # write end of the lifeline pipe (see module)

    @property
    def stopped(self) -> bool:
        """True once `stop()` was called: a failed start is then the app closing, not an
        error to show."""
        return self._stopped

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def seed_demo(self, agent_password: str, lead_password: str, customers: int = 0) -> int:
        """Create team `demo` with users `agent` and `lead` (kept if they exist) and, if
        asked, the same demo customers the desktop generates. Returns rows added."""
        from sync.server.__main__ import demo_customer_rows

        self.data_dir.mkdir(parents=True, exist_ok=True)
        db = ServerDatabase(self.db_url)
        try:
            db.migrate()
            rows = demo_customer_rows(customers) if customers else []
            return demo_seed(db, agent_password, lead_password, rows).customers
        finally:
            db.dispose()

    def command(self, lifeline_fd: int) -> list[str]:
        """The child's command line: the lifeline watch, then the server's own `serve`."""
        return [self.python, "-m", "sync.server.embedded", "--lifeline-fd", str(lifeline_fd),
                "--", "--db", self.db_url, "--log-level", "info", "serve",
                "--recordings", str(self.data_dir / "server-recordings"),
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]

    def start(self, timeout_s: float = 90.0) -> str:
        """Start the process and wait until it answers /health; returns its URL."""
        import httpx  # here, not at module level: the child process does not need it

        self.data_dir.mkdir(parents=True, exist_ok=True)
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        with self._lock:
            self._check_not_stopped()
            read_fd, write_fd = os.pipe()  # both close-on-exec: no other child inherits them
            try:
                with (self.data_dir / "server.log").open("ab") as log_file:
                    self.proc = subprocess.Popen(
                        self.command(read_fd), pass_fds=(read_fd,), stdin=subprocess.DEVNULL,
                        stdout=log_file, stderr=subprocess.STDOUT, env=env)
            except BaseException:
                os.close(write_fd)
                raise
            finally:
                os.close(read_fd)  # the child has its copy
            self._lifeline = write_fd
            proc = self.proc
        log.info("embedded sync server starting on %s (pid %d)", self.url, proc.pid)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._stopped:
                self.stop()
                raise EmbeddedServerError("The local sync server was not started: Agent "
                                          "Desktop is closing.")
            if proc.poll() is not None:
                self._close_lifeline()
                raise EmbeddedServerError(
                    f"The local sync server stopped at start (exit code {proc.returncode});"
                    f" see {self.data_dir / 'server.log'}.")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    log.info("embedded sync server on %s (pid %d)", self.url, proc.pid)
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise EmbeddedServerError(f"The local sync server did not answer within {timeout_s:.0f}"
                                  f" s; see {self.data_dir / 'server.log'}.")

    def _check_not_stopped(self) -> None:
        if self._stopped:
            raise EmbeddedServerError("The local sync server was not started: Agent Desktop "
                                      "is closing.")

    def _close_lifeline(self) -> None:
        with self._lock:
            fd, self._lifeline = self._lifeline, None
        if fd is not None:
            os.close(fd)

    def stop(self) -> None:
        """Stop the server by its PID (SIGTERM, SIGKILL after 10 s) and cancel any start."""
        with self._lock:
            self._stopped = True
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("embedded sync server pid %d did not stop in 10 s; killing it",
                            proc.pid)
                proc.kill()
                proc.wait()
        self._close_lifeline()


# -- the child process -------------------------------------------------------------------------

def watch_lifeline(fd: int, grace_s: float = LIFELINE_GRACE_S) -> threading.Thread:
    """Stop this process when `fd` (the lifeline's read end) reads end-of-file, i.e. when
    the process holding the write end has ended, however it ended."""

    def watch() -> None:
        while True:
            try:
                if not os.read(fd, 1):
                    break
            except InterruptedError:
                continue
            except OSError as exc:
                log.warning("lifeline unreadable (%s): stopping", exc)
                break
        log.warning("the app that started this server is gone: stopping (pid %d)",
                    os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down gracefully
        time.sleep(grace_s)
        log.error("no graceful shutdown within %.0f s: exiting now", grace_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="lifeline", daemon=True)
    thread.start()
    return thread


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sync.server.embedded --lifeline-fd N -- <agent-desktop-server args>`."""
    ap = argparse.ArgumentParser(
        prog="python -m sync.server.embedded",
        description="The sync server as the desktop app runs it: stops when the app is gone.")
    ap.add_argument("--lifeline-fd", type=int, required=True, metavar="FD",
                    help="read end of a pipe whose write end only the app holds")
    ap.add_argument("server_args", nargs=argparse.REMAINDER,
                    help="-- then the arguments of agent-desktop-server")
    args = ap.parse_args(argv)
    rest = list(args.server_args)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    try:
        os.fstat(args.lifeline_fd)
    except OSError:
        ap.error(f"--lifeline-fd {args.lifeline_fd} is not an open file descriptor")
    watch_lifeline(args.lifeline_fd)
    from sync.server.__main__ import main as server_main

    return server_main(rest)


if __name__ == "__main__":
    sys.exit(main())
