"""Server-side sync benchmark pieces (issue 5 item 9), over real HTTP against a real server
process, on SQLite or PostgreSQL:

    python -m tests.integration.server.bench [--backend sqlite|postgres] [--customers N]
        [--push N] [--agents N] [--agent-seconds S]

Prints one JSON object (last line). Figures: `pull_<N>_s` (initial paged pull of N demo
customers with their phones/tags/notes/tasks, JSON decoded, no local apply),
`baseline_full_pull_<N>_s` (the naive alternative: the same download repeated for a
no-change round), `push_<N>_s` (N customer creates in batches of 1000), `noop_round_ms`
(median of an empty push + an up-to-date pull), and `agents_<N>_p99_ms`/`_errors` (N
simulated agents, each pushing one change and pulling every 5 s). Suffix `_pg` on
PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvloop
from sqlalchemy import insert, literal, select
from sqlalchemy.orm import Session

from sync.server.__main__ import demo_customer_rows
from sync.server.accounts import create_team, create_user, find_team, hash_password
from sync.server.db import ServerDatabase, utcnow
from sync.server.feed import Feed
from sync.server.models import ChangeLog, Record, User
from tests.integration.server.harness import SCHEMA, Api, PgCluster, ServerProcess, new_uuid

PASSWORD = "bench-password"


def create_agents(s: Session, names: list[str], team: str, password: str = PASSWORD) -> None:
    """Bench users sharing one argon2 hash of `password`: hashing it once per user cost
    minutes of set-up on a loaded 2-core machine (the hash is deliberately slow) and is
    not what the benchmark measures. Logins still verify it the normal way."""
    if not names:  # an empty insert would add one row of defaults
        return
    team_id = find_team(s, team).id
    hashed = hash_password(password)
    now = utcnow()
    s.execute(insert(User), [{"username": n, "password_hash": hashed, "role": "agent",
                              "team_id": team_id, "active": True, "created_at": now}
                             for n in names])


def seed_bulk(db: ServerDatabase, username: str, n: int) -> int:
    """Load n demo customers (and children) with Core inserts: a benchmark fixture, not
    the push path (that one is measured separately)."""
    rows = demo_customer_rows(n)
    feed = Feed(db.is_postgres)
    with db.write() as s:
        user = s.execute(select(User).where(User.username == username)).scalar_one()
        now = utcnow()
        batch: list[dict[str, Any]] = []
        for r in rows:
            data = {k: v for k, v in r.items() if k not in ("entity", "uuid")}
            if r["entity"] == "customer":
                data["owner"] = username
            batch.append({"entity": r["entity"], "uuid": r["uuid"],
                          "customer_uuid": r.get("customer_uuid", r["uuid"]),
                          "call_log_uuid": None, "author_id": user.id,
                          "owner_user_id": user.id, "team_id": user.team_id, "version": 1,
                          "data": json.dumps(data, ensure_ascii=False),
                          "field_versions": "{}", "deleted_at": None,
                          "audio_available": False, "created_at": now, "updated_at": now})
        for i in range(0, len(batch), 5000):
            s.execute(insert(Record), batch[i:i + 5000])
        s.execute(insert(ChangeLog).from_select(
            ["txid", "record_id", "op", "audience_user_id", "audience_team_id", "created_at"],
            select(feed.txid(), Record.id, literal("upsert"), Record.owner_user_id,
                   Record.team_id, literal(now)).order_by(Record.id)))
    return len(rows)


def timed_pull(url: str, username: str, limit: int) -> tuple[float, int]:
    api = Api(url, username, PASSWORD)
    t = time.perf_counter()
    rep = api.sync_down(limit=limit)
    elapsed = time.perf_counter() - t
    api.close()
    return elapsed, len(rep.rows)


def timed_push(url: str, username: str, n: int) -> float:
    api = Api(url, username, PASSWORD)
    t = time.perf_counter()
    for start in range(0, n, 1000):
        api.push(*[("customer", new_uuid(), {"name": f"push {i}", "city": "Bench"})
                   for i in range(start, min(n, start + 1000))])
    elapsed = time.perf_counter() - t
    api.close()
    return elapsed


def noop_round_ms(url: str, username: str, rounds: int = 40) -> float:
    api = Api(url, username, PASSWORD)
    api.push(("customer", new_uuid(), {"name": "noop"}))
    api.sync_down(limit=5000)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        r = api.push_raw([])
        assert r.status_code == 200
        page = api.pull_raw(api.replica.cursor).json()
        assert page["changes"] == [] and not page["has_more"]
        times.append((time.perf_counter() - t) * 1000)
    api.close()
    return statistics.median(times)


class AgentConnection:
    """One simulated agent's keep-alive HTTP/1.1 connection, as its desktop's
    `requests.Session` holds one: requests go one after another on the same socket.

    Hand-written on asyncio streams because the generator shares the server's two cores:
    httpx cost ~5 ms of the generator's CPU per agent round (measured), this ~0.5 ms, and
    every millisecond the generator burns is taken from the server it measures. Only what
    the sync server answers is supported (Content-Length bodies); anything else is an error.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.headers = b""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON body); reconnects once if the kept-alive socket was
        closed by the server while idle (as urllib3 does for a stale pooled connection)."""
        payload = b"" if body is None else orjson.dumps(body)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                ).encode() + self.headers + b"\r\n"
        fresh = self._writer is None
        for attempt in (1, 2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host,
                                                                           self.port)
            assert self._reader is not None
            try:
                self._writer.write(head + payload)
                status_line = await self._reader.readline()
                if not status_line:
                    raise ConnectionResetError("server closed the connection")
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if fresh or attempt == 2:
                    raise
                continue
            return await self._response(status_line)
        raise AssertionError("unreachable")

    async def _response(self, status_line: bytes) -> tuple[int, Any]:
        assert self._reader is not None
        status = int(status_line.split(b" ", 2)[1])
        length, close = -1, False
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length < 0:
            await self.close()
            raise ValueError("response without Content-Length")
        data = await self._reader.readexactly(length)
        if close:
            await self.close()
        return status, orjson.loads(data) if data else None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def _login(conn: AgentConnection, name: str) -> bool:
    status, body = await conn.request("POST", "/auth/login",
                                      {"username": name, "password": PASSWORD})
    if status != 200:
        return False
    conn.headers = (f"Authorization: Bearer {body['access_token']}\r\n"
                    f"X-Schema-Version: {SCHEMA['X-Schema-Version']}\r\n").encode()
    return True


async def _agent(conn: AgentConnection, name: str, period: float, until: float,
                 latencies: list[float], errors: list[str],
                 first_rounds: list[float] | None = None) -> None:
    client_id, cursor, mid = new_uuid(), None, 0
    await asyncio.sleep(random.random() * period)
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            mid += 1
            body = {"client_id": client_id, "schema_version": 1, "mutations": [
                {"mutation_id": mid, "entity": "customer", "entity_uuid": new_uuid(),
                 "op": "upsert", "changed_fields": {"name": f"{name} {mid}"},
                 "base_version": 0, "schema_version": 1}]}
            status, _ = await conn.request("POST", "/sync/push", body)
            if status != 200:
                errors.append(f"push {status}")
            has_more = True
            while has_more:
                status, page = await conn.request("POST", "/sync/pull", {
                    "client_id": client_id, "schema_version": 1, "cursor": cursor,
                    "limit": 1000})
                if status != 200:
                    errors.append(f"pull {status}")
                    break
                cursor, has_more = page["next_cursor"], page["has_more"]
            latencies.append((time.perf_counter() - started) * 1000)
            if mid == 1 and first_rounds is not None:  # a new install's first download
                first_rounds.append(latencies[-1])
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            errors.append(type(exc).__name__)
        await asyncio.sleep(max(0.0, period - (time.perf_counter() - started)))


async def _loop_lag(until: float, lags: list[float], tick: float = 0.01) -> None:
    """How late the load generator's own event loop wakes up: time a response waits
    unread because the generator is busy is the client's share of a measured latency."""
    while time.monotonic() < until:
        t = time.perf_counter()
        await asyncio.sleep(tick)
        lags.append(max(0.0, (time.perf_counter() - t - tick) * 1000))


@dataclass
class AgentsLoad:
    """Figures of one `agents_load` run (latencies are whole rounds: push + pulls)."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    rounds: int
    error_kinds: dict[str, int]
    login_s: float  # signing everyone in (argon2), before the timed part
    client_cpu_s: float  # the load generator's CPU during the timed part
    wall_s: float  # the timed part
    loop_lag_p99_ms: float  # the generator's event-loop lateness (its share of latency)
    # Diagnostics: each agent's first round (a new install: client bound, first download)
    # all fall in the first period; p99 of those and of every later round.
    first_round_p99_ms: float = float("nan")
    later_rounds_p99_ms: float = float("nan")


def _pct(values: list[float], q: int) -> float:
    if len(values) < 3:
        return max(values) if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1]


def agents_load(url: str, names: list[str], seconds: float, period: float = 5.0,
                on_start: Callable[[], None] | None = None) -> AgentsLoad:
    """Sign everyone in first (argon2 is deliberately slow), then run the timed rounds:
    each agent (own user, own client id) pushes one change and pulls every `period` s."""
    latencies: list[float] = []
    first_rounds: list[float] = []
    errors: list[str] = []
    lags: list[float] = []
    times: dict[str, float] = {}

    async def run() -> None:
        # One connection per agent, as 500 laptops would have (a single shared pool of 500
        # connections made httpx scan the pool on every request: ~10 ms per request).
        target = urlsplit(url)
        conns = [AgentConnection(target.hostname or "127.0.0.1", target.port or 80)
                 for _ in names]
        try:
            sem = asyncio.Semaphore(8)

            async def login(conn: AgentConnection, n: str) -> bool:
                async with sem:
                    return await _login(conn, n)

            t = time.perf_counter()
            signed_in = await asyncio.gather(*[login(c, n) for c, n in zip(conns, names,
                                                                            strict=True)])
            times["login"] = time.perf_counter() - t
            errors.extend("login" for ok in signed_in if not ok)
            if on_start is not None:
                on_start()
            times["cpu0"], times["wall0"] = time.process_time(), time.perf_counter()
            until = time.monotonic() + seconds
            await asyncio.gather(_loop_lag(until, lags),
                                 *[_agent(c, n, period, until, latencies, errors,
                                          first_rounds)
                                   for c, n, ok in zip(conns, names, signed_in, strict=True)
                                   if ok])
            times["cpu"] = time.process_time() - times["cpu0"]
            times["wall"] = time.perf_counter() - times["wall0"]
        finally:
            await asyncio.gather(*[c.close() for c in conns])

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())
    kinds: dict[str, int] = {}
    for e in errors:
        kinds[e] = kinds.get(e, 0) + 1
    return AgentsLoad(p50_ms=_pct(latencies, 50), p95_ms=_pct(latencies, 95),
                      p99_ms=_pct(latencies, 99), errors=len(errors), rounds=len(latencies),
                      error_kinds=kinds, login_s=times["login"], client_cpu_s=times["cpu"],
                      wall_s=times["wall"], loop_lag_p99_ms=_pct(lags, 99),
                      first_round_p99_ms=_pct(first_rounds, 99),
                      later_rounds_p99_ms=_pct(_without(latencies, first_rounds), 99))


def _without(values: list[float], some: list[float]) -> list[float]:
    """`values` less one occurrence of each of `some` (a sub-multiset of it)."""
    left = list(values)
    for v in some:
        left.remove(v)
    return left


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--push", type=int, default=10_000)
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--agent-seconds", type=float, default=60)
    args = ap.parse_args()
    # SIGTERM → SystemExit so the server and cluster below are stopped by `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="srvbench-"))
    cluster = None
    if args.backend == "postgres":
        cluster = PgCluster()
        cluster.start()
        url = cluster.create_database("bench")
    else:
        url = f"sqlite:///{root / 'server.db'}"
    sfx = "_pg" if args.backend == "postgres" else ""
    server = ServerProcess(url, root / "rec", root / "server.log")
    server.start()
    db = ServerDatabase(url)
    try:
        def users(s: Any) -> None:
            create_team(s, "bench")
            create_user(s, "reader", PASSWORD, "agent", "bench")
            create_user(s, "writer", PASSWORD, "agent", "bench")
            create_agents(s, [f"a{i}" for i in range(args.agents)], "bench")

        db.run_write(users)
        rows = seed_bulk(db, "reader", args.customers)
        n = args.customers
        k = f"{n // 1000}k" if n >= 1000 else str(n)
        pull_s, got = timed_pull(server.url, "reader", 1000)
        assert got == rows, (got, rows)
        base_s, _ = timed_pull(server.url, "reader", 1000)
        out: dict[str, Any] = {
            f"rows_{k}{sfx}": rows, f"pull_{k}_s{sfx}": round(pull_s, 2),
            f"baseline_full_pull_{k}_s{sfx}": round(base_s, 2),
            f"push_{args.push // 1000}k_s{sfx}": round(timed_push(server.url, "writer",
                                                                  args.push), 2),
            f"noop_round_ms{sfx}": round(noop_round_ms(server.url, "writer"), 1)}
        if args.agents:
            res = agents_load(server.url, [f"a{i}" for i in range(args.agents)],
                              args.agent_seconds)
            out[f"agents_{args.agents}_p99_ms{sfx}"] = round(res.p99_ms, 1)
            out[f"agents_{args.agents}_errors{sfx}"] = res.errors
            out[f"agents_{args.agents}_rounds{sfx}"] = res.rounds
        print(json.dumps(out))
    finally:
        server.stop()
        db.dispose()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
