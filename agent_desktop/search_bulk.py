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


def _fill_grams(raw: sqlite3.Connection) -> None:
    _register(raw)
    raw.execute(
        "INSERT INTO customer_grams(rowid, gname, gother)"
        f" SELECT id, {_FUNCTION}({_NAME_EXPR}, {_NAME_POSITIONS}),"
        f" {_FUNCTION}({_OTHER_EXPR}, {_OTHER_POSITIONS})"
        " FROM customer_search_docs WHERE id > 0")


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
