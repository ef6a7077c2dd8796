"""Sync benchmark (issue 5 item 9), end to end: the real desktop client (`SyncClient`, local
SQLite, search index) against the real server process over HTTP on loopback, with the
server on SQLite and on PostgreSQL (a temporary cluster; keys suffixed `_pg`).

    .venv/bin/python -m tests.bench sync [--customers 100000] [--push 10000] [--agents 500]
        [--seconds 60] [--rounds 50] [--upload-mb 50] [--server-workers N] [--no-pg]
        [--only pull]

Figures (N written as `100k` etc.):
- `pull_N_s`: first download of N customers (with their phones, tags, notes, tasks) by a
  fresh install, paged, applied and indexed for search (initial-sync fast path: search
  triggers suspended, one index rebuild). `pull_N_triggers_s` is the same download with
  the triggers firing per row (the client before the fast path), measured in the same run.
- `baseline_full_pull_N_s`: a naive client's sync: re-download every page and replace the
  local tables (search triggers firing), instead of an incremental cursor.
- `push_Mk_s`: M local customer creations (each with a phone) pushed from the outbox.
- `noop_round_ms` / `noop_round_p95_ms`: full sync rounds with nothing to do.
- `upload_mb_s`: one recording through the resumable, sha256-checked upload.
- `agents_A_p99_ms` / `agents_A_errors`: A simulated agents (own user, own token, own
  client id, one keep-alive HTTP/1.1 connection each, as the desktop's requests.Session
  keeps one; a lean asyncio client so the generator takes little of the shared CPU) each
  pushing one change and pulling every 5 s for
  --seconds (tests/integration/server/bench.py `agents_load`); the round's time is push +
  pulls as the agent sees it. Diagnostics beside it: p50/p95, the server's and the load
  generator's CPU seconds during the timed part, and the generator's event-loop lag p99
  (how long a response can sit unread because the generator itself is busy: its share).
The server is seeded with Core inserts straight into its database (the server engineer's
`seed_bulk`), not with 100k pushes: the push path is measured on its own.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sync.server.__main__ import default_workers
from sync.server.accounts import create_team, create_user
from sync.server.db import ServerDatabase
from tests.bench.sync_client import (
    Install,
    measured_initial_pull,
    noop_rounds_ms,
    timed_initial_pull,
    timed_naive_full_pull,
    timed_push,
    timed_upload,
    triggers_always_on,
    use_memory_keyring,
)
from tests.integration.server.bench import PASSWORD, agents_load, create_agents, seed_bulk
from tests.integration.server.harness import PgCluster, ServerProcess

log = logging.getLogger(__name__)

TARGETS = {"pull_100k_s": 15.0, "push_10k_s": 5.0, "noop_round_ms": 20.0,
           "agents_500_p99_ms": 200.0, "agents_500_errors": 0}


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench sync")
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--push", type=int, default=10_000)
    p.add_argument("--agents", type=int, default=500)
    p.add_argument("--seconds", type=float, default=60.0, help="agents' run time")
    p.add_argument("--rounds", type=int, default=50, help="no-change rounds timed")
    p.add_argument("--upload-mb", type=int, default=50)
    p.add_argument("--no-pg", action="store_true", help="SQLite server only")
    p.add_argument("--server-workers", type=int, default=default_workers(),
                   help="server worker processes (default: the server's own default)")
    p.add_argument("--no-before", action="store_true",
                   help="skip the triggers-on initial pull (the 'before' figure)")
    p.add_argument("--only", choices=["all", "pull"], default="all",
                   help="diagnostic: 'pull' measures only the first download (pull_N_s and "
                        "its CPU/lag figures) on each backend; targets need 'all'")
    args = p.parse_args(list(argv))
    for name in ("customers", "push", "rounds", "upload_mb"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.server_workers < 1:
        p.error("--server-workers must be at least 1")
    if args.agents < 0 or args.seconds <= 0:
        p.error("--agents must be >= 0 and --seconds > 0")
    return args


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count()}
    try:
        mem = Path("/proc/meminfo").read_text().split("\n")[0].split()
        info["mem_gib"] = round(int(mem[1]) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    return info


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_backend(args: argparse.Namespace, backend: str, root: Path) -> dict[str, Any]:
    """Every figure against one server backend; the server and cluster are stopped after."""
    sfx = "_pg" if backend == "postgres" else ""
    root.mkdir(parents=True)
    cluster = None
    server = None
    db = None
    try:
        if backend == "postgres":
            cluster = PgCluster()
            cluster.start()
            url = cluster.create_database("bench")
        else:
            url = f"sqlite:///{root / 'server.sqlite3'}"
        server = ServerProcess(url, root / "recordings", root / "server.log",
                               ["--workers", str(args.server_workers)])
        server.start()
        db = ServerDatabase(url)
        names = [f"a{i}" for i in range(args.agents)]

        def users(s: Any) -> None:
            create_team(s, "bench")
            for name in ("reader", "writer"):
                create_user(s, name, PASSWORD, "agent", "bench")
            create_agents(s, names, "bench")

        db.run_write(users)
        t = time.perf_counter()
        seeded = seed_bulk(db, "reader", args.customers)
        out: dict[str, Any] = {f"server_rows{sfx}": seeded,
                               f"seed_s{sfx}": round(time.perf_counter() - t, 1)}
        k = size_label(args.customers)
        n = args.customers

        fast = Install(root / "fast", "fast", server.url, "reader", PASSWORD)
        server_cpu0 = server.cpu_seconds()
        pulled = measured_initial_pull(fast, n)
        out[f"pull_{k}_s{sfx}"] = round(pulled.seconds, 2)
        # Diagnostics: CPU of each side and how late another Python thread woke meanwhile.
        out[f"pull_{k}_server_cpu_s{sfx}"] = round(server.cpu_seconds() - server_cpu0, 1)
        out[f"pull_{k}_client_cpu_s{sfx}"] = round(pulled.client_cpu_s, 1)
        out[f"pull_{k}_client_main_cpu_s{sfx}"] = round(pulled.main_cpu_s, 1)
        out[f"pull_{k}_lag_p99_ms{sfx}"] = round(pulled.lag_p99_ms, 1)
        out[f"pull_{k}_lag_max_ms{sfx}"] = round(pulled.lag_max_ms, 1)
        log.info("%s pull fast path: %s s", backend, out[f"pull_{k}_s{sfx}"])
        if args.only == "pull":
            fast.close()
            return out
        if not args.no_before:
            before = Install(root / "before", "before", server.url, "reader", PASSWORD)
            with triggers_always_on():
                out[f"pull_{k}_triggers_s{sfx}"] = round(timed_initial_pull(before, n), 2)
            before.close()
        out[f"baseline_full_pull_{k}_s{sfx}"] = round(
            timed_naive_full_pull(fast, server.url, n), 2)
        fast.close()

        writer = Install(root / "writer", "writer", server.url, "writer", PASSWORD)
        out[f"push_{size_label(args.push)}_s{sfx}"] = round(timed_push(writer, args.push), 2)
        median, p95 = noop_rounds_ms(writer, args.rounds)
        out[f"noop_round_ms{sfx}"] = round(median, 1)
        out[f"noop_round_p95_ms{sfx}"] = round(p95, 1)
        out[f"upload_mb_s{sfx}"] = round(timed_upload(writer, args.upload_mb), 1)
        writer.close()

        if args.agents:
            out[f"load_before_agents{sfx}"] = load()
            cpu0: list[float] = []
            res = agents_load(server.url, names, args.seconds,
                              on_start=lambda: cpu0.append(server.cpu_seconds()))
            a = f"agents_{args.agents}"
            out[f"{a}_p99_ms{sfx}"] = round(res.p99_ms, 1)
            out[f"{a}_errors{sfx}"] = res.errors
            out[f"{a}_rounds{sfx}"] = res.rounds
            # Diagnostics: where the time goes (the generator shares the server's cores).
            out[f"{a}_p50_ms{sfx}"] = round(res.p50_ms, 1)
            out[f"{a}_p95_ms{sfx}"] = round(res.p95_ms, 1)
            out[f"{a}_error_kinds{sfx}"] = res.error_kinds
            out[f"{a}_server_cpu_s{sfx}"] = round(server.cpu_seconds() - cpu0[0], 1)
            out[f"{a}_client_cpu_s{sfx}"] = round(res.client_cpu_s, 1)
            out[f"{a}_server_cpu_ms_per_round{sfx}"] = round(
                out[f"{a}_server_cpu_s{sfx}"] * 1000 / max(1, res.rounds), 2)
            out[f"{a}_timed_wall_s{sfx}"] = round(res.wall_s, 1)
            out[f"{a}_client_loop_lag_p99_ms{sfx}"] = round(res.loop_lag_p99_ms, 1)
            out[f"{a}_first_round_p99_ms{sfx}"] = round(res.first_round_p99_ms, 1)
            out[f"{a}_later_rounds_p99_ms{sfx}"] = round(res.later_rounds_p99_ms, 1)
            out[f"{a}_login_s{sfx}"] = round(res.login_s, 1)
            out[f"server_workers{sfx}"] = args.server_workers
        return out
    finally:
        if server is not None:
            server.stop()
        if db is not None:
            db.dispose()
        if cluster is not None:
            cluster.stop()


def run(argv: Sequence[str], bench_dir: Path) -> dict[str, Any]:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING)
    use_memory_keyring()
    bench_dir.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="sync-", dir=bench_dir))
    result: dict[str, Any] = {
        "benchmark": "sync", "customers": args.customers, "push": args.push,
        "agents": args.agents, "agent_seconds": args.seconds, "upload_mb": args.upload_mb,
        "machine": machine_info(), "load_start": load(), "targets": TARGETS}
    started = time.perf_counter()
    try:
        result.update(run_backend(args, "sqlite", root / "sqlite"))
        if not args.no_pg:
            result.update(run_backend(args, "postgres", root / "postgres"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["load_end"] = load()
    result["total_s"] = round(time.perf_counter() - started, 1)
    result["meets_targets"] = {
        key + sfx: (result[key + sfx] <= target)
        for key, target in TARGETS.items() for sfx in ("", "_pg")
        if key + sfx in result}
    return result
