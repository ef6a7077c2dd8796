"""Test helpers: the real sync server as a process, and a fault-injecting HTTP/TCP proxy.

`ServerProcess` runs `python -m sync.server serve` (uvicorn) on a free loopback port with
its own database (SQLite by default, or a PostgreSQL URL) and recordings folder; `kill()`
is SIGKILL (no graceful shutdown: what a power cut or OOM kill does), `start()` brings it
back on the same port.

`FaultProxy` sits between the client and the server and understands just enough HTTP/1.1
(Content-Length and chunked bodies, keep-alive) to inject faults at request boundaries:

- "drop":           close the client connection before forwarding anything;
- "delay":          hold the request `delay_s` before forwarding it;
- "duplicate":      send the request to the server twice (the first answer is discarded);
- "cut_request":    forward half of the request, then close both sides;
- "cut_response":   forward the request, relay half of the answer, then close (the server
                    committed but the client never learns it: the "lost ack" case).

Which fault hits which request is decided by `decide(n, method, path)`, by default a
seeded random choice with probability `fault_rate`, so failures are reproducible.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
FAULTS = ("drop", "delay", "duplicate", "cut_request", "cut_response")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class User:
    username: str
    password: str
    role: str = "agent"


class ServerProcess:
    """The real server as a subprocess; `url` stays the same across restarts."""

    def __init__(self, root: Path, users: list[User], team: str = "t1",
                 db_url: str | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.db_url = db_url or f"sqlite:///{root / 'server.sqlite3'}"
        self.recordings = root / "recordings"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "server.log"
        self._seed(users, team)

    def _seed(self, users: list[User], team: str) -> None:
        from sync.server.accounts import create_team, create_user
        from sync.server.db import ServerDatabase

        db = ServerDatabase(self.db_url)
        try:
            db.migrate()
            db.run_write(lambda s: create_team(s, team))
            for u in users:
                db.run_write(lambda s, u=u: create_user(s, u.username, u.password, u.role,  # type: ignore[misc]
                                                          team))
        finally:
            db.dispose()

    def start(self, timeout_s: float = 60.0) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync.server", "--db", self.db_url, "--log-level",
             "WARNING", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--recordings", str(self.recordings),
             # One process, so kill() really takes the server away at once (worker
             # processes are tested in tests/integration/server/test_server_workers.py).
             "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


# --- HTTP framing ----------------------------------------------------------------------
class _Closed(Exception):
    pass


def _read_until(sock: socket.socket, buf: bytearray, marker: bytes) -> int:
    while True:
        i = buf.find(marker)
        if i >= 0:
            return i
        data = sock.recv(65536)
        if not data:
            raise _Closed
        buf.extend(data)


def _read_exact(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        data = sock.recv(65536)
        if not data:
            raise _Closed
        buf.extend(data)
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _headers(head: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            out[k.strip().lower().decode()] = v.strip().decode()
    return out


def read_message(sock: socket.socket, buf: bytearray, *, request_method: str | None = None
                 ) -> tuple[bytes, str]:
    """One HTTP/1.1 message (head + body) as raw bytes, and its first line."""
    end = _read_until(sock, buf, b"\r\n\r\n")
    head = _read_exact(sock, buf, end + 4)
    first = head.split(b"\r\n", 1)[0].decode("latin-1")
    hdrs = _headers(head)
    body = b""
    if request_method is not None:  # a response: some never have a body
        status = first.split(" ")[1]
        if request_method == "HEAD" or status.startswith("1") or status in ("204", "304"):
            return head, first
    if "content-length" in hdrs:
        body = _read_exact(sock, buf, int(hdrs["content-length"]))
    elif hdrs.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            i = _read_until(sock, buf, b"\r\n")
            size_line = _read_exact(sock, buf, i + 2)
            size = int(size_line.split(b";")[0].strip(), 16)
            chunk = _read_exact(sock, buf, size + 2)
            parts.append(size_line + chunk)
            if size == 0:
                break
        body = b"".join(parts)
    return head + body, first


class FaultProxy:
    """Threaded loopback proxy; one upstream connection per client connection."""

    def __init__(self, upstream_port: int, *, fault_rate: float = 0.0, seed: int = 1,
                 delay_s: float = 0.3,
                 decide: Callable[[int, str, str], str | None] | None = None) -> None:
        self.upstream_port = upstream_port
        self.fault_rate = fault_rate
        self.delay_s = delay_s
        self._rand = random.Random(seed)
        self.decide = decide or self._random_fault
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        self._conns: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="fault-proxy")
        self._thread.start()

    def _random_fault(self, _n: int, _method: str, _path: str) -> str | None:
        if self._rand.random() < self.fault_rate:
            return self._rand.choice(FAULTS)
        return None

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            for c in list(self._conns):
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
        self._thread.join(5)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _upstream(self) -> socket.socket:
        up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=60)
        with self._lock:
            self._conns.add(up)
        return up

    def _serve(self, client: socket.socket) -> None:
        cbuf = bytearray()
        up: socket.socket | None = None
        ubuf = bytearray()
        try:
            while not self._stopped.is_set():
                request, first = read_message(client, cbuf)
                method, path = first.split(" ")[0], first.split(" ")[1]
                with self._lock:
                    self.requests += 1
                    n = self.requests
                    fault = self.decide(n, method, path)
                    if fault:
                        self.injected[fault] += 1
                if fault == "drop":
                    return
                if fault == "delay":
                    time.sleep(self.delay_s)
                if fault == "duplicate":
                    extra = self._upstream()
                    try:
                        extra.sendall(request)
                        read_message(extra, bytearray(), request_method=method)
                    finally:
                        extra.close()
                if up is None:
                    up = self._upstream()
                if fault == "cut_request":
                    up.sendall(request[: max(1, len(request) // 2)])
                    return
                up.sendall(request)
                response, _ = read_message(up, ubuf, request_method=method)
                if fault == "cut_response":
                    client.sendall(response[: max(1, len(response) // 2)])
                    return
                client.sendall(response)
        except (_Closed, OSError, ValueError, IndexError):
            return
        finally:
            for s in (client, up):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()
                    with self._lock:
                        self._conns.discard(s)


# --- simulated agents ------------------------------------------------------------------
class Agent:
    """One desktop install: its own local database, keyring entries and client id."""

    def __init__(self, name: str, root: Path, url: str, user: User, *,
                 pull_limit: int = 500, push_batch: int = 500,
                 read_timeout_s: float = 10.0) -> None:
        from agent_desktop.credentials import CredentialStore
        from agent_desktop.store.db import Database
        from sync.client.client import SyncClient
        from sync.client.tokens import TokenStore
        from sync.client.transport import HttpTransport, ServerConfig

        self.name = name
        self.user = user
        self.db = Database.open(root / f"{name}.sqlite3")
        self.tokens = TokenStore(CredentialStore(f"agent-desktop-test-{name}"))
        self.transport = HttpTransport(
            ServerConfig(url, connect_timeout_s=5.0, read_timeout_s=read_timeout_s),
            self.tokens)
        self.client = SyncClient(self.db, self.transport, pull_limit=pull_limit,
                                 push_batch=push_batch)

    def sign_in(self) -> None:
        self.transport.login(self.user.username, self.user.password)
        self.client.bind_user(self.user.username)

    def sync(self) -> object:
        return self.client.sync_round()

    def sync_until_ok(self, attempts: int = 60, pause_s: float = 0.05) -> int:
        """Retry transient failures like the worker would (without its long backoff);
        returns how many attempts failed."""
        from sync.client.errors import TransientError

        failures = 0
        for _ in range(attempts):
            try:
                self.client.sync_round()
                return failures
            except TransientError:
                failures += 1
                time.sleep(pause_s)
        raise AssertionError(f"{self.name}: sync kept failing after {attempts} attempts")

    def close(self) -> None:
        self.transport.close()
        self.db.close()


def snapshot(agent: Agent, live_only: bool = False) -> dict[str, dict[str, object]]:
    """Every synced row of an agent's database as {entity:uuid: wire fields}, comparable
    across installs (local ids replaced by parent uuids, local-only columns dropped).

    `live_only` leaves out tombstones: a row created and deleted before another install
    pulled never reaches that install at all (nothing to hide), so installs agree on live
    rows, not on which tombstones they happen to hold."""
    from sqlalchemy import inspect, select

    from agent_desktop.store.outbox import ENTITIES, LOCAL_ONLY, PARENT_FKS

    out: dict[str, dict[str, object]] = {}
    with agent.db.transaction() as s:
        uuid_of: dict[tuple[str, int], str] = {}
        for model in ENTITIES.values():
            for obj in s.scalars(select(model)):
                uuid_of[(model.__name__, obj.id)] = obj.uuid  # type: ignore[attr-defined]
        for entity, model in ENTITIES.items():
            for obj in s.scalars(select(model)):
                if live_only and obj.deleted_at is not None:
                    continue
                row: dict[str, object] = {}
                for attr in inspect(model).column_attrs:
                    key = attr.key
                    if key in LOCAL_ONLY:
                        continue
                    value = getattr(obj, key)
                    if key in PARENT_FKS:
                        wire, parent = PARENT_FKS[key]
                        row[wire] = uuid_of.get((parent.__name__, value)) if value else None
                    else:
                        row[key] = value
                out[f"{entity}:{obj.uuid}"] = row
    return out


def outbox_size(agent: Agent) -> int:
    from sqlalchemy import func, select

    from agent_desktop.store.models import Outbox

    with agent.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(Outbox)) or 0)


def measure(n: int) -> dict[str, float]:
    """Client-side figures against a real server process (not a benchmark suite entry):
    push of n new customers, first download of them by another install, and the median/p95
    of no-change rounds. `python -m tests.integration.fault_proxy 10000`"""
    import statistics
    import tempfile

    import keyring

    from agent_desktop.store.models import Customer
    from tests.conftest import MemoryKeyring

    keyring.set_keyring(MemoryKeyring())
    user = User("measure", "pw-measure-secret")
    root = Path(tempfile.mkdtemp(prefix="sync-measure-"))
    srv = ServerProcess(root / "server", [user])
    srv.start()
    try:
        writer = Agent("writer", root, srv.url, user, push_batch=1000, pull_limit=2000)
        writer.sign_in()
        with writer.db.transaction() as s:
            s.add_all(Customer(name=f"Customer {i}", owner=user.username, city="Paris")
                      for i in range(n))
        t = time.perf_counter()
        writer.client.push()
        push_s = time.perf_counter() - t
        reader = Agent("reader", root, srv.url, user, pull_limit=2000)
        reader.sign_in()
        t = time.perf_counter()
        reader.client.pull()
        pull_s = time.perf_counter() - t
        writer.sync()
        rounds = []
        for _ in range(50):
            t = time.perf_counter()
            reader.sync()
            rounds.append((time.perf_counter() - t) * 1000)
        rounds.sort()
        return {"n": n, "push_s": round(push_s, 2), "first_pull_s": round(pull_s, 2),
                "noop_round_ms_median": round(statistics.median(rounds), 1),
                "noop_round_ms_p95": round(rounds[int(len(rounds) * 0.95)], 1)}
    finally:
        srv.stop()


if __name__ == "__main__":
    import json

    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)))
