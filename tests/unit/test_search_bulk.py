"""The bulk search rebuild (agent_desktop/search_bulk.py) leaves exactly what
`search.rebuild_index(conn, 0)` leaves: the same rows in every search table, FTS5 shadow
tables byte for byte, on a real migrated store with the real views."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from agent_desktop.search import rebuild_index
from agent_desktop.search_bulk import (
    bigrams,
    known_grams_view,
    rebuild_search_index,
    view_is_mirrored,
)
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, PhoneNumber, Tag, utcnow

SEARCH_TABLES = ["customers", "customer_search_docs", "customer_fts_data", "customer_fts_idx",
                 "customer_fts_docsize", "customer_fts_config", "customer_grams_data",
                 "customer_grams_idx", "customer_grams_docsize", "customer_grams_config"]

NAMES = ["Anna Schmidt", "王小明", "欧阳娜娜", "", "X", "Ünal Öztürk-Çelik",
         "A name that is much longer than twenty-four characters", "exactly24charactersname!",
         "twenty-five characters!!", "emoji 😀 name 🎉", "Tab\tand  double  spaces",
         "O'Brien", "  leading space", "ΣΊΣΥΦΟΣ", "الاسم"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A migrated store with varied customers, filled through the ORM (triggers on)."""
    path = tmp_path / "store.sqlite3"
    db = Database.open(path)
    with db.transaction() as s:
        for i, name in enumerate(NAMES * 3):
            c = Customer(name=f"{name}{i if i >= len(NAMES) else ''}",
                         company=["", "Acme 有限公司", "Müller & Söhne GmbH"][i % 3],
                         city=["北京", "Hamburg", "", "São Paulo"][i % 4])
            for p in range(i % 3):
                c.phones.append(PhoneNumber(raw=f"+49 (151) 234-{i:03d}{p}",
                                            e164=f"+4915123{i:03d}{p}" if p else None,
                                            position=p))
            for t in range(i % 4):
                c.tags.append(Tag(name=["vip", "新客户", "retail trade fair", "x"][t]))
            s.add(c)
        s.flush()
        # tombstones leave the index: a deleted customer, a deleted phone and tag
        doomed = s.query(Customer).filter(Customer.name == "X").one()
        doomed.deleted_at = utcnow()
        s.query(PhoneNumber).filter(PhoneNumber.position == 1).first().deleted_at = utcnow()  # type: ignore[union-attr]
        s.query(Tag).filter(Tag.name == "vip").first().deleted_at = utcnow()  # type: ignore[union-attr]
    db.close()
    yield path


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in SEARCH_TABLES}
    finally:
        conn.close()


def rebuild_with(path: Path, use_bulk: bool) -> bool | None:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            # stale the index first, as after a download with the triggers off
            conn.exec_driver_sql("UPDATE customers SET name_key = '' WHERE id % 2 = 0")
            conn.exec_driver_sql("DELETE FROM customer_search_docs WHERE id % 3 = 0")
            if use_bulk:
                return rebuild_search_index(conn)
            rebuild_index(conn, 0)
            return None
    finally:
        engine.dispose()


def test_bulk_rebuild_equals_rebuild_index_in_every_search_table(store: Path,
                                                                 tmp_path: Path) -> None:
    twin = tmp_path / "twin.sqlite3"
    shutil.copy(store, twin)
    assert rebuild_with(store, use_bulk=True) is True  # the fast path really ran
    rebuild_with(twin, use_bulk=False)
    bulk, reference = dump(store), dump(twin)
    assert len(reference["customer_search_docs"]) == len(NAMES) * 3 - 1  # tombstone left
    assert reference["customer_grams_docsize"] and reference["customer_fts_data"]
    for table in SEARCH_TABLES:
        assert bulk[table] == reference[table], table


def test_unmirrorable_value_falls_back_to_the_views(store: Path, tmp_path: Path) -> None:
    """A BLOB name (which no write path stores, but a damaged or hand-edited file might):
    the Python bigrams refuse it, the savepoint is undone and the views do the work."""
    for path in (store, tmp_path / "twin.sqlite3"):
        if path != store:
            shutil.copy(store, path)
        conn = sqlite3.connect(path)
        conn.execute("UPDATE customer_search_docs SET name = CAST('Bläh' AS BLOB)"
                     " WHERE id = (SELECT min(id) FROM customer_search_docs)")
        conn.execute("UPDATE customers SET name = CAST('Bläh' AS BLOB) WHERE id = 1")
        conn.commit()
        conn.close()
    assert rebuild_with(store, use_bulk=True) is False
    rebuild_with(tmp_path / "twin.sqlite3", use_bulk=False)
    assert dump(store) == dump(tmp_path / "twin.sqlite3")


def test_a_changed_view_is_not_mirrored(store: Path) -> None:
    engine = create_engine(f"sqlite:///{store}")
    try:
        with engine.begin() as conn:
            assert view_is_mirrored(conn)  # the migrations' view is the known one
            conn.exec_driver_sql("DROP VIEW customer_grams_doc")
            conn.exec_driver_sql(known_grams_view().replace("24", "20"))
            assert not view_is_mirrored(conn)
            assert rebuild_search_index(conn) is False
    finally:
        engine.dispose()


@settings(max_examples=300, deadline=None)
# No NUL (refused, below) and no lone surrogates (sqlite3 cannot even store those).
@given(text=st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                    max_size=40),
       positions=st.integers(min_value=1, max_value=30))
def test_bigrams_equal_sqlite_substr(text: str, positions: int) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        expr = " || ' ' || ".join(f"substr(?1, {i}, 2)" for i in range(1, positions + 1))
        assert bigrams(text, positions) == conn.execute(f"SELECT {expr}", (text,)).fetchone()[0]
    finally:
        conn.close()
    assert bigrams(None, positions) is None


def test_text_sqlite_cuts_at_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        bigrams("a\x00b", 3)
    with pytest.raises(ValueError, match="BLOB"):
        bigrams(b"ab", 3)  # type: ignore[arg-type]
