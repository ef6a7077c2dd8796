"""Fast path for the client's initial download: search triggers and secondary indexes
off, one index rebuild.

Why: every customer, phone and tag inserted by a pulled page fires the search triggers
(trigram + bigram FTS updates and the search document), roughly ten times the cost of the
row itself. A first download of 100k customers spends most of its time there. For the
initial sync only (no completed download yet, and more than one page to fetch), the
triggers are dropped and the search index is rebuilt once after the last page is applied.
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
`SUSPENDED_KEY`) in the same transaction that drops them. The restore runs in short
transactions (`resume_search_index`: indexes, then triggers back with `REBUILD_KEY`, then
ranges of customers, then optimize), each moving one of the two keys. So at any instant
either everything exists, or a key says what is missing and how to go on. A process that dies
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

from agent_desktop.search_bulk import (
    clear_search_index,
    index_customer_range,
    optimize_search_index,
    range_end,
    rebuild_search_index,
    set_automerge,
)
from agent_desktop.store.db import Database
from agent_desktop.store.outbox import ENTITIES
from sync.client import state

log = logging.getLogger(__name__)

SUSPENDED_KEY = "search_triggers_suspended"
# Set while the index is rebuilt in short transactions (`resume_search_index`): the id up
# to which customers are indexed again; the triggers are back while it exists.
REBUILD_KEY = "search_rebuild_after"
# Each short transaction of the chunked rebuild aims at this much CPU (its range size
# adapts to the measured time): well under a second of write lock for the agent's saves.
CHUNK_SECONDS = 0.3
FIRST_CHUNK = 10000
# Pause after a short transaction when another connection of the store is in use: SQLite's
# busy handler polls a waiting writer every 50-100 ms once it has waited a while, so back-
# to-back transactions could starve it (busy timeout: "database is locked") even though
# each one is short. One poll interval of idle lock lets it in.
WRITER_GAP_S = 0.1
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
    """True while the search index is not complete: triggers suspended, or the chunked
    rebuild after them not finished (both are repaired by `recover_search_index`)."""
    return (state.get(session, SUSPENDED_KEY) is not None
            or state.get(session, REBUILD_KEY) is not None)


def suspend_search_triggers(session: Session, *, drop_indexes: bool = False) -> bool:
    """Drop the search triggers (and with `drop_indexes` the synced tables' secondary
    indexes) inside the caller's transaction, saving their SQL.

    Returns False (and changes nothing) when they are already suspended.
    """
    if state.get(session, SUSPENDED_KEY) is not None:
        return False
    conn = session.connection()
    # A chunked rebuild still under way is superseded: the rebuild after this suspension
    # covers every customer again.
    state.drop(session, REBUILD_KEY)
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
        if state.get(session, REBUILD_KEY) is None:
            return False
        # A chunked rebuild was under way (triggers back): finish it in one go.
        state.drop(session, REBUILD_KEY)
        session.flush()
        set_automerge(session.connection(), True)
        rebuild_search_index(session.connection())
        return True
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
    log.warning("the search index was left incomplete (interrupted initial sync): "
                "rebuilding it")
    return resume_search_index(db)


def yield_to_writers(db: Database) -> None:
    """Between two of a long job's write transactions: leave the write lock free for one
    busy-handler poll when another connection of this store is checked out (someone may
    be waiting to write); no pause when this thread is the store's only user."""
    checkedout = getattr(db.engine.pool, "checkedout", None)
    if checkedout is None or checkedout() > 0:
        time.sleep(WRITER_GAP_S)


def resume_search_index(db: Database, chunk_seconds: float = CHUNK_SECONDS,
                        first_chunk: int = FIRST_CHUNK) -> bool:
    """Put back what a download suspended and rebuild the search index, in short
    transactions; returns False when nothing was pending.

    Why not one transaction: at 100k customers the whole restore held the write lock for
    4-5 s (busy timeout: 5 s), long enough for an agent's save to fail as "database is
    locked". Steps, each committed on its own: (1) every saved index, one per transaction;
    (2) the triggers back, the index emptied, `REBUILD_KEY` = 0 and `SUSPENDED_KEY` gone;
    (3) customers in consecutive id ranges, `REBUILD_KEY` advanced with each; (4) each FTS
    table optimized, the key removed. A crash anywhere leaves a key that says where to
    go on: `SUSPENDED_KEY` (steps 1-2 again, creating only missing indexes) or
    `REBUILD_KEY` (step 3 from that id). From step 2 on the triggers index every edit.
    """
    with db.transaction() as s:
        raw_saved = state.get(s, SUSPENDED_KEY)
        pending = raw_saved is not None or state.get(s, REBUILD_KEY) is not None
    if not pending:
        return False
    started = time.perf_counter()
    if raw_saved is not None:
        saved = _Saved.load(raw_saved)
        if not saved.triggers:
            raise SearchIndexError("The saved copy of the search triggers is empty.")
        for name, sql in saved.indexes:
            with db.transaction(applying_remote=True) as s:
                conn = s.connection()
                if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'index'"
                                        " AND name = ?", (name,)).first() is None:
                    _ddl(s, sql, "re-create an index")
            yield_to_writers(db)
        with db.transaction(applying_remote=True) as s:
            if state.get(s, SUSPENDED_KEY) is None:
                return True  # another thread finished it meanwhile
            state.drop(s, SUSPENDED_KEY)
            state.put(s, REBUILD_KEY, "0")
            s.flush()
            _require_transaction(s.connection(), "re-create the search triggers")
            conn = s.connection()
            clear_search_index(conn)
            set_automerge(conn, False)
            existing = {name for name, _sql in _triggers(conn)}
            for name, sql in saved.triggers:
                if name not in existing:
                    conn.exec_driver_sql(sql)
        yield_to_writers(db)
    indexed = time.perf_counter()
    ranges = _index_in_ranges(db, chunk_seconds, first_chunk)
    with db.transaction(applying_remote=True) as s:
        set_automerge(s.connection(), True)
    for table in ("customer_fts", "customer_grams"):
        with db.transaction(applying_remote=True) as s:
            optimize_search_index(s.connection(), table)
            if table == "customer_grams":
                state.drop(s, REBUILD_KEY)
        yield_to_writers(db)
    log.info("search index restored: indexes and triggers in %.1f s, %d ranges of "
             "customers and optimize in %.1f s", indexed - started, ranges,
             time.perf_counter() - indexed)
    return True


def _ddl(s: Session, sql: str, what: str) -> None:
    """DDL inside the session's transaction (opened by a no-op write first)."""
    conn = s.connection()
    conn.exec_driver_sql("UPDATE sync_state SET value = value WHERE 0")
    _require_transaction(conn, what)
    conn.exec_driver_sql(sql)


def _index_in_ranges(db: Database, chunk_seconds: float, size: int) -> int:
    """Step 3 of `resume_search_index`: one transaction per range of customers (the first
    of `size`), sized so each takes about `chunk_seconds`; returns how many there were."""
    ranges = 0
    while True:
        with db.transaction(applying_remote=True) as s:
            mark = state.get(s, REBUILD_KEY)
            if mark is None:
                return ranges  # finished by someone else
            after = int(mark)
            conn = s.connection()
            upto = range_end(conn, after, size)
            if upto is None:
                return ranges
            t = time.thread_time()
            index_customer_range(conn, after, upto)
            state.put(s, REBUILD_KEY, str(upto))
        took = time.thread_time() - t
        ranges += 1
        yield_to_writers(db)
        # Aim the next range at `chunk_seconds` of this thread's CPU (wall time on a busy
        # machine would shrink the ranges, and every range costs a commit and an FTS
        # segment); bounded steps so one odd range does not swing the next one wildly.
        size = int(min(max(size * chunk_seconds / max(took, 1e-3), size / 2, 500), size * 2))
