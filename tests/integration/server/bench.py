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
import json
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, literal, select

from sync.server.__main__ import demo_customer_rows
from sync.server.accounts import create_team, create_user
from sync.server.db import ServerDatabase, utcnow
from sync.server.feed import Feed
from sync.server.models import ChangeLog, Record, User
from tests.integration.server.harness import SCHEMA, Api, PgCluster, ServerProcess, new_uuid

PASSWORD = "bench-password"


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


async def _login(http: httpx.AsyncClient, name: str) -> dict[str, str] | None:
    r = await http.post("/auth/login", json={"username": name, "password": PASSWORD})
    if r.status_code != 200:
        return None
    return {"Authorization": f"Bearer {r.json()['access_token']}", **SCHEMA}


async def _agent(http: httpx.AsyncClient, name: str, headers: dict[str, str], period: float,
                 until: float, latencies: list[float], errors: list[str]) -> None:
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
            r = await http.post("/sync/push", json=body, headers=headers)
            if r.status_code != 200:
                errors.append(f"push {r.status_code}")
            has_more = True
            while has_more:
                r = await http.post("/sync/pull", headers=headers, json={
                    "client_id": client_id, "schema_version": 1, "cursor": cursor,
                    "limit": 1000})
                if r.status_code != 200:
                    errors.append(f"pull {r.status_code}")
                    break
                page = r.json()
                cursor, has_more = page["next_cursor"], page["has_more"]
            latencies.append((time.perf_counter() - started) * 1000)
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
        await asyncio.sleep(max(0.0, period - (time.perf_counter() - started)))


def agents_load(url: str, names: list[str], seconds: float,
                period: float = 5.0) -> tuple[float, int, int]:
    """Sign everyone in first (argon2 is deliberately slow), then run the timed rounds."""
    latencies: list[float] = []
    errors: list[str] = []

    async def run() -> None:
        limits = httpx.Limits(max_connections=len(names) + 10)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            sem = asyncio.Semaphore(8)

            async def login(n: str) -> dict[str, str] | None:
                async with sem:
                    return await _login(http, n)

            heads = await asyncio.gather(*[login(n) for n in names])
            errors.extend("login" for h in heads if h is None)
            until = time.monotonic() + seconds
            await asyncio.gather(*[_agent(http, n, h, period, until, latencies, errors)
                                   for n, h in zip(names, heads, strict=True) if h])

    asyncio.run(run())
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 2 else float("nan")
    return p99, len(errors), len(latencies)


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
            for i in range(args.agents):
                create_user(s, f"a{i}", PASSWORD, "agent", "bench")

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
            p99, errors, rounds = agents_load(server.url, [f"a{i}" for i in range(args.agents)],
                                              args.agent_seconds)
            out[f"agents_{args.agents}_p99_ms{sfx}"] = round(p99, 1)
            out[f"agents_{args.agents}_errors{sfx}"] = errors
            out[f"agents_{args.agents}_rounds{sfx}"] = rounds
        print(json.dumps(out))
    finally:
        server.stop()
        db.dispose()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
