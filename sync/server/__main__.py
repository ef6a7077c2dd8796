"""`agent-desktop-server`: run the sync server, administer it, or seed the demo.

    agent-desktop-server serve --db URL --recordings DIR --host 127.0.0.1 --port 8765
        [--workers N] [--threads T] [--db-pool P]
    agent-desktop-server admin create-team NAME
    agent-desktop-server admin create-user NAME --role agent --team T [--password P]
    agent-desktop-server admin assign CUSTOMER_UUID USERNAME
    agent-desktop-server admin set-password NAME [--password P]
    agent-desktop-server admin revoke NAME
    agent-desktop-server admin compact [--keep-last N]
    agent-desktop-server demo-seed [--customers N] [--agent-password P] [--lead-password P]

`--db` defaults to a SQLite file in the current folder. Generated passwords are printed
once; they are never logged.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sync.server.accounts import AccountError, create_team, create_user, generate_password
from sync.server.accounts import set_password as set_user_password
from sync.server.admin import assign_customer, compact, demo_seed, revoke_sessions
from sync.server.config import CONFIG_ENV, LOG_FORMAT, LOG_LEVEL_ENV, ServerConfig, sqlite_url
from sync.server.db import ServerDatabase

log = logging.getLogger(__name__)

DEFAULT_DB = "sqlite:///agent-desktop-server.db"


def default_workers() -> int:
    """One worker process per CPU, at most 4: one Python process is bound to one core by
    the GIL (measured: one process saturates well before 500 agents every 5 s)."""
    return max(1, min(4, os.cpu_count() or 1))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="agent-desktop-server",
                                 description="Agent Desktop central sync server")
    ap.add_argument("--db", default=DEFAULT_DB,
                    help="database URL: sqlite:///path.db or postgresql://user@host/db")
    ap.add_argument("--log-level", default="INFO")
    sub = ap.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--recordings", type=Path, default=Path("recordings"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--access-ttl", type=int, default=15 * 60, help="seconds")
    serve.add_argument("--refresh-ttl", type=int, default=30 * 24 * 3600, help="seconds")
    serve.add_argument("--workers", type=_positive, default=default_workers(),
                       help="worker processes (default: one per CPU, at most 4)")
    serve.add_argument("--threads", type=_positive, default=20,
                       help="request threads per worker")
    serve.add_argument("--db-pool", type=_positive, default=None,
                       help="database connections kept per worker (default: threads + 1; "
                            f"{ServerConfig.db_overflow} more on demand)")
    serve.add_argument("--keep-alive", type=_positive, default=75,
                       help="seconds an idle client connection is kept open")

    sub.add_parser("migrate", help="create or upgrade the database schema")

    admin = sub.add_parser("admin", help="manage teams, users and customers")
    asub = admin.add_subparsers(dest="action", required=True)
    t = asub.add_parser("create-team")
    t.add_argument("name")
    u = asub.add_parser("create-user")
    u.add_argument("username")
    u.add_argument("--role", choices=["agent", "team_lead", "admin"], default="agent")
    u.add_argument("--team")
    u.add_argument("--password", help="default: generate one and print it")
    a = asub.add_parser("assign", help="reassign a customer (and its rows) to a user")
    a.add_argument("customer_uuid")
    a.add_argument("username")
    p = asub.add_parser("set-password")
    p.add_argument("username")
    p.add_argument("--password")
    r = asub.add_parser("revoke", help="sign a user out everywhere")
    r.add_argument("username")
    c = asub.add_parser("compact", help="drop old change-log entries (clients behind reset)")
    c.add_argument("--keep-last", type=int, default=10000)

    d = sub.add_parser("demo-seed", help="demo team with users 'agent' and 'lead'")
    d.add_argument("--customers", type=int, default=0,
                   help="also seed N demo customers owned by 'agent'")
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--agent-password")
    d.add_argument("--lead-password")
    return ap


def demo_customer_rows(n: int, seed: int | None = None) -> list[dict[str, Any]]:
    """Rows for the same demo customers the desktop seeds (same uuids), with their children."""
    from agent_desktop import demo

    rows: list[dict[str, Any]] = []
    for c in demo.generate(n, seed) if seed is not None else demo.generate(n):
        rows.append({"entity": "customer", "uuid": c.uuid, "name": c.name, "company": c.company,
                     "city": c.city, "country": c.country, "email": c.email,
                     "status": c.status, "stage": c.stage, "do_not_call": False,
                     "created_at": c.created_at, "deleted_at": None})
        for pos, ph in enumerate(c.phones):
            rows.append({"entity": "phone", "uuid": ph.uuid, "customer_uuid": c.uuid,
                         "label": ph.label, "raw": ph.raw, "e164": ph.e164, "valid": True,
                         "position": pos, "deleted_at": None})
        for tag in c.tags:
            rows.append({"entity": "tag", "uuid": tag.uuid, "customer_uuid": c.uuid,
                         "name": tag.name, "deleted_at": None})
        for note in c.notes:
            rows.append({"entity": "note", "uuid": note.uuid, "customer_uuid": c.uuid,
                         "call_log_uuid": None, "body": note.body, "author": "demo",
                         "created_at": note.created_at, "deleted_at": None})
        for task in c.tasks:
            rows.append({"entity": "task", "uuid": task.uuid, "customer_uuid": c.uuid,
                         "call_log_uuid": None, "title": task.title, "due_at": task.due_at,
                         "done_at": task.done_at, "created_at": task.created_at,
                         "deleted_at": None})
    return rows


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sync.server.app import create_app

    config = ServerConfig(database_url=args.db, recordings_dir=args.recordings,
                          access_ttl_s=args.access_ttl, refresh_ttl_s=args.refresh_ttl,
                          db_pool=args.db_pool or args.threads + 1, threads=args.threads)
    # Keep-alive well above the clients' 5 s sync period: with uvicorn's default of 5 s the
    # server closed idle connections just as agents reused them (ReadError in the bench).
    common: dict[str, Any] = {"host": args.host, "port": args.port, "access_log": False,
                              "log_level": args.log_level.lower(),
                              "timeout_keep_alive": args.keep_alive}
    if args.workers == 1:
        uvicorn.run(create_app(config), **common)
        return 0
    # Several processes: migrate once here, then each worker builds its own app from the
    # configuration in its environment (uvicorn spawns them and restarts a dead one).
    config.recordings_dir.mkdir(parents=True, exist_ok=True)
    db = ServerDatabase(config.database_url)
    try:
        db.migrate()
    finally:
        db.dispose()
    os.environ[CONFIG_ENV] = replace(config, migrate_on_start=False).to_json()
    os.environ[LOG_LEVEL_ENV] = args.log_level.upper()
    log.info("starting %d worker processes", args.workers)
    uvicorn.run("sync.server.app:worker_app", factory=True, workers=args.workers, **common)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    if args.command == "serve":
        return _serve(args)
    db = ServerDatabase(args.db)
    try:
        db.migrate()
        if args.command == "migrate":
            print("database is up to date")
        elif args.command == "admin":
            _admin(db, args)
        elif args.command == "demo-seed":
            rows = demo_customer_rows(args.customers, args.seed) if args.customers else []
            agent_pw = args.agent_password or generate_password()
            lead_pw = args.lead_password or generate_password()
            made = demo_seed(db, agent_pw, lead_pw, rows)
            print(f"team {made.team}: user agent password {agent_pw}")
            print(f"team {made.team}: user lead password {lead_pw}")
            print(f"{made.customers} demo rows added")
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


def _admin(db: ServerDatabase, args: argparse.Namespace) -> None:
    if args.action == "create-team":
        db.run_write(lambda s: create_team(s, args.name))
        print(f"team {args.name} created")
    elif args.action == "create-user":
        password = args.password or generate_password()
        db.run_write(lambda s: create_user(s, args.username, password, args.role, args.team))
        print(f"user {args.username} ({args.role}) created"
              + ("" if args.password else f"; password {password}"))
    elif args.action == "assign":
        assign_customer(db, args.customer_uuid, args.username)
        print(f"customer {args.customer_uuid} assigned to {args.username}")
    elif args.action == "set-password":
        password = args.password or generate_password()
        db.run_write(lambda s: set_user_password(s, args.username, password))
        print("password changed" + ("" if args.password else f"; new password {password}"))
    elif args.action == "revoke":
        print(f"{revoke_sessions(db, args.username)} session(s) revoked")
    elif args.action == "compact":
        t, s = compact(db, args.keep_last)
        print(f"change log compacted up to ({t}, {s})")


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["main", "sqlite_url"]
