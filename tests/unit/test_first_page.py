"""The first page read with plain sqlite3 (agent_desktop.first_page) and its hand-over.

The reader must show exactly what `CustomerSearch` would (rows, order, page keys), read
only, and step aside whenever the full start-up path has something to do or say.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from agent_desktop.customers import CustomerService
from agent_desktop.first_page import FirstPageReader, SearchNotReady
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store import db as store_db
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, utcnow
from agent_desktop.store.revision import read_head_revision

NAMES = ["Zhang Wei", "anna Schmidt", "Anna Schmidt", "王芳", "王伟", "李娜", "Carlos Ruiz",
         "Émile Zola", "john smith", "欧阳娜娜", "Ölaf", "Bo Chen"]


@pytest.fixture
def db_path(tmp_path: Path) -> Iterator[Path]:
    """A migrated database: names that sort in tricky ways, phones, tags, a tombstone."""
    path = tmp_path / "agent.sqlite3"
    db = Database.open(path)
    svc = CustomerService(db, PhoneNormalizer("CN"))
    ids: list[int] = []
    for i, name in enumerate(NAMES * 3):
        ids.append(svc.create_customer({"name": name, "company": f"Firm {i}", "city": "上海"},
                                       phone=f"+86 138 0013 {8000 + i}" if i % 3 else ""))
    svc.add_tag(ids[1], "vip")
    svc.add_tag(ids[1], "重要")
    svc.add_phone(ids[4], "+49 151 2345 6789", "work")
    with db.transaction() as s:
        gone = s.scalars(select(Customer).where(Customer.id == ids[2])).one()
        gone.deleted_at = utcnow()
    db.close()
    yield path


def test_pages_equal_customer_search_rows_and_keys(db_path: Path) -> None:
    reader = FirstPageReader.open(db_path, 5)
    assert reader is not None
    db = Database.open(db_path)
    try:
        search = CustomerSearch(db, PhoneNormalizer("CN"))
        ours, theirs, after = [], [], None
        while True:
            a = reader.page("", after, 5)
            b = search.page("", after, 5)
            assert [tuple(vars(r).values()) for r in a.rows] == \
                   [tuple(vars(r).values()) for r in b.rows]
            assert a.next_after == b.next_after
            ours += a.rows
            theirs += b.rows
            if a.next_after is None:
                break
            after = a.next_after
        assert len(ours) == len(NAMES) * 3 - 1  # the tombstone is not listed
        assert any(r.tags == "vip, 重要" for r in ours)
    finally:
        reader.close()
        db.close()


def test_first_page_is_served_from_what_open_read(db_path: Path) -> None:
    reader = FirstPageReader.open(db_path, 4)
    assert reader is not None
    first = reader.page("", None, 4)
    again = reader.page("", None, 4)  # re-read from the file the second time
    assert [r.id for r in first.rows] == [r.id for r in again.rows]
    assert len(first.rows) == 4 and first.next_after is not None
    reader.close()


def test_head_revision_agrees_with_the_store() -> None:
    assert read_head_revision() == store_db.head_revision()


def test_reader_never_writes(db_path: Path) -> None:
    reader = FirstPageReader.open(db_path, 5)
    assert reader is not None
    conn = reader._conn  # the guarantee is about this very connection
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        conn.execute("DELETE FROM customers")
    reader.close()


def test_a_search_is_refused_plainly_and_foreign_keys_too(db_path: Path) -> None:
    reader = FirstPageReader.open(db_path, 5)
    assert reader is not None
    with pytest.raises(SearchNotReady, match="still starting"):
        reader.page("anna", None, 5)
    with pytest.raises(ValueError, match="Not a page key"):
        reader.page("", (3, 17), 5)
    with pytest.raises(ValueError, match="at least one row"):
        reader.page("", None, 0)
    reader.close()


def test_steps_aside_without_a_usable_database(tmp_path: Path) -> None:
    assert FirstPageReader.open(tmp_path / "missing.sqlite3", 10) is None
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 50)
    assert FirstPageReader.open(junk, 10) is None
    assert junk.read_bytes() == b"this is not a database" * 50
    truncated = tmp_path / "truncated.sqlite3"
    truncated.write_bytes(b"SQLite format 3\x00" + b"\x00" * 40)
    assert FirstPageReader.open(truncated, 10) is None
    plain = tmp_path / "plain.sqlite3"  # an SQLite file that was never migrated
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.close()
    assert FirstPageReader.open(plain, 10) is None


def test_steps_aside_for_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    Database.open(path).close()
    assert FirstPageReader.open(path, 10) is None  # demo data is generated by the full path


def test_steps_aside_when_a_migration_is_due(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert FirstPageReader.open(db_path, 10) is None


def test_steps_aside_when_another_window_holds_the_database(db_path: Path) -> None:
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        assert FirstPageReader.open(db_path, 10) is None
    finally:
        other.execute("ROLLBACK")
        other.close()
    reader = FirstPageReader.open(db_path, 10)
    assert reader is not None
    reader.close()
