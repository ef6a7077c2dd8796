"""A first download through every fast path (search triggers and secondary indexes off,
tuples straight into SQLite, one bulk search rebuild) ends with the same store as the
same pages applied the slow way (general path, triggers firing per row) — also when the
download is interrupted and resumed, or when a page has to fall back to the general path.

Rows are compared by uuid (local ids are private to each store) and the search index by
its documents and the FTS5 vocabularies (term, documents, occurrences) of both tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer
from sync.client import client as client_module
from sync.client.client import SyncClient
from sync.client.errors import TransientError
from sync.server.__main__ import demo_customer_rows
from tests.unit.test_sync_bulk_apply import PagedServer, index_sql, trigger_count

CUSTOMERS = 120
PAGE = 97  # pages cut through customers' children: parents found in earlier pages

TABLE_COLUMNS = {
    "customers": "c.uuid, c.name, c.name_key, c.company, c.city, c.country, c.email, c.status,"
                 " c.stage, c.do_not_call, c.owner, c.created_at, c.deleted_at,"
                 " c.server_version",
    "phone_numbers": "t.uuid, c.uuid, t.label, t.raw, t.e164, t.rev_digits, t.valid,"
                     " t.position, t.deleted_at, t.server_version",
    "tags": "t.uuid, c.uuid, t.name, t.deleted_at, t.server_version",
    "notes": "t.uuid, c.uuid, t.body, t.author, t.created_at, t.deleted_at",
    "tasks": "t.uuid, c.uuid, t.title, t.due_at, t.done_at, t.created_at, t.deleted_at",
}


def wire_pages() -> list[list[dict[str, Any]]]:
    changes = []
    for i, row in enumerate(demo_customer_rows(CUSTOMERS)):
        data = {k: v for k, v in row.items() if k not in ("entity", "uuid")}
        if row["entity"] == "tag" and i % 7 == 0:
            data["deleted_at"] = "2026-01-01T00:00:00.000+00:00"  # a tombstone leaves search
        changes.append({"entity": row["entity"], "uuid": row["uuid"], "op": "upsert",
                        "version": 1 + i % 3, "data": data})
    return [changes[i:i + PAGE] for i in range(0, len(changes), PAGE)]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    fast, slow = Database.open(tmp_path / "fast.sqlite3"), Database.open(tmp_path / "slow.sqlite3")
    yield fast, slow
    fast.close()
    slow.close()


def pull_slowly(db: Database, pages: list[list[dict[str, Any]]]) -> None:
    """The reference: no fast path at all (general path, triggers firing per row)."""
    client = SyncClient(db, PagedServer(pages))  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(client_module, "suspend_search_triggers", lambda _s, **_kw: False)
        mp.setattr(client_module, "apply_initial_page", lambda *_a: None)
        client.pull()


def snapshot(db: Database) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with db.engine.connect() as conn:
        for table, cols in TABLE_COLUMNS.items():
            join = "" if table == "customers" else " JOIN customers c ON c.id = t.customer_id"
            alias = "c" if table == "customers" else "t"
            out[table] = sorted(conn.execute(text(
                f"SELECT {cols} FROM {table} {alias}{join}")).all())
        out["search_docs"] = sorted(conn.execute(text(
            "SELECT c.uuid, d.name, d.company, d.city, d.tags, d.phones"
            " FROM customer_search_docs d JOIN customers c ON c.id = d.id")).all())
        for fts in ("customer_fts", "customer_grams"):
            conn.execute(text(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.v_{fts}"
                              f" USING fts5vocab(main, {fts}, row)"))
            out[fts] = conn.execute(text(f"SELECT term, doc, cnt FROM temp.v_{fts}"
                                         " ORDER BY term")).all()
    out["triggers"] = trigger_count(db)
    out["indexes"] = index_sql(db)
    return out


def assert_same(fast: Database, slow: Database) -> None:
    a, b = snapshot(fast), snapshot(slow)
    assert len(a["customers"]) == CUSTOMERS and len(a["search_docs"]) == CUSTOMERS
    assert a["customer_fts"] and a["customer_grams"] and a["indexes"] and a["triggers"]
    for key in b:
        assert a[key] == b[key], key
    for store in (fast, slow):  # and searching finds the same customers
        search = CustomerSearch(store, PhoneNormalizer("DE"))
        for query in ("王", "Ltd", "6581012345", "trade", "新客户"):
            assert [r.name for r in search.page(query, None, 200).rows] == [
                r.name for r in CustomerSearch(slow, PhoneNormalizer("DE")).page(
                    query, None, 200).rows], query


def test_fast_first_download_equals_the_slow_one(stores: tuple[Database, Database]) -> None:
    fast, slow = stores
    pages = wire_pages()
    assert len(pages) >= 4
    client = SyncClient(fast, PagedServer(pages))  # type: ignore[arg-type]
    client.group_rows = 150  # some pages share a transaction, some do not
    result = client.pull()
    assert result.applied == sum(len(p) for p in pages) and not result.skipped
    pull_slowly(slow, pages)
    assert_same(fast, slow)


@pytest.mark.parametrize("fail_at", [1, 3])
def test_interrupted_and_resumed_download_converges(stores: tuple[Database, Database],
                                                    fail_at: int) -> None:
    fast, slow = stores
    pages = wire_pages()
    failed: list[int] = []

    def fail_once(n: int) -> None:
        if n == fail_at and not failed:
            failed.append(n)
            raise TransientError("connection reset")

    client = SyncClient(fast, PagedServer(pages, on_request=fail_once))  # type: ignore[arg-type]
    client.group_rows = 1
    with pytest.raises(TransientError):
        client.pull()
    # between the attempts: everything restored and searchable as far as it got
    assert trigger_count(fast) == trigger_count(slow)
    assert index_sql(fast) == index_sql(slow)
    client.pull()
    pull_slowly(slow, pages)
    assert_same(fast, slow)


def test_page_with_a_local_row_falls_back_and_still_converges(
        stores: tuple[Database, Database]) -> None:
    """A customer this install created (pushed, now sent back by the snapshot) makes its
    page take the general path in the middle of a fast download."""
    fast, slow = stores
    pages = wire_pages()
    mine = next(c for c in pages[2] if c["entity"] == "customer")
    for store in (fast, slow):
        with store.transaction(applying_remote=True) as s:
            s.add(Customer(uuid=mine["uuid"], name="Old local name"))
    client = SyncClient(fast, PagedServer(pages))  # type: ignore[arg-type]
    client.group_rows = 1
    client.pull()
    pull_slowly(slow, pages)
    assert_same(fast, slow)
