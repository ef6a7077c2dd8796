"""Customer list queries: keyset pages for browsing and searching, caller-ID lookup.

CONTRACT (used by ui/ models; keep it stable):
- `CustomerSearch(db, normalizer)`
- `.page(query: str, after: PageKey | None, limit: int) -> SearchPage` — rows in display
  order; `next_after` is an opaque key for the next page (None when exhausted). An empty
  query browses all live customers alphabetically by `name_key`.
- `.caller_id(number: str) -> int | None` — customer id whose phone matches the presented
  number (reversed-digits range scan), or None.
- `.count_hint(query) -> int | None` — cheap count if known (may be None).

This first version is a plain LIKE implementation; it is replaced by FTS5 trigram search.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database


@dataclass(frozen=True)
class CustomerRow:
    """What the list shows for one customer (never an ORM object: 1M rows must stay cheap)."""

    id: int
    name: str
    company: str
    city: str
    phone: str  # first number, display form
    status: str
    tags: str  # comma separated


PageKey = tuple[object, ...]


@dataclass(frozen=True)
class SearchPage:
    rows: list[CustomerRow]
    next_after: PageKey | None


class CustomerSearch:
    def __init__(self, db: Database, normalizer: PhoneNormalizer) -> None:
        self._db = db
        self._normalizer = normalizer

    def page(self, query: str, after: PageKey | None, limit: int) -> SearchPage:
        q = query.strip().casefold()
        params: dict[str, object] = {"limit": limit}
        where = ["c.deleted_at IS NULL"]
        if q:
            params["like"] = f"%{q}%"
            where.append(
                "(c.name_key LIKE :like OR lower(c.company) LIKE :like OR lower(c.city) LIKE :like"
                " OR EXISTS (SELECT 1 FROM phone_numbers p WHERE p.customer_id = c.id"
                "  AND p.deleted_at IS NULL AND (p.raw LIKE :like OR p.e164 LIKE :like))"
                " OR EXISTS (SELECT 1 FROM tags t WHERE t.customer_id = c.id"
                "  AND t.deleted_at IS NULL AND lower(t.name) LIKE :like))"
            )
        if after is not None:
            params["k"], params["i"] = after
            where.append("(c.name_key, c.id) > (:k, :i)")
        sql = text(
            "SELECT c.id, c.name, c.company, c.city, c.status, c.name_key,"
            " (SELECT p.raw FROM phone_numbers p WHERE p.customer_id = c.id AND"
            "  p.deleted_at IS NULL ORDER BY p.position LIMIT 1) AS phone,"
            " (SELECT group_concat(t.name, ', ') FROM tags t WHERE t.customer_id = c.id AND"
            "  t.deleted_at IS NULL) AS tags"
            f" FROM customers c WHERE {' AND '.join(where)}"
            " ORDER BY c.name_key, c.id LIMIT :limit"
        )
        with self._db.engine.connect() as conn:
            result = conn.execute(sql, params).all()
        rows = [CustomerRow(r.id, r.name, r.company, r.city, r.phone or "", r.status,
                            r.tags or "") for r in result]
        nxt: PageKey | None = None
        if len(result) == limit:
            nxt = (result[-1].name_key, result[-1].id)
        return SearchPage(rows, nxt)

    def caller_id(self, number: str) -> int | None:
        rev = self._normalizer.lookup_key(number)
        if len(rev) < 6:
            return None
        sql = text(
            "SELECT p.customer_id FROM phone_numbers p JOIN customers c ON c.id = p.customer_id"
            " WHERE p.rev_digits >= :r AND p.rev_digits < :r || ':'"
            " AND p.deleted_at IS NULL AND c.deleted_at IS NULL LIMIT 1"
        )
        with self._db.engine.connect() as conn:
            row = conn.execute(sql, {"r": rev}).first()
        return int(row[0]) if row else None

    def count_hint(self, query: str) -> int | None:
        return None
