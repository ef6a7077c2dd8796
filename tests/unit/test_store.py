"""Local store: migrations, outbox capture, and refusing unusable files without harm."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text

from agent_desktop.store.db import Database, StoreError
from agent_desktop.store.models import Customer, Outbox, PhoneNumber, Tag, utcnow


def _db(tmp_path: Path) -> Database:
    return Database.open(tmp_path / "agent.sqlite3")


def test_open_creates_wal_database_with_foreign_keys(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        # Not memory-mapped: mapped pages would stay in the app's RSS all day.
        assert conn.execute(text("PRAGMA mmap_size")).scalar() == 0
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version is not None
    db.close()


def test_every_change_writes_outbox_in_same_transaction(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.transaction() as s:
        c = Customer(name="王小明", company="华为")
        c.phones.append(PhoneNumber(raw="13800138000", e164="+8613800138000"))
        c.tags.append(Tag(name="vip"))
        s.add(c)
    with db.transaction() as s:
        c = s.scalars(select(Customer)).one()
        c.city = "深圳"
        c.tags[0].deleted_at = utcnow()
    with db.session() as s:
        rows = s.scalars(select(Outbox).order_by(Outbox.mutation_id)).all()
        cust = s.scalars(select(Customer)).one()
    assert [(r.entity, r.op) for r in rows] == [
        ("customer", "upsert"), ("phone", "upsert"), ("tag", "upsert"),
        ("customer", "upsert"), ("tag", "delete"),
    ]
    first = json.loads(rows[0].changed_fields)
    assert first["name"] == "王小明" and first["status"] == "new"
    assert "id" not in first and "uuid" not in first
    assert json.loads(rows[1].changed_fields)["customer_uuid"] == cust.uuid
    assert json.loads(rows[3].changed_fields) == {"city": "深圳"}
    assert all(r.entity_uuid for r in rows)


def test_failed_transaction_leaves_no_outbox_row(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with pytest.raises(RuntimeError), db.transaction() as s:
        s.add(Customer(name="Ann"))
        s.flush()
        raise RuntimeError("boom")
    with db.session() as s:
        assert s.scalars(select(Outbox)).all() == []
        assert s.scalars(select(Customer)).all() == []


def test_remote_changes_write_no_outbox(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.transaction(applying_remote=True) as s:
        s.add(Customer(name="From server", server_version=7))
    with db.session() as s:
        assert s.scalars(select(Outbox)).all() == []


def test_corrupt_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite3"
    junk = b"SQLite format 3\x00" + os.urandom(4000)
    path.write_bytes(junk)
    with pytest.raises(StoreError, match=r"damaged|could not be opened"):
        Database.open(path)
    assert path.read_bytes() == junk


def test_read_only_file_is_refused_with_plain_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _db(tmp_path)
    db.close()
    path = tmp_path / "agent.sqlite3"
    before = path.read_bytes()
    path.chmod(0o444)
    real_access = os.access

    def access(p: object, mode: int) -> bool:
        # Tests may run as root, which ignores permission bits: honour them here.
        if mode & os.W_OK and Path(str(p)) == path:
            return False
        return real_access(p, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    try:
        with pytest.raises(StoreError, match="read-only"):
            Database.open(path)
    finally:
        path.chmod(0o644)
    assert path.read_bytes() == before


def test_locked_database_gives_plain_message(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.close()
    path = tmp_path / "agent.sqlite3"
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="in use by another"):
            Database.open(path)
    finally:
        holder.rollback()
        holder.close()


def test_concurrent_reader_while_writing(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.transaction() as s:
        s.add(Customer(name="A"))
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(50):
                with db.engine.connect() as conn:
                    conn.execute(text("SELECT count(*) FROM customers")).scalar()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(50):
        with db.transaction() as s:
            s.add(Customer(name=f"C{i}"))
    t.join()
    assert errors == []


def test_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite3"
    path.write_bytes(b"PK\x03\x04 this is a zip, not a database")
    with pytest.raises(StoreError, match="not an Agent Desktop database"):
        Database.open(path)
    assert path.read_bytes().startswith(b"PK")


def test_integrity_problem_reports_damage_in_the_background_check(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.transaction() as s:
        for i in range(300):
            s.add(Customer(name=f"Customer {i}", company="x" * 200))
    assert db.integrity_problem() is None
    db.close()
    path = tmp_path / "agent.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    data = bytearray(path.read_bytes())
    # Scribble over a page in the middle of the file (not page 1: the cheap open check
    # must still pass, so only the background check can find it).
    mid = (pages // 2) * page_size
    data[mid : mid + page_size] = b"\xff" * page_size
    path.write_bytes(bytes(data))
    damaged = Database.open(path, migrate=False)
    problem = damaged.integrity_problem()
    assert problem is not None and "reports damage" in problem
    damaged.close()


def test_cheap_head_revision_agrees_with_alembic() -> None:
    from alembic.script import ScriptDirectory

    from agent_desktop.store.db import alembic_config, head_revision

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revision() == script.get_current_head()


def test_reopening_a_current_database_does_not_migrate(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.close()
    again = Database.open(tmp_path / "agent.sqlite3")
    assert not list(tmp_path.glob("agent.sqlite3.before-*")), "no backup: nothing to migrate"
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    again.close()
