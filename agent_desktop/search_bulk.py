"""Whole-store rebuild of the search index, faster than `search.rebuild_index(conn, 0)`.

Why: a first sync download of 100k customers ends with one full rebuild of the search
index, and half of that rebuild was SQLite evaluating the bigram view `customer_grams_doc`
(migration 0002): 52 `substr()` calls per customer, and `city || ' ' || tags || ' ' ||
company` concatenated again for each of its 28 positions — 2.2 s of CPU at 100k customers,
against 0.8 s for the same strings built in Python. So the bigram table is filled here from
`customer_search_docs` through a Python SQL function that computes exactly what the view
does; every other statement is `rebuild_index`'s own, in the same order, so both paths
leave the same rows in every search table (tests/unit/test_search_bulk.py compares them,
FTS5 shadow tables included).

The view stays the definition. The fast path is taken only when the view's SQL in the
database is, token for token, the one this module knows (`known_grams_view`); if a later
migration changes it, or a value the Python function cannot mirror turns up (a BLOB name),
the rebuild falls back to `rebuild_index`, which reads the view itself. A test fails when
the view changes, so this module is updated rather than silently bypassed.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time

from sqlalchemy import Connection

from agent_desktop.search import rebuild_index

log = logging.getLogger(__name__)

# (expression over customer_search_docs, positions) of the view's two columns.
_NAME_EXPR = "name"
_NAME_POSITIONS = 24
_OTHER_EXPR = "city || ' ' || tags || ' ' || company"
_OTHER_POSITIONS = 28
_FUNCTION = "agent_desktop_bigrams"
_SAVEPOINT = "search_bulk_rebuild"
_DOC_COLS = "name, company, city, tags, phones"
_TOKENS = re.compile(r"'(?:[^']|'')*'|\w+|[^\s\w]")


class _NotMirrored(ValueError):
    """A value the Python bigrams cannot reproduce exactly (not text)."""


def bigrams(text: str | None, positions: int) -> str | None:
    """`substr(text, 1, 2) || ' ' || substr(text, 2, 2) || ' ' || … (positions terms)`.

    SQLite's `substr` counts characters of TEXT and returns '' past the end; so does a
    Python slice. NULL propagates through `||`, hence None → None. SQLite's string
    functions stop at a NUL character, a slice does not: such text is refused.
    """
    if text is None:
        return None
    if type(text) is not str or "\x00" in text:
        raise _NotMirrored("bigrams of a BLOB or of text with a NUL character")
    head = text[:positions + 1]
    parts = [head[i:i + 2] for i in range(min(len(head), positions))]
    if len(parts) < positions:
        parts.extend([""] * (positions - len(parts)))
    return " ".join(parts)


def _grams_sql(expr: str, positions: int) -> str:
    return " || ' ' || ".join(f"substr({expr}, {i}, 2)" for i in range(1, positions + 1))


def known_grams_view() -> str:
    """The `CREATE VIEW customer_grams_doc` statement this module mirrors."""
    return (f"CREATE VIEW customer_grams_doc AS SELECT id, "
            f"{_grams_sql(_NAME_EXPR, _NAME_POSITIONS)} AS gname, "
            f"{_grams_sql(_OTHER_EXPR, _OTHER_POSITIONS)} AS gother "
            f"FROM customer_search_docs")


def _tokens(sql: str) -> list[str]:
    return [t if t.startswith("'") else t.lower() for t in _TOKENS.findall(sql)]


def view_is_mirrored(conn: Connection) -> bool:
    """True when the database's bigram view is the one `bigrams` reproduces."""
    sql = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'customer_grams_doc'"
    ).scalar()
    return isinstance(sql, str) and _tokens(sql) == _tokens(known_grams_view())


def _register(raw: sqlite3.Connection) -> None:
    """Once per connection: SQLite refuses to redefine or delete a function while any
    statement on the connection is active, so it is never removed, only added if absent."""
    try:
        raw.execute(f"SELECT {_FUNCTION}('', 0)").fetchall()
    except sqlite3.OperationalError:
        raw.create_function(_FUNCTION, 2, bigrams, deterministic=True)


def _fill_grams(raw: sqlite3.Connection, after: int = 0, upto: int | None = None) -> None:
    _register(raw)
    raw.execute(
        "INSERT INTO customer_grams(rowid, gname, gother)"
        f" SELECT id, {_FUNCTION}({_NAME_EXPR}, {_NAME_POSITIONS}),"
        f" {_FUNCTION}({_OTHER_EXPR}, {_OTHER_POSITIONS})"
        " FROM customer_search_docs WHERE id > ? AND id <= ?", (after, _top(upto)))


def _top(upto: int | None) -> int:
    return 2**63 - 1 if upto is None else upto


def rebuild_search_index(conn: Connection) -> bool:
    """Recompute name_key, the search documents and both FTS tables for every customer,
    in the caller's transaction; the result equals `rebuild_index(conn, 0)`.

    Returns True when the fast path ran, False when it fell back to `rebuild_index`.
    """
    raw = conn.connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection) or not raw.in_transaction \
            or not view_is_mirrored(conn):
        log.info("search index: full rebuild through the views (bulk path not applicable)")
        rebuild_index(conn, 0)
        return False
    started = time.perf_counter()
    raw.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        raw.execute("UPDATE customers SET name_key = lower(name)"
                    " WHERE id > 0 AND name_key IS NOT lower(name)")
        raw.execute("INSERT INTO customer_fts(customer_fts) VALUES ('delete-all')")
        raw.execute("INSERT INTO customer_grams(customer_grams) VALUES ('delete-all')")
        raw.execute("DELETE FROM customer_search_docs WHERE id > 0")
        raw.execute(f"INSERT INTO customer_search_docs(id, {_DOC_COLS})"
                    f" SELECT id, {_DOC_COLS} FROM customer_search_doc WHERE id > 0")
        raw.execute("INSERT INTO customer_fts(customer_fts) VALUES ('rebuild')")
        _fill_grams(raw)
        raw.execute("INSERT INTO customer_fts(customer_fts) VALUES ('optimize')")
        raw.execute("INSERT INTO customer_grams(customer_grams) VALUES ('optimize')")
    except sqlite3.OperationalError as exc:
        if "user-defined function raised exception" not in str(exc):
            raise  # e.g. a full disk: the caller's transaction is rolled back anyway
        # Our function met a value it cannot mirror: undo, and let the views do it.
        raw.execute(f"ROLLBACK TO {_SAVEPOINT}")
        raw.execute(f"RELEASE {_SAVEPOINT}")
        log.warning("search index: bulk rebuild fell back to the views (%s)", exc)
        rebuild_index(conn, 0)
        return False
    raw.execute(f"RELEASE {_SAVEPOINT}")
    log.info("search index rebuilt in bulk in %.1f s", time.perf_counter() - started)
    return True


# --- the same rebuild in short transactions (first download) --------------------------
#
# Why: one transaction for the whole rebuild held SQLite's write lock for 4-5 s at 100k
# customers, just under the 5 s busy timeout: an agent saving a wrap-up or dialling then
# could fail with "database is locked". The caller runs `clear_search_index` with the
# search triggers re-created in the same transaction, then `index_customer_range` for
# consecutive id ranges, each in its own short transaction, then `optimize_search_index`.
# The triggers keep every edit made meanwhile indexed: a range not rebuilt yet may hold a
# trigger-made row, which the range's own delete-then-insert replaces (both write the same
# views' values), so the result equals a whole rebuild.


def clear_search_index(conn: Connection) -> None:
    """Empty the search documents and both FTS tables and fix every name_key, in the
    caller's transaction (before the triggers come back: an UPDATE of name_key would fire
    them)."""
    run = conn.exec_driver_sql
    run("UPDATE customers SET name_key = lower(name) WHERE id > 0 AND name_key IS NOT lower(name)")
    run("INSERT INTO customer_fts(customer_fts) VALUES ('delete-all')")
    run("INSERT INTO customer_grams(customer_grams) VALUES ('delete-all')")
    run("DELETE FROM customer_search_docs WHERE id > 0")


def range_end(conn: Connection, after: int, size: int) -> int | None:
    """The id that ends a range of `size` customers after `after` (the last customer's id
    when fewer remain); None when no customer comes after `after`."""
    top = conn.exec_driver_sql(
        "SELECT max(id) FROM (SELECT id FROM customers WHERE id > ? ORDER BY id LIMIT ?)",
        (after, max(1, size))).scalar()
    return None if top is None else int(top)


def index_customer_range(conn: Connection, after: int, upto: int) -> None:
    """(Re)build the search rows of customers with `after < id <= upto`, in the caller's
    transaction: the same statements as `rebuild_index(conn, since_id)`, bounded above,
    with the bigrams computed in Python when the view is the mirrored one."""
    raw = conn.connection.dbapi_connection
    run = conn.exec_driver_sql
    bounds = (after, upto)
    run(f"INSERT INTO customer_fts(customer_fts, rowid, {_DOC_COLS})"
        f" SELECT 'delete', id, {_DOC_COLS} FROM customer_search_docs"
        " WHERE id > ? AND id <= ?", bounds)
    run("INSERT INTO customer_grams(customer_grams, rowid, gname, gother)"
        " SELECT 'delete', id, gname, gother FROM customer_grams_doc WHERE id > ? AND id <= ?",
        bounds)
    run("DELETE FROM customer_search_docs WHERE id > ? AND id <= ?", bounds)
    run(f"INSERT INTO customer_search_docs(id, {_DOC_COLS})"
        f" SELECT id, {_DOC_COLS} FROM customer_search_doc WHERE id > ? AND id <= ?", bounds)
    run(f"INSERT INTO customer_fts(rowid, {_DOC_COLS})"
        f" SELECT id, {_DOC_COLS} FROM customer_search_docs WHERE id > ? AND id <= ?", bounds)
    if isinstance(raw, sqlite3.Connection) and view_is_mirrored(conn):
        raw.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            _fill_grams(raw, after, upto)
        except sqlite3.OperationalError as exc:
            if "user-defined function raised exception" not in str(exc):
                raise
            raw.execute(f"ROLLBACK TO {_SAVEPOINT}")
            raw.execute(f"RELEASE {_SAVEPOINT}")
            log.warning("search index: bigrams of ids %d-%d through the view (%s)", after,
                        upto, exc)
        else:
            raw.execute(f"RELEASE {_SAVEPOINT}")
            return
    run("INSERT INTO customer_grams(rowid, gname, gother)"
        " SELECT id, gname, gother FROM customer_grams_doc WHERE id > ? AND id <= ?", bounds)


FTS_TABLES = ("customer_fts", "customer_grams")
_AUTOMERGE_DEFAULT = 4  # FTS5's own defaults
_CRISISMERGE_DEFAULT = 16
_CRISISMERGE_OFF = 2000  # (FTS5 caps segments per level below this)


def set_automerge(conn: Connection, on: bool) -> None:
    """Turn FTS5's incremental merging of both search tables off while ranges are added
    (each range's commit adds a segment; merging them as they come rewrote the index
    several times: 297 MB written for 80 MB of index at 100k customers) and on again
    before the final 'optimize', which merges everything once. Stored in the tables'
    config, so it commits (and survives a crash) with the caller's transaction."""
    settings = (("automerge", _AUTOMERGE_DEFAULT), ("crisismerge", _CRISISMERGE_DEFAULT)) \
        if on else (("automerge", 0), ("crisismerge", _CRISISMERGE_OFF))
    for table in FTS_TABLES:
        for key, value in settings:
            conn.exec_driver_sql(f"INSERT INTO {table}({table}, rank) VALUES (?, ?)",
                                 (key, value))


def optimize_search_index(conn: Connection, table: str) -> None:
    """Merge one FTS table's segments (`customer_fts` or `customer_grams`): fewer
    segments, faster MATCH. One table per call so each can have its own transaction."""
    if table not in FTS_TABLES:
        raise ValueError(f"not a search FTS table: {table}")
    conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('optimize')")
