"""Fast path for the client's initial download: search triggers off, one index rebuild.

Why: every customer, phone and tag inserted by a pulled page fires the search triggers
(trigram + bigram FTS updates and the search document), roughly ten times the cost of the
row itself. A first download of 100k customers spends most of its time there. For the
initial sync only (no completed download yet, and more than one page to fetch), the
triggers are dropped and the search index is rebuilt once when the last page is applied.
Incremental pulls keep the triggers: rebuilding the whole index for a handful of rows
would cost far more than the triggers do.

Crash safety: the triggers' SQL is saved in `sync_state` (key `SUSPENDED_KEY`) in the same
transaction that drops them, and the rebuild + re-creation + removal of that key commit
together. So at any instant either the triggers exist, or the key says they are missing and
holds what is needed to put them back. A process that dies mid-download leaves the key;
`SyncClient.pull` (or `recover_search_index` at start-up) sees it and rebuilds before doing
anything else, so search never stays stale across a restart. SQLite DDL is transactional;
the only care needed is that Python's sqlite3 (legacy transaction mode) opens the
transaction at the first DML statement, so the key is written (and flushed) before the
first DROP TRIGGER.

While triggers are off, local edits made meanwhile are not indexed until the rebuild (a
search during the first download is incomplete anyway); the rebuild covers every row.
"""

from __future__ import annotations

import json
import logging
import time

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from agent_desktop.search import rebuild_index
from agent_desktop.store.db import Database
from sync.client import state

log = logging.getLogger(__name__)

SUSPENDED_KEY = "search_triggers_suspended"
_TRIGGER_PATTERN = "%\\_search\\_%"


class SearchIndexError(RuntimeError):
    """The search triggers cannot be suspended or restored (the database is not as the
    migrations left it)."""


def _triggers(conn: Connection) -> list[tuple[str, str]]:
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
        " AND name LIKE ? ESCAPE '\\' ORDER BY name", (_TRIGGER_PATTERN,)).all()
    return [(str(r[0]), str(r[1])) for r in rows]


def _require_transaction(conn: Connection, what: str) -> None:
    """DDL outside a transaction would autocommit: a crash could then lose the triggers'
    SQL. Refuse rather than risk it."""
    raw = conn.connection.dbapi_connection
    if raw is None or not getattr(raw, "in_transaction", False):
        raise SearchIndexError(f"Refusing to {what} outside a database transaction.")


def is_suspended(session: Session) -> bool:
    return state.get(session, SUSPENDED_KEY) is not None


def suspend_search_triggers(session: Session) -> bool:
    """Drop the search triggers inside the caller's transaction, saving their SQL.

    Returns False (and changes nothing) when they are already suspended.
    """
    if is_suspended(session):
        return False
    conn = session.connection()
    triggers = _triggers(conn)
    if not triggers:
        raise SearchIndexError("The search triggers are missing and no saved copy exists: "
                               "is the database migrated?")
    state.put(session, SUSPENDED_KEY, json.dumps(triggers))
    session.flush()  # the INSERT opens the SQLite transaction before any DDL
    _require_transaction(conn, "drop the search triggers")
    for name, _sql in triggers:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    log.info("initial sync: %d search triggers suspended until the download ends",
             len(triggers))
    return True


def restore_search_index(session: Session) -> bool:
    """Rebuild the whole search index and re-create the saved triggers, in the caller's
    transaction; returns False when nothing was suspended."""
    saved = state.get(session, SUSPENDED_KEY)
    if saved is None:
        return False
    try:
        triggers = [(str(n), str(sql)) for n, sql in json.loads(saved)]
    except (ValueError, TypeError) as exc:
        raise SearchIndexError(f"The saved search triggers are unreadable ({exc}); the "
                               "database needs repair.") from exc
    if not triggers:
        raise SearchIndexError("The saved copy of the search triggers is empty.")
    started = time.perf_counter()
    conn = session.connection()
    state.drop(session, SUSPENDED_KEY)
    session.flush()  # DML first: the DDL below must be inside the transaction
    _require_transaction(conn, "re-create the search triggers")
    existing = {name for name, _sql in _triggers(conn)}
    rebuild_index(conn, 0)
    for name, sql in triggers:
        if name not in existing:
            conn.exec_driver_sql(sql)
    log.info("search index rebuilt and %d triggers restored in %.1f s", len(triggers),
             time.perf_counter() - started)
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
