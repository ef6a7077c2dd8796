"""The customer list's first page straight from SQLite, before SQLAlchemy is imported.

Why: an agent waits for rows on screen, and at start-up importing SQLAlchemy (~280 ms of
CPU), the ORM models, phonenumbers and the detail pane's modules costs far more than the
query itself (~1 ms at 1M customers). So the first frame is painted from this reader —
stdlib `sqlite3`, the same keyset query and the same page keys as
`CustomerSearch._browse` — and the composition root builds the rest right after that
frame, then hands the list over to the real `CustomerSearch` without a reset (same rows,
same selection, same scroll position).

It only ever *reads*, and it steps aside (`open` returns None) whenever the full start-up
path has something to say or do first: no database yet, not an SQLite file, locked by
another window, a schema that is not at the newest migration (Alembic must run first),
or no customers (demo data is generated). That path then produces exactly the messages
it always did; this module never reports a refusal itself.

The display columns (`agent_desktop.list_query`) and the migration head
(`agent_desktop.store.revision`) are shared with the search and the store, and a test
checks that the rows and page keys equal `CustomerSearch.page("", ...)`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_desktop.list_query import DISPLAY_COLUMNS as _DISPLAY
from agent_desktop.list_query import ID_COL as _ID
from agent_desktop.list_query import NAME_KEY_COL as _NAME_KEY
from agent_desktop.store.revision import read_head_revision

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"

_BROWSE_TIER = 0  # the first element of CustomerSearch's browse page keys


class SearchNotReady(RuntimeError):
    """A search was asked of the first-page reader (only browsing is served here)."""


@dataclass(frozen=True)
class FirstPageRow:
    """One list row; the same fields as `agent_desktop.search.CustomerRow`."""

    id: int
    name: str
    company: str
    city: str
    phone: str
    status: str
    tags: str


@dataclass(frozen=True)
class FirstPage:
    rows: list[FirstPageRow]
    next_after: tuple[object, ...] | None


class FirstPageReader:
    """Browse pages of live customers in name order, read with plain `sqlite3`.

    A `PageSource` for `ui.customer_list_model.CustomerListModel` until the real search is
    built; GUI thread only; `close()` once it has been replaced.
    """

    def __init__(self, conn: sqlite3.Connection, first: FirstPage, limit: int) -> None:
        self._conn = conn
        self._pending: FirstPage | None = first
        self._limit = limit

    @classmethod
    def open(cls, path: Path, limit: int) -> FirstPageReader | None:
        """A reader holding the first page of `limit` rows, or None when the full start-up
        must go first (it reports any problem itself)."""
        try:
            with path.open("rb") as fh:
                if fh.read(16) != SQLITE_HEADER:
                    return None
        except OSError:
            return None  # missing or unreadable: Database.open says which, plainly
        try:
            conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=0.5,
                                   isolation_level=None)
        except sqlite3.Error:
            return None
        try:
            page = cls._first(conn, limit)
        except sqlite3.Error as exc:
            # Locked, damaged, an unexpected schema: the full path explains it.
            log.info("first page not read early (%s); the full start-up path runs", exc)
            conn.close()
            return None
        if page is None:
            conn.close()
            return None
        return cls(conn, page, limit)

    @classmethod
    def _first(cls, conn: sqlite3.Connection, limit: int) -> FirstPage | None:
        conn.execute("PRAGMA busy_timeout=500")
        # Another window holding the database must be refused before anything is shown,
        # as Database.open does: probe the write lock exactly as its preflight does.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        has_version = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        ).fetchone()
        if not has_version:
            return None
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if version is None or version[0] != read_head_revision():
            return None  # a migration runs first (with its backup)
        conn.execute("PRAGMA query_only=1")
        conn.execute("PRAGMA cache_size=-8000")
        page = cls._browse(conn, None, limit)
        return page if page.rows else None

    @staticmethod
    def _browse(conn: sqlite3.Connection, after: Sequence[Any] | None,
                limit: int) -> FirstPage:
        params: list[object] = []
        where = "c.deleted_at IS NULL"
        if after is not None:
            where += " AND (c.name_key, c.id) > (?, ?)"
            params += [after[1], after[2]]
        params.append(limit + 1)
        result = conn.execute(f"SELECT {_DISPLAY} FROM customers c WHERE {where}"
                              " ORDER BY c.name_key, c.id LIMIT ?", params).fetchall()
        rows = [FirstPageRow(r[0], r[1], r[2], r[3], r[4] or "", r[5], r[6] or "")
                for r in result[:limit]]
        nxt: tuple[object, ...] | None = None
        if len(result) > limit:
            last = result[limit - 1]
            nxt = (_BROWSE_TIER, last[_NAME_KEY], last[_ID])
        return FirstPage(rows, nxt)

    def page(self, query: str, after: tuple[object, ...] | None, limit: int) -> FirstPage:
        """Further browse pages (the agent scrolls before the full app is up)."""
        if query.strip():
            raise SearchNotReady("Search is still starting; try again in a moment.")
        if limit <= 0:
            raise ValueError(f"A page needs at least one row (limit={limit}).")
        if after is not None and not (isinstance(after, tuple) and len(after) == 3
                                      and after[0] == _BROWSE_TIER):
            raise ValueError(f"Not a page key from this list: {after!r}")
        if after is None and limit == self._limit and self._pending is not None:
            first, self._pending = self._pending, None  # read once, at open: served once
            return first
        return self._browse(self._conn, after, limit)

    def close(self) -> None:
        self._conn.close()
