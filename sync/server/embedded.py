"""The embedded default: a sync server on loopback next to the desktop app (issue 5 item 7).

It runs as a child process (`python -m sync.server serve`), not a thread in the GUI
process: the server's request handling would otherwise compete with the GUI for the GIL,
and a crash of either stays contained. The database is a SQLite file in the app's data
folder, served by one process (one desktop's traffic: each extra worker would only cost
start-up time and memory); demo accounts are created (idempotently) with passwords the
caller chooses — the app keeps them in the keyring, never in a file.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sync.server.admin import demo_seed
from sync.server.db import ServerDatabase

log = logging.getLogger(__name__)


class EmbeddedServerError(RuntimeError):
    """The embedded server could not start; `str()` says why in plain words."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    def __init__(self, data_dir: Path, port: int | None = None,
                 python: str = sys.executable) -> None:
        self.data_dir = data_dir
        self.port = port or _free_port()
        self.python = python
        self.db_url = f"sqlite:///{data_dir / 'server.db'}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def start(self, timeout_s: float = 90.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_file = (self.data_dir / "server.log").open("ab")
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [self.python, "-m", "sync.server", "--db", self.db_url, "--log-level", "info",
             "serve", "--recordings", str(self.data_dir / "server-recordings"),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=log_file, stderr=subprocess.STDOUT, env=env)
        log_file.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmbeddedServerError(
                    f"The local sync server stopped at start (exit code {self.proc.returncode});"
                    f" see {self.data_dir / 'server.log'}.")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    log.info("embedded sync server on %s", self.url)
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise EmbeddedServerError(f"The local sync server did not answer within {timeout_s:.0f}"
                                  f" s; see {self.data_dir / 'server.log'}.")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("embedded sync server did not stop in 10 s; killing it")
            self.proc.kill()
            self.proc.wait()
