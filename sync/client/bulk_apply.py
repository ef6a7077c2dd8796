"""Fast path for the client's initial download: search triggers and secondary indexes
off, one index rebuild.

Why: every customer, phone and tag inserted by a pulled page fires the search triggers
(trigram + bigram FTS updates and the search document), roughly ten times the cost of the
row itself. A first download of 100k customers spends most of its time there. For the
initial sync only (no completed download yet, and more than one page to fetch), the
triggers are dropped and the search index is rebuilt once when the last page is applied.
Incremental pulls keep the triggers: rebuilding the whole index for a handful of rows
would cost far more than the triggers do.

A first download (not a reset, whose rows mostly exist and go through the general path)
also drops the synced tables' secondary indexes (`ix_*`: by customer, name key, E.164,
list covering indexes; never a UNIQUE one, which the fast path relies on) and creates them
again, sorted in one pass each, before the index rebuild: maintaining them row by row in
random key order cost ~4 s of the 17 s of CPU of a 100k download (measured, see
docs/decisions.md). Only the download itself writes in that window; reads still work,
by scanning, and nothing reads these tables per row meanwhile.

Crash safety: the triggers' and indexes' SQL is saved in `sync_state` (key
`SUSPENDED_KEY`) in the same transaction that drops them, and the re-creation + rebuild +
removal of that key commit together. So at any instant either everything exists, or the
key says what is missing and holds what is needed to put it back. A process that dies
mid-download leaves the key; `SyncClient.pull` (or `recover_search_index` at start-up)
sees it and restores before doing anything else, so search never stays stale across a
restart. SQLite DDL is transactional; the only care needed is that Python's sqlite3
(legacy transaction mode) opens the transaction at the first DML statement, so the key is
written (and flushed) before the first DROP.

While triggers are off, local edits made meanwhile are not indexed until the rebuild (a
search during the first download is incomplete anyway); the rebuild covers every row.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from agent_desktop.search_bulk import rebuild_search_index
from agent_desktop.store.db import Database
from agent_desktop.store.outbox import ENTITIES
from sync.client import state

log = logging.getLogger(__name__)

SUSPENDED_KEY = "search_triggers_suspended"
# Page cache for the restore (negative: KiB): with the default 32 MB the index creation
# and FTS build spilled ~140 MB of dirty pages to the WAL mid-transaction at 100k
# customers, pages later rewritten; this much holds them until the commit. Per connection,
# put back before the connection returns to the pool.
_RESTORE_CACHE_KIB = -262144
_TRIGGER_PATTERN = "%\\_search\\_%"


class SearchIndexError(RuntimeError):
    """The search triggers cannot be suspended or restored (the database is not as the
    migrations left it)."""


@dataclass
class _Saved:
    """What a suspension dropped, as stored under `SUSPENDED_KEY`: (name, sql) pairs."""

    triggers: list[tuple[str, str]]
    indexes: list[tuple[str, str]] = field(default_factory=list)

    def dump(self) -> str:
        return json.dumps({"triggers": self.triggers, "indexes": self.indexes})

    @classmethod
    def load(cls, saved: str) -> _Saved:
        """Also reads the plain list of triggers that versions before the index
        suspension saved (a crash of such a version may have left one)."""
        try:
            value = json.loads(saved)
            if isinstance(value, list):
                value = {"triggers": value}
            return cls([(str(n), str(sql)) for n, sql in value["triggers"]],
                       [(str(n), str(sql)) for n, sql in value.get("indexes", [])])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SearchIndexError(f"The saved search triggers are unreadable ({exc}); the "
                                   "database needs repair.") from exc


def _triggers(conn: Connection) -> list[tuple[str, str]]:
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
        " AND name LIKE ? ESCAPE '\\' ORDER BY name", (_TRIGGER_PATTERN,)).all()
    return [(str(r[0]), str(r[1])) for r in rows]


def _bulk_tables() -> list[str]:
    return sorted({model.__table__.name for model in ENTITIES.values()})  # type: ignore[attr-defined]


def _secondary_indexes(conn: Connection) -> list[tuple[str, str]]:
    """Explicit non-unique indexes of the synced tables (autoindexes have no SQL; UNIQUE
    ones enforce the uuid identity the fast path depends on, so they stay)."""
    tables = _bulk_tables()
    marks = ", ".join("?" * len(tables))
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        f" AND tbl_name IN ({marks}) ORDER BY name", tuple(tables)).all()
    return [(str(n), str(sql)) for n, sql in rows
            if not str(sql).lstrip().upper().startswith("CREATE UNIQUE")]


def _require_transaction(conn: Connection, what: str) -> None:
    """DDL outside a transaction would autocommit: a crash could then lose the triggers'
    SQL. Refuse rather than risk it."""
    raw = conn.connection.dbapi_connection
    if raw is None or not getattr(raw, "in_transaction", False):
        raise SearchIndexError(f"Refusing to {what} outside a database transaction.")


def is_suspended(session: Session) -> bool:
    return state.get(session, SUSPENDED_KEY) is not None


def suspend_search_triggers(session: Session, *, drop_indexes: bool = False) -> bool:
    """Drop the search triggers (and with `drop_indexes` the synced tables' secondary
    indexes) inside the caller's transaction, saving their SQL.

    Returns False (and changes nothing) when they are already suspended.
    """
    if is_suspended(session):
        return False
    conn = session.connection()
    saved = _Saved(_triggers(conn), _secondary_indexes(conn) if drop_indexes else [])
    if not saved.triggers:
        raise SearchIndexError("The search triggers are missing and no saved copy exists: "
                               "is the database migrated?")
    state.put(session, SUSPENDED_KEY, saved.dump())
    session.flush()  # the INSERT opens the SQLite transaction before any DDL
    _require_transaction(conn, "drop the search triggers")
    for name, _sql in saved.triggers:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    for name, _sql in saved.indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    log.info("initial sync: %d search triggers and %d indexes suspended until the download "
             "ends", len(saved.triggers), len(saved.indexes))
    return True


def restore_search_index(session: Session) -> bool:
    """Re-create the saved indexes, rebuild the whole search index and re-create the saved
    triggers, in the caller's transaction; returns False when nothing was suspended."""
    raw_saved = state.get(session, SUSPENDED_KEY)
    if raw_saved is None:
        return False
    saved = _Saved.load(raw_saved)
    if not saved.triggers:
        raise SearchIndexError("The saved copy of the search triggers is empty.")
    started = time.perf_counter()
    conn = session.connection()
    state.drop(session, SUSPENDED_KEY)
    session.flush()  # DML first: the DDL below must be inside the transaction
    _require_transaction(conn, "re-create the search triggers")
    previous = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    conn.exec_driver_sql(f"PRAGMA cache_size = {_RESTORE_CACHE_KIB}")
    try:
        # Indexes first: the search documents' view finds each customer's phones and tags
        # through the by-customer indexes (without them the rebuild is quadratic).
        present = {str(n) for (n,) in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index'").all()}
        for name, sql in saved.indexes:
            if name not in present:
                conn.exec_driver_sql(sql)
        indexed = time.perf_counter()
        rebuild_search_index(conn)
        existing = {name for name, _sql in _triggers(conn)}
        for name, sql in saved.triggers:
            if name not in existing:
                conn.exec_driver_sql(sql)
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {previous}")
    log.info("%d indexes re-created in %.1f s, search index rebuilt and %d triggers "
             "restored in %.1f s", len(saved.indexes), indexed - started,
             len(saved.triggers), time.perf_counter() - indexed)
    return True


def recover_search_index(db: Database) -> bool:
    """At start-up: finish what a crash during an initial download left undone.

    Cheap when nothing is pending (one key lookup). Run it off the GUI thread: the rebuild
    takes seconds at 100k customers. Returns True when a rebuild happened.
    """
    with db.transaction() as s:
        if not is_suspended(s):
            return False
    log.warning("search triggers were left suspended (interrupted initial sync): "
                "rebuilding the search index")
    with db.transaction(applying_remote=True) as s:
        return restore_search_index(s)
