"""Initial-download fast path (sync/client/initial_apply.py) on a real SQLite store: new rows
go in with their parents' local ids; anything unusual rolls the savepoint back (None) and
leaves the page to the general path, with nothing half-written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, PhoneNumber, SyncState
from sync.client.initial_apply import apply_initial_page

NOW = "2026-11-22T10:00:00Z"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "i.sqlite3")
    yield d
    d.close()


def cust(i: int, name: str) -> dict[str, Any]:
    return {"entity": "customer", "uuid": f"c-{i}", "op": "upsert", "version": 3,
            "data": {"name": name, "city": "Köln", "unknown_field": 1}}


def phone(i: int, parent: int, raw: str) -> dict[str, Any]:
    return {"entity": "phone", "uuid": f"p-{i}", "op": "upsert", "version": 1,
            "data": {"customer_uuid": f"c-{parent}", "raw": raw, "e164": None}}


def count(db: Database, model: Any) -> int:
    with db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_new_rows_get_parent_ids_and_derived_columns(db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        result = apply_initial_page(s, [cust(1, "Anna ÄBC"), phone(1, 1, "+49 (151) 23-4"),
                                        cust(2, "Bob"), phone(2, 2, "０３")], NOW)
    assert result is not None and result.applied == 4
    with db.transaction() as s:
        anna = s.scalars(select(Customer).where(Customer.uuid == "c-1")).one()
        assert (anna.name_key, anna.server_version, anna.updated_at) == ("anna Äbc", 3, NOW)
        assert anna.status == "new"  # column default for a field the wire did not send
        phones = {p.uuid: p for p in s.scalars(select(PhoneNumber))}
        assert phones["p-1"].customer_id == anna.id
        assert phones["p-1"].rev_digits == "43215194"
        assert phones["p-2"].rev_digits == "30"  # fullwidth digits folded like digits_of


def test_existing_row_rolls_the_whole_page_back(db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        assert apply_initial_page(s, [cust(1, "Anna")], NOW) is not None
    with db.transaction(applying_remote=True) as s:
        # c-2 and its phone would insert fine, but c-1 exists: none of it stays
        assert apply_initial_page(s, [cust(2, "Bob"), phone(2, 2, "1"), cust(1, "Anna 2")],
                                  NOW) is None
        s.add(SyncState(key="after_rollback", value="1"))  # the transaction is still usable
    assert count(db, Customer) == 1 and count(db, PhoneNumber) == 0


@pytest.mark.parametrize("page", [
    [phone(9, 404, "1")],  # parent neither in the page nor in the database
    [{**cust(1, "A"), "op": "delete"}],  # not an upsert
    [{**cust(1, "A"), "entity": "planet"}],  # unknown entity
    [{**cust(1, "A"), "version": "3"}],  # malformed
    [cust(1, "A"), {**cust(2, "B"), "data": {"name": ["not", "text"]}}],  # unstorable value
])
def test_unusual_pages_are_left_to_the_general_path(db: Database,
                                                    page: list[dict[str, Any]]) -> None:
    with db.transaction(applying_remote=True) as s:
        assert apply_initial_page(s, page, NOW) is None
    assert count(db, Customer) == 0 and count(db, PhoneNumber) == 0
