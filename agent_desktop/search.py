"""Customer list queries: keyset pages for browsing and searching, caller-ID lookup.

CONTRACT (used by ui/ models; keep it stable):
- `CustomerSearch(db, normalizer)`
- `.page(query: str, after: PageKey | None, limit: int) -> SearchPage` — rows in display
  order; `next_after` is an opaque key for the next page (None when exhausted). An empty
  query browses all live customers alphabetically by `name_key`.
- `.caller_id(number: str) -> int | None` — customer id whose phone matches the presented
  number (reversed-digits range scan), or None.
- `.count_hint(query) -> int | None` — cheap count if known (may be None).
- `.prepare()` — one-off costs of a session (digit sample, phone metadata), any thread.

How a query runs (the tables and triggers are made by migration 0002; the reasoning is in
docs/decisions.md, "Customer search"). Results come in tiers, each read in an index order
and paged by keyset, so the best matches come first and nothing ever sorts 1M rows:

1. name starts with the query          — range scan of `ix_customers_name_key_id`
2. every term occurs in the name       — FTS5, rowid order (1-2 character queries only)
3. every term occurs anywhere (else)   — FTS5 (name, company, city, tags, phone digits)

Terms of >= 3 characters go to the trigram table `customer_fts` (tiers 1 and 3); when
every term is shorter (Chinese names such as "王" or "小明", cities such as "北京") the
bigram table `customer_grams` answers (tiers 1, 2, 3: a name containing "小明" before a
company containing it). A query made only of digits and phone punctuation ("138 0013",
"+49 151") is searched as one run of digits in the phones column only; from 5 digits on,
FTS5 is asked only for the two rarest trigrams of the run NEAR each other and LIKE checks
the run itself (`DigitStats`: common trigrams such as "861" make the phrase walk huge
doclists). Reads go straight to the pooled sqlite3 handle (`_fetch`); display columns come
from the covering indexes of migration 0003.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from agent_desktop.list_query import DISPLAY_COLUMNS as _DISPLAY
from agent_desktop.list_query import ID_COL as _ID
from agent_desktop.list_query import NAME_KEY_COL as _NAME_KEY
from agent_desktop.phones import PhoneNormalizer, digits_of
from agent_desktop.search_digits import DigitStats
from agent_desktop.store.db import Database

log = logging.getLogger(__name__)

# The upper bound of a prefix range: sorts after every string that starts with the prefix.
_MAX_CHAR = "\U0010ffff"
_PHONE_LIKE = re.compile(r"^[\d\s\-+().\/]+$")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TRIGGER_SUFFIX = "_search_"
# Reversed digit keys shorter than this identify nobody (a 4-digit extension, "110").
_MIN_CALLER_DIGITS = 6


def name_key_of(name: str) -> str:
    """The stored `name_key` of a name: SQLite's `lower()`, which folds ASCII only.

    The triggers compute it in SQL, the bulk loader in Python; both must agree byte for byte
    or prefix search and browsing would miss rows. Non-ASCII case (É, Ü) is still found
    case-insensitively by tiers 2-3, whose tokenizers fold Unicode.
    """
    return name.translate(_ASCII_LOWER)


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


@dataclass(frozen=True)
class _Plan:
    """A parsed query: the name prefix (None: no prefix tier) and the FTS expressions."""

    prefix: str | None
    table: str  # customer_fts | customer_grams | customer_search_docs (1-2 digits)
    match_any: str  # every term anywhere (a LIKE pattern for customer_search_docs)
    match_name: str | None  # every term in the name; None: no name tier (digit queries)
    digits: str = ""  # a digit query of >= 3 digits (may be narrowed by `DigitStats`)




def _quote(term: str) -> str:
    """An FTS5 string literal: the term taken verbatim, never as query syntax."""
    return '"' + term.replace('"', '""') + '"'


def ascii_digits(text: str) -> str:
    """Fullwidth (Chinese IME) and other Unicode digits as ASCII: phone data is ASCII."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def plan_query(query: str) -> _Plan | None:
    """Turn what the agent typed into a search plan; None means "browse everything"."""
    q = ascii_digits(" ".join(query.split()))
    if not q:
        return None
    if _PHONE_LIKE.match(q) and digits_of(q):
        # Digits only ever live in the phones column: no name tiers (an empty name tier
        # still costs a scan of the candidates' position lists), one column filter.
        digits = digits_of(q)
        if len(digits) >= 3:
            return _Plan(None, "customer_fts", f"phones : {_quote(digits)}", None, digits)
        # 1-2 digits occur in nearly every number: a LIKE walk in id order stops at once.
        return _Plan(None, "customer_search_docs", f"%{digits}%", None)
    terms = q.split(" ")
    prefix = name_key_of(q)
    if any(len(t) >= 3 for t in terms):
        # Short terms next to long ones still narrow the result: in the trigram table a
        # 1-2 character phrase is not indexed, so they become a LIKE filter (_tier).
        long_terms = [t for t in terms if len(t) >= 3]
        expr = " AND ".join(_quote(t) for t in long_terms)
        # No separate "name contains" tier here: when no name contains the text but other
        # fields do (a city, a company word), `name : (...)` must check the position lists
        # of every candidate row — ~10 ms at 1M, twice the budget. Prefix, then anywhere.
        return _Plan(prefix, "customer_fts", f"({expr})", None)
    # Every term is 1-2 characters: bigram tokens, and 1-character terms as a prefix query
    # served by the 1-character prefix index.
    parts = [_quote(t) + ("*" if len(t) == 1 else "") for t in terms]
    expr = " AND ".join(parts)
    return _Plan(prefix, "customer_grams", f"({expr})", f"gname : ({expr})")


def _short_terms(query: str) -> list[str]:
    q = ascii_digits(" ".join(query.split()))
    if _PHONE_LIKE.match(q) and digits_of(q):
        return []
    terms = q.split(" ")
    if not any(len(t) >= 3 for t in terms):
        return []  # the grams table handles them
    return [t for t in terms if len(t) < 3]



class CustomerSearch:
    """Read-only queries behind the customer list and caller ID; safe from any thread."""

    def __init__(self, db: Database, normalizer: PhoneNormalizer) -> None:
        self._db = db
        self._normalizer = normalizer
        self._digit_stats = DigitStats()

    # ----------------------------------------------------------------- list pages
    def page(self, query: str, after: PageKey | None, limit: int) -> SearchPage:
        if limit <= 0:
            raise ValueError(f"A page needs at least one row (limit={limit}).")
        started = time.perf_counter()
        plan = plan_query(query)
        with self._db.engine.connect() as conn:
            if plan is None:
                page = self._browse(conn, after, limit)
            else:
                page = self._search(conn, plan, _short_terms(query), after, limit)
        log.debug("search %r after=%r: %d rows in %.1f ms", query, after, len(page.rows),
                  (time.perf_counter() - started) * 1000)
        return page

    def _browse(self, conn: Connection, after: PageKey | None, limit: int) -> SearchPage:
        params: dict[str, object] = {"limit": limit + 1}
        where = "c.deleted_at IS NULL"
        if after is not None:
            _tier, params["k"], params["i"] = _check_key(after, 0)
            where += " AND (c.name_key, c.id) > (:k, :i)"
        sql = (f"SELECT {_DISPLAY} FROM customers c WHERE {where}"
               " ORDER BY c.name_key, c.id LIMIT :limit")
        result = _fetch(conn, sql, params)
        rows = [_row(r) for r in result[:limit]]
        nxt: PageKey | None = None
        if len(result) > limit:
            last = result[limit - 1]
            nxt = (0, last[_NAME_KEY], last[_ID])
        return SearchPage(rows, nxt)

    def _search(self, conn: Connection, plan: _Plan, short: list[str],
                after: PageKey | None, limit: int) -> SearchPage:
        """Walk the tiers from the `after` position until `limit + 1` rows are found."""
        tier = 1 if after is None else _tier_of(_check_key(after, None))
        if plan.digits:
            near = DigitStats.narrow(plan.digits, self._digit_stats.share(conn))
            if near is not None:
                a, b, gap = near
                plan = _Plan(None, "customer_fts", f"phones : NEAR({_quote(a)} {_quote(b)},"
                             f" {gap})", None, plan.digits)
            else:
                plan = _Plan(None, plan.table, plan.match_any, None)  # the exact phrase
        want = limit + 1
        found: list[tuple[PageKey, CustomerRow]] = []
        while tier <= 3 and len(found) < want:
            start = after if after is not None and _tier_of(after) == tier else None
            found += self._tier(conn, plan, short, tier, start, want - len(found))
            tier += 1
        rows = [r for _k, r in found[:limit]]
        nxt = found[limit - 1][0] if len(found) > limit else None
        return SearchPage(rows, nxt)

    def _tier(self, conn: Connection, plan: _Plan, short: list[str], tier: int,
              after: PageKey | None, limit: int) -> list[tuple[PageKey, CustomerRow]]:
        params: dict[str, object] = {"limit": limit}
        extra = ""
        for n, term in enumerate(short):
            # Short terms beside long ones: a plain LIKE on the few candidate rows.
            params[f"s{n}"] = "%" + term.replace("\\", "\\\\").replace("%", "\\%")\
                .replace("_", "\\_") + "%"
            extra += (f" AND (f.name || ' ' || f.company || ' ' || f.city || ' ' || f.tags"
                      f" || ' ' || f.phones) LIKE :s{n} ESCAPE '\\'")
        if plan.prefix is not None:
            params["p"], params["pe"] = plan.prefix, plan.prefix + _MAX_CHAR
        not_prefix = ("" if plan.prefix is None
                      else " AND NOT (c.name_key >= :p AND c.name_key < :pe)")
        if tier == 1:
            if plan.prefix is None:
                return []
            where = "c.deleted_at IS NULL AND c.name_key >= :p AND c.name_key < :pe"
            if after is not None:
                _t, params["k"], params["i"] = _check_key(after, 1)
                where += " AND (c.name_key, c.id) > (:k, :i)"
            # No short-term filter needed: a name starting with the whole query contains
            # every term of it.
            sql = (f"SELECT {_DISPLAY} FROM customers c WHERE {where}"
                   " ORDER BY c.name_key, c.id LIMIT :limit")
            result = _fetch(conn, sql, params)
            return [((1, r[_NAME_KEY], r[_ID]), _row(r)) for r in result]
        if plan.match_name is None:
            if tier == 2:
                return []
            params["m"] = plan.match_any
        else:
            params["m"] = plan.match_name if tier == 2 else (
                f"{plan.match_any} NOT {plan.match_name}")
        if plan.table == "customer_search_docs":
            where = "f.phones LIKE :m"
        else:
            where = f"f.{plan.table} MATCH :m"
        if after is not None:
            _t, params["i"] = _check_key(after, tier)
            where += " AND f.rowid > :i"
        if plan.table != "customer_fts":
            extra = ""
        join = ""
        if plan.digits:
            # NEAR of two trigrams narrowed the candidates; the digit run itself decides.
            join = " CROSS JOIN customer_search_docs d ON d.id = f.rowid"
            extra += " AND d.phones LIKE :run"
            params["run"] = f"%{plan.digits}%"
        sql = (f"SELECT {_DISPLAY} FROM {plan.table} f{join}"
               f" CROSS JOIN customers c ON c.id = f.rowid"
               f" WHERE {where}{not_prefix}{extra} ORDER BY f.rowid LIMIT :limit")
        result = _fetch(conn, sql, params)
        return [((tier, r[_ID]), _row(r)) for r in result]

    # ----------------------------------------------------------------- caller ID
    def caller_id(self, number: str) -> int | None:
        """The live customer whose number matches the presented caller ID, or None.

        Tries the E.164 form first (matches +86…, 0086…, national 0… alike), then the digits
        as presented without leading zeros (a stored number that ends in them). The range
        scan returns an exact match first because it sorts before longer keys.
        """
        keys: list[str] = []
        e164_key = self._normalizer.lookup_key(number)
        if e164_key:
            keys.append(e164_key)
        raw = digits_of(ascii_digits(number)).lstrip("0")[::-1]
        if raw and raw not in keys:
            keys.append(raw)
        sql = ("SELECT p.customer_id FROM phone_numbers p JOIN customers c ON c.id = p.customer_id"
               " WHERE p.rev_digits >= :r AND p.rev_digits < :r || ':'"
               " AND p.deleted_at IS NULL AND c.deleted_at IS NULL"
               " ORDER BY p.rev_digits, p.id LIMIT 1")
        with self._db.engine.connect() as conn:
            for key in keys:
                if len(key) < _MIN_CALLER_DIGITS:
                    continue
                rows = _fetch(conn, sql, {"r": key})
                if rows:
                    return int(rows[0][0])
        return None

    def prepare(self) -> None:
        """Pay a session's one-off costs now, off the GUI thread (e.g. when the warm-up
        ends): the digit trigram sample (~12 ms of CPU at 1M, else paid by the first digit
        query) and the phone metadata of the default region (~4 ms, else paid by the
        first caller ID)."""
        with self._db.engine.connect() as conn:
            self._digit_stats.share(conn)
        # A national number (no "+") is parsed with the default region's metadata.
        self._normalizer.lookup_key("1234567")

    def count_hint(self, query: str) -> int | None:
        """Counting matches would cost as much as the search itself at 1M rows: unknown."""
        return None


def _fetch(conn: Connection, sql: str, params: dict[str, object]) -> list[Any]:
    """Run a read on the pooled connection's sqlite3 handle, bypassing SQLAlchemy's
    statement and result layers: they cost ~0.4 ms per page, more than SQLite itself
    (0.15-0.3 ms for a 50-row page at 1M customers, measured with thread CPU time).
    sqlite3 binds the same `:name` parameters."""
    driver = conn.connection.driver_connection
    assert driver is not None
    return list(driver.execute(sql, params).fetchall())


def _row(r: Sequence[Any]) -> CustomerRow:
    return CustomerRow(r[0], r[1], r[2], r[3], r[4] or "", r[5], r[6] or "")


def _tier_of(key: PageKey) -> int:
    tier = key[0]
    assert isinstance(tier, int)
    return tier


def _check_key(after: PageKey, tier: int | None) -> PageKey:
    """Reject a page key that did not come from this module (clear error, not bad SQL)."""
    ok = isinstance(after, tuple) and len(after) >= 2 and isinstance(after[0], int)
    if ok and tier is not None:
        ok = after[0] == tier and len(after) == (3 if tier in (0, 1) else 2)
    if ok and tier is None:
        ok = after[0] in (1, 2, 3)
    if not ok:
        raise ValueError(f"Not a page key from this search: {after!r}")
    return after


# --------------------------------------------------------------------- bulk loading
def _search_triggers(conn: Connection) -> list[tuple[str, str]]:
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?"
        " ORDER BY name", (f"%{_TRIGGER_SUFFIX}%",)).all()
    return [(str(r[0]), str(r[1])) for r in rows]


_DOC_COLS = "name, company, city, tags, phones"
_BULK_CACHE_KIB = -262144  # negative: KiB, i.e. 256 MiB


def rebuild_index(conn: Connection, since_id: int = 0) -> None:
    """Recompute name_key, the search documents and both FTS tables for ids > since_id.

    Uses the views the triggers use, so a rebuilt row equals a trigger-maintained one.
    """
    started = time.perf_counter()
    run = conn.exec_driver_sql
    run("UPDATE customers SET name_key = lower(name)"
        " WHERE id > ? AND name_key IS NOT lower(name)", (since_id,))
    if since_id <= 0:
        run("INSERT INTO customer_fts(customer_fts) VALUES ('delete-all')")
        run("INSERT INTO customer_grams(customer_grams) VALUES ('delete-all')")
    else:
        run(f"INSERT INTO customer_fts(customer_fts, rowid, {_DOC_COLS})"
            f" SELECT 'delete', id, {_DOC_COLS} FROM customer_search_docs WHERE id > ?",
            (since_id,))
        run("INSERT INTO customer_grams(customer_grams, rowid, gname, gother)"
            " SELECT 'delete', id, gname, gother FROM customer_grams_doc WHERE id > ?",
            (since_id,))
    run("DELETE FROM customer_search_docs WHERE id > ?", (since_id,))
    run(f"INSERT INTO customer_search_docs(id, {_DOC_COLS})"
        f" SELECT id, {_DOC_COLS} FROM customer_search_doc WHERE id > ?", (since_id,))
    if since_id <= 0:
        run("INSERT INTO customer_fts(customer_fts) VALUES ('rebuild')")
    else:
        run(f"INSERT INTO customer_fts(rowid, {_DOC_COLS})"
            f" SELECT id, {_DOC_COLS} FROM customer_search_docs WHERE id > ?", (since_id,))
    run("INSERT INTO customer_grams(rowid, gname, gother)"
        " SELECT id, gname, gother FROM customer_grams_doc WHERE id > ?", (since_id,))
    # Merge the b-tree segments written by the bulk insert: fewer segments, faster MATCH.
    run("INSERT INTO customer_fts(customer_fts) VALUES ('optimize')")
    run("INSERT INTO customer_grams(customer_grams) VALUES ('optimize')")
    log.info("search index rebuilt for customers after id %d in %.1f s", since_id,
             time.perf_counter() - started)


@contextmanager
def bulk_load(db: Database) -> Iterator[Connection]:
    """One transaction for inserting many NEW customers fast; the index is rebuilt after.

    The search triggers cost ~10x per row, so they are dropped for the duration (their SQL
    is read back from sqlite_master, so migration 0002 stays their only definition) and
    re-created before commit. Only customers with ids above the current maximum are
    indexed afterwards: use it to add customers with their phones/tags, not to edit
    existing ones. DDL is transactional in SQLite, so a failure rolls everything back,
    triggers included. Core statements bypass the ORM outbox hook on purpose: bulk rows
    are local seed data or already on the server.
    """
    with db.engine.connect() as conn:
        # A bigger page cache for the duration: random-order uuid index inserts thrash the
        # default 32 MB cache at 1M rows. Per connection; restored before it goes back.
        previous = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
        conn.exec_driver_sql(f"PRAGMA cache_size = {_BULK_CACHE_KIB}")
        conn.commit()
        try:
            with conn.begin():
                # Python's sqlite3 (legacy transaction mode) runs DDL such as DROP TRIGGER
                # outside any transaction unless one is open: begin explicitly so that a
                # failure restores the triggers. IMMEDIATE takes the write lock now rather
                # than failing halfway.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                since = int(conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM customers")
                            .scalar_one())
                triggers = _search_triggers(conn)
                if not triggers:
                    raise RuntimeError(
                        "The search triggers are missing: is the database migrated?")
                for name, _sql in triggers:
                    conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
                yield conn
                rebuild_index(conn, since)
                for _name, sql in triggers:
                    conn.exec_driver_sql(sql)
        finally:
            conn.rollback()
            conn.exec_driver_sql(f"PRAGMA cache_size = {previous}")
            conn.commit()
