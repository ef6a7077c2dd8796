"""The search index rebuilt after a first download in short transactions
(`sync.client.bulk_apply.resume_search_index`), on a real SQLite file:

- the result equals a whole rebuild (`search.rebuild_index`), FTS5 shadow tables included;
- another connection writing meanwhile (an agent saving while the index is rebuilt) gets
  its writes in *between* the rebuild's transactions, with the store's real busy timeout,
  and its rows are indexed by the triggers that are back by then;
- a crash between two ranges leaves a key that says where to go on.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch, rebuild_index
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, PhoneNumber, Tag
from sync.client import bulk_apply, state
from sync.client.bulk_apply import (
    REBUILD_KEY,
    SUSPENDED_KEY,
    is_suspended,
    recover_search_index,
    resume_search_index,
    suspend_search_triggers,
)
from tests.unit.test_sync_bulk_apply import index_sql, trigger_count

CUSTOMERS = 400
LOGICAL = ["customers", "customer_search_docs", "customer_fts_docsize",
           "customer_grams_docsize"]


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every search table's logical content: FTS5 indexes as (term, row, column, offset)
    instances (their segment layout differs between one bulk 'rebuild' and inserts in
    ranges followed by 'optimize'), after FTS5's own integrity check."""
    conn = sqlite3.connect(path)
    try:
        out = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in LOGICAL}
        for fts in ("customer_fts", "customer_grams"):
            conn.execute(f"INSERT INTO {fts}({fts}) VALUES ('integrity-check')")
            conn.execute(f"CREATE VIRTUAL TABLE temp.v_{fts} USING fts5vocab(main, {fts},"
                         " instance)")
            out[fts] = conn.execute(f"SELECT * FROM temp.v_{fts} ORDER BY 1, 2, 3, 4"
                                    ).fetchall()
        return out
    finally:
        conn.close()


def _downloaded(path: Path) -> None:
    """A store as a first download leaves it: triggers and secondary indexes suspended,
    customers with phones and tags written meanwhile (so not indexed)."""
    db = Database.open(path)
    try:
        with db.transaction(applying_remote=True) as s:
            assert suspend_search_triggers(s, drop_indexes=True)
        with db.transaction(applying_remote=True) as s:
            for i in range(CUSTOMERS):
                c = Customer(name=f"Kunde {i} {'王小明' if i % 7 == 0 else 'Schmidt'}",
                             company=f"Firma {i % 13}", city=["Hamburg", "北京", ""][i % 3])
                c.phones.append(PhoneNumber(raw=f"+49 151 {i:07d}", e164=f"+49151{i:07d}",
                                            position=0))
                if i % 2:
                    c.tags.append(Tag(name=f"tag{i % 5}"))
                s.add(c)
    finally:
        db.close()


def assert_same_index(path: Path, expected: dict[str, list[tuple[object, ...]]]) -> None:
    got = dump(path)
    assert got.keys() == expected.keys()
    for table in expected:
        assert got[table] == expected[table], table
    assert len(got["customer_fts"]) > CUSTOMERS


@pytest.fixture
def downloaded(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "store.sqlite3"
    _downloaded(path)
    yield path


def _reference(path: Path, tmp_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """What a whole rebuild (the views) leaves for the same rows, triggers back."""
    ref = tmp_path / "reference.sqlite3"
    shutil.copyfile(path, ref)
    db = Database.open(ref)
    try:
        with db.transaction(applying_remote=True) as s:
            assert bulk_apply.restore_search_index(s)
        engine = create_engine(f"sqlite:///{ref}")
        with engine.begin() as conn:
            rebuild_index(conn, 0)
        engine.dispose()
    finally:
        db.close()
    return dump(ref)


def test_chunked_rebuild_equals_a_whole_rebuild(downloaded: Path, tmp_path: Path) -> None:
    expected = _reference(downloaded, tmp_path)
    db = Database.open(downloaded)
    try:
        indexes_before = index_sql(db)
        assert indexes_before == []
        assert resume_search_index(db, first_chunk=37) is True
        assert trigger_count(db) > 0 and index_sql(db) != []
        with db.transaction() as s:
            assert not is_suspended(s)
            assert state.get(s, REBUILD_KEY) is None and state.get(s, SUSPENDED_KEY) is None
        assert resume_search_index(db) is False  # nothing pending any more
    finally:
        db.close()
    assert_same_index(downloaded, expected)
    # merging was off while ranges were added, on again (FTS5's defaults) afterwards
    assert merge_settings(downloaded) == {"customer_fts": {"automerge": 4, "crisismerge": 16},
                                          "customer_grams": {"automerge": 4,
                                                             "crisismerge": 16}}


def merge_settings(path: Path) -> dict[str, dict[str, object]]:
    conn = sqlite3.connect(path)
    try:
        return {t: dict(conn.execute(f"SELECT k, v FROM {t}_config WHERE k IN"
                                     " ('automerge', 'crisismerge')").fetchall())
                for t in ("customer_fts", "customer_grams")}
    finally:
        conn.close()


def test_a_concurrent_writer_gets_in_between_ranges_and_is_indexed(downloaded: Path) -> None:
    db = Database.open(downloaded)  # the store's own busy timeout (5 s) on every connection
    seen_marks: list[str | None] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def agent_saves() -> None:
        i = 0
        try:
            # until the rebuild ends or writes have landed between three of its ranges
            while not done.is_set() and len(set(seen_marks) - {None, "0"}) < 3:
                with db.transaction() as s:
                    s.add(Customer(name=f"Gleichzeitig {i}", city="Bremen"))
                    s.flush()  # takes the write lock before anything is read
                    seen_marks.append(state.get(s, REBUILD_KEY))
                i += 1
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    writer = threading.Thread(target=agent_saves, name="agent-saves")
    writer.start()
    try:
        assert resume_search_index(db, chunk_seconds=0.02, first_chunk=60) is True
    finally:
        done.set()
        writer.join(timeout=60)
    try:
        assert not writer.is_alive()
        assert errors == []
        # writes landed while the rebuild was half done (a rebuild in one transaction
        # would have let none in before its end)
        mid = {m for m in seen_marks if m not in (None, "0")}
        assert len(mid) >= 2, seen_marks
        saved = [f"Gleichzeitig {i}" for i in range(len(seen_marks))]
        with db.engine.connect() as conn:
            docs = {n for (n,) in conn.execute(text(
                "SELECT name FROM customer_search_docs WHERE name LIKE 'Gleichzeitig %'"))}
        assert docs == set(saved)
        hits = CustomerSearch(db, PhoneNormalizer("DE")).page("Gleichzeitig", None, 10_000)
        assert sorted(r.name for r in hits.rows) == sorted(saved)
        hits = CustomerSearch(db, PhoneNormalizer("DE")).page("Kunde 398", None, 10)
        assert [r.name for r in hits.rows] == ["Kunde 398 Schmidt"]
    finally:
        db.close()


def test_crash_between_ranges_resumes_where_it_stopped(downloaded: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _reference(downloaded, tmp_path)
    db = Database.open(downloaded)
    calls: list[tuple[int, int]] = []
    real = bulk_apply.index_customer_range

    def dies_on_third(conn: object, after: int, upto: int) -> None:
        calls.append((after, upto))
        if len(calls) == 3:
            raise KeyboardInterrupt  # stands for the process dying mid-range
        real(conn, after, upto)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk_apply, "index_customer_range", dies_on_third)
    try:
        with pytest.raises(KeyboardInterrupt):
            resume_search_index(db, first_chunk=50)
        with db.transaction() as s:
            assert state.get(s, SUSPENDED_KEY) is None
            assert state.get(s, REBUILD_KEY) == str(calls[1][1])  # two ranges committed
            assert is_suspended(s)
        assert trigger_count(db) > 0  # back from step 2: edits meanwhile are indexed
    finally:
        db.close()
    assert merge_settings(downloaded)["customer_fts"]["automerge"] == 0
    monkeypatch.setattr(bulk_apply, "index_customer_range", real)
    db = Database.open(downloaded)  # the next process
    try:
        assert recover_search_index(db) is True
        assert recover_search_index(db) is False
    finally:
        db.close()
    assert_same_index(downloaded, expected)


def test_whole_restore_also_finishes_a_chunked_rebuild(downloaded: Path) -> None:
    """`restore_search_index` (one transaction) completes a rebuild left half done."""
    db = Database.open(downloaded)
    try:
        with db.transaction(applying_remote=True) as s:
            assert bulk_apply.restore_search_index(s)
            state.put(s, REBUILD_KEY, "100")
        with db.transaction(applying_remote=True) as s:
            assert bulk_apply.restore_search_index(s) is True
        with db.transaction() as s:
            assert not is_suspended(s)
    finally:
        db.close()
    conn = sqlite3.connect(downloaded)
    try:
        assert conn.execute("SELECT count(*) FROM customer_search_docs").fetchone()[0] \
            == CUSTOMERS
    finally:
        conn.close()
