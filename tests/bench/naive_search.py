"""The naive baseline for search and caller ID: LIKE scans, as a first version would do.

Same result shape as CustomerSearch's first page (50 rows in name order), so the timings
compare like with like.
"""

from __future__ import annotations

import sqlite3

from agent_desktop.phones import digits_of

_SEARCH = (
    "SELECT c.id, c.name, c.company, c.city, c.status FROM customers c"
    " WHERE c.deleted_at IS NULL AND (c.name LIKE :q OR c.company LIKE :q OR c.city LIKE :q"
    " OR EXISTS (SELECT 1 FROM phone_numbers p WHERE p.customer_id = c.id"
    "  AND p.deleted_at IS NULL AND (p.raw LIKE :q OR p.e164 LIKE :d))"
    " OR EXISTS (SELECT 1 FROM tags t WHERE t.customer_id = c.id"
    "  AND t.deleted_at IS NULL AND t.name LIKE :q))"
    " ORDER BY c.name_key, c.id LIMIT :limit"
)


class NaiveSearch:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path)

    def page(self, query: str, limit: int = 50) -> list[tuple[object, ...]]:
        q = query.strip()
        digits = digits_of(q)
        return self._conn.execute(_SEARCH, {"q": f"%{q}%", "d": f"%{digits or q}%",
                                            "limit": limit}).fetchall()

    def caller_id(self, number: str) -> int | None:
        digits = digits_of(number).lstrip("0")
        row = self._conn.execute(
            "SELECT customer_id FROM phone_numbers WHERE deleted_at IS NULL"
            " AND e164 LIKE ? LIMIT 1", (f"%{digits[-9:]}",)).fetchone()
        return int(row[0]) if row else None

    def close(self) -> None:
        self._conn.close()
