"""The customer list's display columns, shared by the search and the first-frame reader.

Kept free of SQLAlchemy so the first frame can use it before the store is imported; one
definition so the first page and the real search can never show different rows.
Columns are in `CustomerRow` order, then name_key (for the keyset key), and are read by
position because SQLAlchemy's by-name Row access costs ~15 µs a row, a millisecond a page.
Migration 0003's covering indexes hold every column named here.
"""

from __future__ import annotations

DISPLAY_COLUMNS = (
    "c.id, c.name, c.company, c.city,"
    " (SELECT p.raw FROM phone_numbers p WHERE p.customer_id = c.id AND"
    "  p.deleted_at IS NULL ORDER BY p.position, p.id LIMIT 1) AS phone,"
    " c.status,"
    " (SELECT group_concat(t.name, ', ') FROM tags t WHERE t.customer_id = c.id AND"
    "  t.deleted_at IS NULL) AS tags,"
    " c.name_key"
)
ID_COL, NAME_KEY_COL = 0, 7
