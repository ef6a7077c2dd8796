"""search: FTS5 trigram + short-query grams index, kept in step by triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:30:00

Why it looks like this (see docs/decisions.md, "Customer search"):

- `customer_search_docs` holds one row per *live* customer (id = customers.id): name,
  company, city, tags (space joined) and phone digits (typed digits and E.164 digits of
  every live number). `customer_fts` (FTS5, trigram tokenizer) indexes it as external
  content, so the text is stored once. Trigram matches any substring of >= 3 characters,
  case-insensitively, which covers Latin and Chinese names, companies and digit runs.
- `customer_grams` (FTS5, unicode61, prefix index of 1 character) holds the character
  bigrams of the same fields, because trigram cannot match 1-2 character queries ("王",
  "小明", "北京"). A 2-character query is one token lookup, a 1-character query one prefix
  index lookup: no table scan at 1M rows. Bigrams cover the first 24 characters of the
  name and the first 28 of "city tags company" (names and Chinese fields are short; longer
  text is still found by queries of 3+ characters).
  It is contentless (`content=''`): only rowids are ever read from it.
- The documents are computed by two views, so the triggers (per-row edits) and the bulk
  rebuild (agent_desktop.search.bulk_load) share one definition and cannot drift apart.
- `name_key` (the alphabetical keyset/prefix index) is set by trigger to `lower(name)`,
  so no write path (UI, import, sync) can forget it.

Bulk loads drop the `*_search_*` triggers, insert, rebuild from the views and re-create
the triggers from the SQL they saved from sqlite_master — so this file stays the only
place the triggers are written.
"""

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def _grams(expr: str, positions: int) -> str:
    """SQL for the space-separated character bigrams of `expr` (first `positions`)."""
    return " || ' ' || ".join(f"substr({expr}, {i}, 2)" for i in range(1, positions + 1))


# Digits of a typed number without a regex function: strip the usual punctuation.
_RAW_DIGITS = "p.raw"
for _ch in (" ", "-", "(", ")", "+", ".", "/", "\t"):
    _RAW_DIGITS = f"replace({_RAW_DIGITS}, '{_ch}', '')"

SEARCH_DOC_VIEW = f"""
CREATE VIEW customer_search_doc AS
SELECT c.id AS id, c.name AS name, c.company AS company, c.city AS city,
  coalesce((SELECT group_concat(t.name, ' ') FROM tags t
            WHERE t.customer_id = c.id AND t.deleted_at IS NULL), '') AS tags,
  coalesce((SELECT group_concat({_RAW_DIGITS} || ' ' || coalesce(replace(p.e164, '+', ''), ''), ' ')
            FROM phone_numbers p
            WHERE p.customer_id = c.id AND p.deleted_at IS NULL), '') AS phones
FROM customers c WHERE c.deleted_at IS NULL
"""

GRAMS_DOC_VIEW = f"""
CREATE VIEW customer_grams_doc AS
SELECT id, {_grams('name', 24)} AS gname,
  {_grams("city || ' ' || tags || ' ' || company", 28)} AS gother
FROM customer_search_docs
"""

_DOC_COLS = "name, company, city, tags, phones"


def _refresh(customer_id: str) -> str:
    """Trigger body fragment: rebuild one customer's index rows (or drop them if gone).

    Both FTS tables keep no text of their own, so removing a row means handing FTS5 the
    old values — read from customer_search_docs before that row is replaced.
    """
    return f"""
  INSERT INTO customer_fts(customer_fts, rowid, {_DOC_COLS})
    SELECT 'delete', id, {_DOC_COLS} FROM customer_search_docs WHERE id = {customer_id};
  INSERT INTO customer_grams(customer_grams, rowid, gname, gother)
    SELECT 'delete', id, gname, gother FROM customer_grams_doc WHERE id = {customer_id};
  DELETE FROM customer_search_docs WHERE id = {customer_id};
  INSERT INTO customer_search_docs(id, {_DOC_COLS})
    SELECT id, {_DOC_COLS} FROM customer_search_doc WHERE id = {customer_id};
  INSERT INTO customer_fts(rowid, {_DOC_COLS})
    SELECT id, {_DOC_COLS} FROM customer_search_docs WHERE id = {customer_id};
  INSERT INTO customer_grams(rowid, gname, gother)
    SELECT id, gname, gother FROM customer_grams_doc WHERE id = {customer_id};"""


_NAME_KEY = ("  UPDATE customers SET name_key = lower(NEW.name)"
             " WHERE id = NEW.id AND name_key IS NOT lower(NEW.name);")

TRIGGERS = [
    f"""CREATE TRIGGER customers_search_ai AFTER INSERT ON customers BEGIN
{_NAME_KEY}{_refresh('NEW.id')}
END""",
    f"""CREATE TRIGGER customers_search_au
AFTER UPDATE OF name, name_key, company, city, deleted_at ON customers BEGIN
{_NAME_KEY}{_refresh('NEW.id')}
END""",
    f"""CREATE TRIGGER customers_search_ad AFTER DELETE ON customers BEGIN{_refresh('OLD.id')}
END""",
]
for _table, _cols in (("tags", "name, deleted_at, customer_id"),
                      ("phone_numbers", "raw, e164, deleted_at, customer_id")):
    TRIGGERS += [
        f"""CREATE TRIGGER {_table}_search_ai AFTER INSERT ON {_table} BEGIN{_refresh('NEW.customer_id')}
END""",
        f"""CREATE TRIGGER {_table}_search_au AFTER UPDATE OF {_cols} ON {_table} BEGIN{_refresh('OLD.customer_id')}{_refresh('NEW.customer_id')}
END""",
        f"""CREATE TRIGGER {_table}_search_ad AFTER DELETE ON {_table} BEGIN{_refresh('OLD.customer_id')}
END""",
    ]

TRIGGER_NAMES = [t.split()[2] for t in TRIGGERS]


def upgrade() -> None:
    op.execute("CREATE TABLE customer_search_docs (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
               " company TEXT NOT NULL, city TEXT NOT NULL, tags TEXT NOT NULL,"
               " phones TEXT NOT NULL)")
    op.execute("CREATE VIRTUAL TABLE customer_fts USING fts5("
               "name, company, city, tags, phones, tokenize='trigram',"
               " content='customer_search_docs', content_rowid='id')")
    op.execute("CREATE VIRTUAL TABLE customer_grams USING fts5("
               "gname, gother, tokenize='unicode61 remove_diacritics 0', prefix='1', detail='column', content='')")
    op.execute(SEARCH_DOC_VIEW)
    op.execute(GRAMS_DOC_VIEW)
    # Index whatever an earlier version already stored.
    op.execute("UPDATE customers SET name_key = lower(name) WHERE name_key IS NOT lower(name)")
    op.execute(f"INSERT INTO customer_search_docs(id, {_DOC_COLS}) "
               f"SELECT id, {_DOC_COLS} FROM customer_search_doc")
    op.execute("INSERT INTO customer_fts(customer_fts) VALUES ('rebuild')")
    op.execute("INSERT INTO customer_grams(rowid, gname, gother) "
               "SELECT id, gname, gother FROM customer_grams_doc")
    for sql in TRIGGERS:
        op.execute(sql)


def downgrade() -> None:
    for name in TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP VIEW IF EXISTS customer_grams_doc")
    op.execute("DROP VIEW IF EXISTS customer_search_doc")
    op.execute("DROP TABLE IF EXISTS customer_grams")
    op.execute("DROP TABLE IF EXISTS customer_fts")
    op.execute("DROP TABLE IF EXISTS customer_search_docs")
