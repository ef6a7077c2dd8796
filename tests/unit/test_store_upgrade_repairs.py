"""Work an interrupted first download left undone is finished *before* migrations run, and
what is due is computed once.

The state under test is the real one a SIGKILL mid-download leaves: the search triggers
and the synced tables' secondary indexes dropped (their SQL saved under
`search_triggers_suspended`), rows written meanwhile unindexed — plus a migration pending.
A future migration is simulated with a real Alembic revision written into a copy of the
migrations folder: it rewrites a search trigger and drops an obsolete index, as later
schema work on search would.
"""

from __future__ import annotations

import shutil
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop import startup
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store import db as store_db
from agent_desktop.store.db import Database, Repair
from agent_desktop.store.models import Customer
from agent_desktop.store_upgrade import Outcome, StoreUpgrade
from sync.client.bulk_apply import SUSPENDED_KEY, recover_search_index, suspend_search_triggers
from tests.unit.test_app_store_upgrade import LIST_INDEXES, ROWS, make_old_database, state

REPAIR_TITLE = "Rebuilding the search index (an earlier download was interrupted)"


def triggers(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                                 " AND name LIKE '%\\_search\\_%' ESCAPE '\\'").fetchall())
    finally:
        conn.close()


def indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    finally:
        conn.close()


def suspended_key(path: Path) -> bool:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT 1 FROM sync_state WHERE key = ?",
                            (SUSPENDED_KEY,)).fetchone() is not None
    finally:
        conn.close()


def found(db: Database, query: str) -> list[str]:
    return sorted(r.name for r in CustomerSearch(db, PhoneNormalizer("CN")).page(
        query, None, 50).rows)


def interrupt_a_first_download(path: Path) -> None:
    """What a kill mid-download leaves: triggers and indexes dropped, a row unindexed."""
    db = Database.open(path, migrate=False)
    try:
        with db.transaction(applying_remote=True) as s:
            assert suspend_search_triggers(s, drop_indexes=True) is True
        with db.transaction(applying_remote=True) as s:
            s.add(Customer(name="Zelda Downloaded", city="Ningbo"))
        assert found(db, "Zelda") == []  # not indexed: the triggers are off
    finally:
        db.close()
    assert triggers(path) == {} and suspended_key(path)


class Recording(StoreUpgrade):
    def __init__(self, path: Path, repairs: list[Repair]) -> None:
        super().__init__(path, repairs=repairs)
        self.statements: list[str] = []

    def statement_started(self, statement: str) -> None:
        self.statements.append(" ".join(statement.split()))


def run(qtbot: QtBot, upgrade: StoreUpgrade) -> tuple[Any, str, list[tuple[str, int, int]]]:
    steps: list[tuple[str, int, int]] = []
    upgrade.step.connect(lambda *a: steps.append(a))
    with qtbot.waitSignal(upgrade.finished, timeout=60_000) as done:
        upgrade.start()
    assert upgrade.wait(10)
    return done.args[0], done.args[1], steps


def test_the_window_repairs_the_search_index_before_migrating(tmp_path: Path,
                                                              qtbot: QtBot) -> None:
    path = tmp_path / "agent.sqlite3"
    make_old_database(path)  # 0002: migration 0003 pending
    installed = triggers(path)
    dropped_by_download = indexes(path)
    interrupt_a_first_download(path)
    assert {"ix_phone_numbers_customer_id", "ix_tags_customer_id"} <= dropped_by_download
    assert not {"ix_phone_numbers_customer_id", "ix_tags_customer_id"} & indexes(path)
    upgrade = Recording(path, [startup.search_index_repair()])
    db, error, steps = run(qtbot, upgrade)
    try:
        assert error == "" and isinstance(db, Database) and upgrade.outcome is Outcome.DONE
        assert [t for t, _n, _c in steps] == [
            "Keeping a copy of your data", REPAIR_TITLE,
            "Updating: search: covering indexes for the rows of a list page"]
        assert [(n, c) for _t, n, c in steps] == [(1, 3), (2, 3), (3, 3)]
        # Order on the wire: every saved trigger is back before 0003's first statement.
        first_migration = next(i for i, s in enumerate(upgrade.statements)
                               if "CREATE INDEX IF NOT EXISTS ix_customers_list" in s)
        restored = [i for i, s in enumerate(upgrade.statements)
                    if s.startswith("CREATE TRIGGER")]
        assert len(restored) == len(installed) and max(restored) < first_migration
        assert found(db, "Zelda") == ["Zelda Downloaded"]
    finally:
        if isinstance(db, Database):
            db.close()
    assert triggers(path) == installed
    assert dropped_by_download | LIST_INDEXES <= indexes(path)
    assert not suspended_key(path)
    assert state(path) == ("0003", LIST_INDEXES, ROWS + 1)
    # The copy is the file exactly as the agent had it, suspension included.
    backup = path.with_name(path.name + ".before-0003")
    assert suspended_key(backup) and triggers(backup) == {}


def test_a_repair_that_is_not_due_is_no_step(tmp_path: Path, qtbot: QtBot) -> None:
    path = tmp_path / "agent.sqlite3"
    make_old_database(path)
    _db, error, steps = run(qtbot, StoreUpgrade(path, repairs=[startup.search_index_repair()]))
    assert isinstance(_db, Database)
    _db.close()
    assert error == "" and [(n, c) for _t, n, c in steps] == [(1, 2), (2, 2)]


def test_a_new_file_asks_no_repair(tmp_path: Path) -> None:
    """A new file has no tables for a repair to look at: `due` is not even asked."""

    def refuse(_db: Database) -> bool:
        raise AssertionError("due() asked on a new file")

    db = Database.open(tmp_path / "new.sqlite3", repairs=[Repair("never", refuse, refuse)])
    db.close()


FUTURE = '''\
"""search: the customers' update trigger rewritten; an obsolete index dropped

Revision ID: 0004
Revises: 0003

A stand-in for later schema work on search, written by the test.
"""

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX {if_exists}ix_tags_name")
    op.execute("DROP TRIGGER {if_exists}customers_search_au")
    op.execute({new_trigger!r})


def downgrade() -> None:
    pass
'''


@pytest.fixture
def future_migration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write migration 0004 into a copy of the migrations folder and use that folder."""

    def install(old: str, *, if_exists: bool) -> str:
        new = old.replace("BEGIN", "BEGIN\n  -- rewritten by 0004\n", 1)
        folder = tmp_path / "migrations"
        shutil.copytree(store_db.MIGRATIONS_DIR, folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
        (folder / "versions" / "0004_future_search.py").write_text(textwrap.dedent(
            FUTURE.format(if_exists="IF EXISTS " if if_exists else "", new_trigger=new)),
            encoding="utf-8")
        monkeypatch.setattr(store_db, "MIGRATIONS_DIR", folder)
        assert store_db.head_revision() == "0004"
        return new

    return install


def at_head_mid_download(tmp_path: Path) -> tuple[Path, str]:
    """A file at today's newest schema (0003) left mid-download, and the SQL of the
    trigger 0004 rewrites, as it was before the download dropped it."""
    path = tmp_path / "agent.sqlite3"
    make_old_database(path)
    Database.open(path).close()
    old = triggers(path)["customers_search_au"]
    interrupt_a_first_download(path)
    return path, old


def test_a_future_search_migration_runs_on_a_repaired_file(tmp_path: Path,
                                                           future_migration: Any) -> None:
    path, old = at_head_mid_download(tmp_path)
    new_sql = future_migration(old, if_exists=False)
    db = Database.open(path, repairs=[startup.search_index_repair()])
    try:
        assert found(db, "Zelda") == ["Zelda Downloaded"]
    finally:
        db.close()
    assert state(path)[0] == "0004" and not suspended_key(path)
    assert triggers(path)["customers_search_au"] == new_sql
    assert "ix_tags_name" not in indexes(path)  # dropped by 0004 and it stays dropped


def test_migrating_first_fails_on_the_missing_trigger(tmp_path: Path,
                                                     future_migration: Any) -> None:
    """The order this replaces (migrations, then the start-up recovery): 0004 meets a
    search object the download dropped; its transaction rolls back, the app cannot start."""
    path, old = at_head_mid_download(tmp_path)
    future_migration(old, if_exists=False)
    with pytest.raises(Exception, match="no such index: ix_tags_name"):
        Database.open(path)
    assert state(path)[0] == "0003" and suspended_key(path)


def test_if_exists_in_migrations_would_only_hide_the_problem(tmp_path: Path,
                                                            future_migration: Any) -> None:
    """The alternative (IF EXISTS in every migration): the migration passes, then the
    recovery replays the old saved SQL and brings back the index 0004 dropped."""
    path, old = at_head_mid_download(tmp_path)
    future_migration(old, if_exists=True)
    db = Database.open(path)  # no repairs: migrate, then recover as before
    try:
        assert recover_search_index(db) is True
    finally:
        db.close()
    assert state(path)[0] == "0004"
    assert "ix_tags_name" in indexes(path)  # resurrected: 0004's work undone


def test_pending_revisions_are_computed_once(tmp_path: Path, qtbot: QtBot,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """One plan (`Database.plan_migration`) per upgrade, on either road; before, the
    window and `Database.migrate` each walked the revision chain themselves."""
    path = tmp_path / "agent.sqlite3"
    make_old_database(path)
    other = tmp_path / "other.sqlite3"
    make_old_database(other)
    plans: list[Any] = []
    real = Database.plan_migration

    def counted(self: Database) -> Any:
        plans.append(real(self))
        return plans[-1]

    monkeypatch.setattr(Database, "plan_migration", counted)
    upgraded, error, steps = run(qtbot, StoreUpgrade(path))
    assert error == "" and isinstance(upgraded, Database)
    upgraded.close()
    assert len(plans) == 1 and plans[0] is not None
    plan = plans[0]
    assert (plan.current, plan.head) == ("0002", "0003")
    assert [s.revision for s in plan.steps] == ["0003"]
    assert plan.backup == path.with_name(path.name + ".before-0003")
    assert steps[-1][0] == "Updating: " + plan.steps[0].title
    plans.clear()
    Database.open(other).close()
    assert len(plans) == 1 and plans[0] is not None  # Database.migrate: the same, once
    plans.clear()
    Database.open(other).close()
    assert plans == [None]  # at head: no plan, and Alembic is not imported for it
