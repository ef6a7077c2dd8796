"""Keeping the search index in step during an import, fast.

The search triggers of migration 0002 rebuild a customer's index rows on every insert of a
customer, phone or tag: about 1.7 ms per imported row here, ten times the cost of the
insert itself. For a block of brand-new customers we drop those triggers inside the
batch's own transaction, insert, index the new ids from the same views the triggers use,
and re-create the triggers from the SQL saved in sqlite_master. SQLite DDL is
transactional, so a failure or a crash rolls the triggers back with the batch.

Unlike `agent_desktop.search.rebuild_index` this does not run FTS5 'optimize', which
rewrites the whole index (seconds per batch at 1M customers); FTS5's automerge keeps the
segment count bounded. `test_import_index_matches_rebuild` checks both give equal rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

_DOC_COLS = "name, company, city, tags, phones"
# Below this many new customers in one block the triggers are cheaper than DDL + rebuild.
BULK_THRESHOLD = 50
_CHUNK = 500  # ids per re-index statement (SQLite's default limit is 32,766 variables)


def _triggers(s: Session) -> list[tuple[str, str]]:
    rows = s.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
        " AND name LIKE '%\\_search\\_%' ESCAPE '\\' ORDER BY name")).all()
    return [(str(r[0]), str(r[1])) for r in rows]


def index_new_customers(s: Session, first_id: int) -> None:
    """Fill name_key and both FTS tables for customers with id >= first_id (new ones)."""
    run = s.execute
    p = {"first": first_id}
    run(text("UPDATE customers SET name_key = lower(name)"
             " WHERE id >= :first AND name_key IS NOT lower(name)"), p)
    run(text(f"INSERT INTO customer_search_docs(id, {_DOC_COLS})"
             f" SELECT id, {_DOC_COLS} FROM customer_search_doc WHERE id >= :first"), p)
    run(text(f"INSERT INTO customer_fts(rowid, {_DOC_COLS})"
             f" SELECT id, {_DOC_COLS} FROM customer_search_docs WHERE id >= :first"), p)
    run(text("INSERT INTO customer_grams(rowid, gname, gother)"
             " SELECT id, gname, gother FROM customer_grams_doc WHERE id >= :first"), p)


def reindex_existing(s: Session, ids: Collection[int]) -> None:
    """Re-index customers that were already indexed, through the search triggers.

    `SET name = name` changes nothing, but an `AFTER UPDATE OF name` trigger fires for
    every row it names: each customer's index rows are rebuilt once by the migration's
    own trigger body, so there is no second copy of that SQL to keep in step.
    """
    ordered = sorted(ids)
    for i in range(0, len(ordered), _CHUNK):
        chunk = ordered[i:i + _CHUNK]
        s.execute(text("UPDATE customers SET name = name WHERE id IN"
                       f" ({', '.join(str(int(c)) for c in chunk)})"))


@contextmanager
def triggers_suspended(s: Session, first_id: int, count: int,
                       touched: Collection[int] = ()) -> Iterator[None]:
    """Around inserting `count` new customers whose ids start at `first_id` and editing
    the already indexed customers `touched` (merges)."""
    triggers = _triggers(s) if count + len(touched) >= BULK_THRESHOLD else []
    for name, _sql in triggers:
        s.execute(text(f'DROP TRIGGER "{name}"'))
    yield
    if triggers:
        s.flush()
        if count:
            index_new_customers(s, first_id)
        for _name, sql in triggers:
            s.execute(text(sql))
        if touched:
            reindex_existing(s, touched)
