"""Real processes for server tests: a temporary PostgreSQL cluster, the sync server under
uvicorn on a loopback port, and a small HTTP client speaking docs/sync-protocol.md.

Reusable by benchmarks and by the sync client's own integration tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid as uuid_mod
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

REPO = Path(__file__).resolve().parents[3]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SCHEMA = {"X-Schema-Version": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # still starting
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready: {last}")


class PgCluster:
    """initdb into a temp folder, run `postgres` on a loopback port, stop it by PID.

    PostgreSQL refuses to run as root, so under root (CI containers) the server runs as the
    `postgres` system user that Debian's package creates.
    """

    def __init__(self, root: Path | None = None) -> None:
        # Under root the cluster lives in its own /tmp folder owned by `postgres`: pytest's
        # tmp folders are private to root and postgres could not enter them.
        self._own_root = root is None
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="adpg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run_as(self) -> dict[str, Any]:
        return {"user": self._user, "group": self._user} if self._user else {}

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user:
            shutil.chown(self.root, self._user, self._user)
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"],
                       check=True, capture_output=True, **self._run_as())
        self.log = (self.root / "postgres.log").open("wb")
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-k", str(self.root),
             "-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "max_connections=300"],
            stdout=self.log, stderr=subprocess.STDOUT, **self._run_as())
        _wait(self._ready, "PostgreSQL")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"postgres exited: {(self.root / 'postgres.log').read_text()}")
        with psycopg.connect(self.admin_dsn, connect_timeout=2):
            return True

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM = smart shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)


class ServerProcess:
    """`python -m sync.server serve` on a free loopback port.

    One worker process unless `extra` says `--workers N`: spawning a worker per CPU for
    every test module's server doubled start-up on a loaded machine, and the worker pool
    has its own tests (test_server_workers.py)."""

    def __init__(self, db_url: str, recordings: Path, log_path: Path,
                 extra: list[str] | None = None) -> None:
        self.db_url = db_url
        self.recordings = recordings
        self.log_path = log_path
        self.extra = extra or []
        if "--workers" not in self.extra:
            self.extra = [*self.extra, "--workers", "1"]
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync.server", "--db", self.db_url, "--log-level", "info",
             "serve", "--recordings", str(self.recordings), "--host", "127.0.0.1",
             "--port", str(self.port), *self.extra],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        _wait(self._ready, "sync server")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
        return httpx.get(self.url + "/health", timeout=2).status_code == 200

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with suppress(Exception):
            self._log.close()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the server and its worker processes so far."""
        assert self.proc is not None
        total = 0.0
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return total
        for proc in procs:
            with suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
        return total

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def mutation(mid: int, entity: str, uuid: str, fields: dict[str, Any], op: str = "upsert",
             base: int = 0, schema: int = 1) -> dict[str, Any]:
    return {"mutation_id": mid, "entity": entity, "entity_uuid": uuid, "op": op,
            "changed_fields": fields, "base_version": base, "schema_version": schema}


def new_uuid() -> str:
    return str(uuid_mod.uuid4())


@dataclass
class Replica:
    """What a client would hold after applying pulls: uuid → (entity, data, version)."""

    rows: dict[str, tuple[str, dict[str, Any], int]] = field(default_factory=dict)
    cursor: str | None = None
    pages: int = 0
    removed: set[str] = field(default_factory=set)

    def apply(self, page: dict[str, Any]) -> None:
        for ch in page["changes"]:
            if ch["op"] == "remove":
                self.rows.pop(ch["uuid"], None)
                self.removed.add(ch["uuid"])
                for k in [k for k, v in self.rows.items()
                          if v[1].get("customer_uuid") == ch["uuid"]]:
                    self.rows.pop(k)
            else:
                self.rows[ch["uuid"]] = (ch["entity"], ch["data"], ch["version"])
        self.cursor = page["next_cursor"]
        self.pages += 1

    def live(self, entity: str | None = None) -> dict[str, dict[str, Any]]:
        return {k: v[1] for k, v in self.rows.items()
                if not v[1].get("deleted_at") and (entity is None or v[0] == entity)}


OPEN_APIS: list[Api] = []  # closed after each test by the conftest


class Api:
    """A signed-in user talking to the server over real HTTP."""

    def __init__(self, base_url: str, username: str, password: str,
                 client_id: str | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        OPEN_APIS.append(self)
        self.username = username
        self.client_id = client_id or new_uuid()
        self.next_mid = 1
        r = self.http.post("/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        self.tokens = r.json()
        self.replica = Replica()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}", **SCHEMA}

    def close(self) -> None:
        self.http.close()

    def push_raw(self, mutations: list[dict[str, Any]], client_id: str | None = None,
                 **kw: Any) -> httpx.Response:
        body = {"client_id": client_id or self.client_id, "schema_version": 1,
                "mutations": mutations}
        return self.http.post("/sync/push", json=body, headers=kw.pop("headers", self.headers),
                              **kw)

    def push(self, *changes: tuple[str, str, dict[str, Any]] | tuple[str, str, dict[str, Any],
                                                                        str, int]
             ) -> list[dict[str, Any]]:
        """(entity, uuid, fields[, op, base]) each; returns the per-mutation results."""
        muts = []
        for ch in changes:
            entity, uuid, fields = ch[0], ch[1], ch[2]
            op = ch[3] if len(ch) > 3 else "upsert"
            base = ch[4] if len(ch) > 4 else 0
            muts.append(mutation(self.next_mid, entity, uuid, fields, op, base))
            self.next_mid += 1
        r = self.push_raw(muts)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["last_mutation_id"] == self.next_mid - 1
        return list(body["results"])

    def pull_raw(self, cursor: str | None = None, limit: int | None = None,
                 client_id: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"client_id": client_id or self.client_id,
                                "schema_version": 1, "cursor": cursor}
        if limit:
            body["limit"] = limit
        return self.http.post("/sync/pull", json=body, headers=self.headers)

    def sync_down(self, limit: int | None = None, max_pages: int = 10_000) -> Replica:
        for _ in range(max_pages):
            r = self.pull_raw(self.replica.cursor, limit)
            assert r.status_code == 200, r.text
            page = r.json()
            assert not page["reset_required"]
            self.replica.apply(page)
            if not page["has_more"]:
                return self.replica
        raise AssertionError("pull never finished")

    def fresh_replica(self) -> Replica:
        self.replica = Replica()
        self.client_id = new_uuid()
        return self.sync_down()


def iter_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]
