"""The one place that opens the local database and makes sessions.

Opening is defensive: a locked, read-only or corrupt file produces a `StoreError` with a
plain message and the file untouched — we never delete or recreate a user's database. Before
migrating an existing database to a newer schema, a copy is kept next to it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from agent_desktop.store.outbox import install_outbox_capture
from agent_desktop.store.revision import read_head_revision
from agent_desktop.store.space import SpaceCheck, check_room, format_size

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class StoreError(RuntimeError):
    """The database cannot be used; `str()` is a sentence for the agent."""


@dataclass(frozen=True)
class MigrationStep:
    revision: str
    title: str  # first line of the migration's docstring, shown to the agent


@dataclass(frozen=True)
class MigrationPlan:
    """From `current` to `head`: the copy to take first (None: a new file, or the copy of
    an earlier interrupted attempt exists) and the migrations, in order."""

    current: str | None
    head: str
    steps: tuple[MigrationStep, ...]
    backup: Path | None
    config: Config


@dataclass(frozen=True)
class Repair:
    """Work that must be finished before any migration runs, on the file as its current
    revision left it (e.g. the search triggers and indexes an interrupted first download
    left dropped: a migration is written for the schema as the migrations left it). The
    composition root passes these in: the store knows no sync or search internals."""

    title: str
    due: Callable[[Database], bool]  # cheap
    run: Callable[[Database], object]




def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA cache_size=-32000")
    # No memory map: pages a search touches through a map count in the process's RSS and
    # stay there (82 vs 156-177 MiB after 750 searches at 1M, same CPU per query;
    # docs/decisions.md, session 3), and an agent's app runs all day.
    cur.execute("PRAGMA mmap_size=0")
    cur.close()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _preflight(path: Path) -> None:
    """Refuse unusable files with a clear sentence, before SQLAlchemy touches them."""
    if not path.exists():
        if not os.access(path.parent, os.W_OK):
            raise StoreError(f"Cannot create the database: folder {path.parent} is not writable.")
        return
    if not os.access(path, os.R_OK):
        raise StoreError(f"The database file {path} cannot be read (permission denied).")
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise StoreError(
            f"The database file {path} is read-only. Your data is intact; make the file and "
            "its folder writable, then start again."
        )
    with path.open("rb") as fh:
        header = fh.read(16)
    if header and header != b"SQLite format 3\x00":
        raise StoreError(
            f"The file {path} is not an Agent Desktop database (or it is damaged). "
            "It was left untouched."
        )
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=2.0)
        try:
            # Reading the schema touches page 1 and the schema b-tree: cheap at any size and
            # enough to catch a truncated or overwritten file. The full `quick_check` takes
            # 10-50 s on a 1 GB database, so it runs in the background (`integrity_problem`).
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise StoreError(
                "The database is in use by another Agent Desktop window (it is locked). "
                "Close the other window and try again."
            ) from exc
        raise StoreError(
            f"The database file {path} could not be opened ({text}). It was left untouched."
        ) from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"The database file {path} is damaged ({exc}). It was left untouched; restore a "
            "backup or move it away to start with an empty one."
        ) from exc


def head_revision() -> str:
    """The newest migration id, read without importing Alembic (see store/revision.py)."""
    head = read_head_revision(MIGRATIONS_DIR / "versions")
    if head is None:
        raise StoreError("Internal error: the migrations do not have exactly one head.")
    return head


class Database:
    """Engine + session factory for one SQLite file; migrated to head on open."""

    def __init__(self, engine: Engine, path: Path | None) -> None:
        self.engine = engine
        self.path = path
        self._factory = sessionmaker(bind=engine, expire_on_commit=False)
        install_outbox_capture(self._factory)

    @classmethod
    def open(cls, path: Path, *, migrate: bool = True,
             repairs: Sequence[Repair] = ()) -> Database:
        path = Path(path)
        _preflight(path)
        # hide_parameters: an error's text reaches logs and banners; customer data must not.
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False},
                               hide_parameters=True)
        event.listen(engine, "connect", _on_connect)
        db = cls(engine, path)
        if migrate:
            try:
                db.migrate(repairs)
            except BaseException:
                db.close()
                raise
        return db

    def plan_migration(self) -> MigrationPlan | None:
        """What bringing this file to the newest schema involves, or None when it is there.

        Computed once and carried out by `migrate()` or by the upgrade window
        (agent_desktop/store_upgrade.py), which shows each step; both used to walk the
        revision chain themselves. Alembic (≈0.3-2 s to import) is loaded only when a
        migration is due."""
        current = self._current_revision()
        head = head_revision()
        if current == head:
            return None
        from alembic.script import ScriptDirectory

        cfg = alembic_config(str(self.engine.url))
        script = ScriptDirectory.from_config(cfg)
        steps = tuple(MigrationStep(rev.revision, (rev.doc or rev.revision).splitlines()[0])
                      for rev in reversed(list(script.iterate_revisions(head, current))))
        backup = None
        if current is not None and self.path is not None and self.path.exists():
            backup = self.path.with_name(f"{self.path.name}.before-{head}")
            if backup.exists():  # kept by an earlier, interrupted upgrade: not copied again
                backup = None
        return MigrationPlan(current, head, steps, backup, cfg)

    def migrate(self, repairs: Sequence[Repair] = ()) -> None:
        """Upgrade to head: a copy first, then `repairs` that are due, then each migration.

        Same guarantees as the app's upgrade window: the copy is complete or absent, and
        each migration is one transaction, so a kill leaves the file at the previous
        revision, never half-way through one. With too little free disk for the copy this
        refuses (StoreError) rather than migrate without one; the window asks instead."""
        plan = self.plan_migration()
        if plan is None:
            return
        if plan.backup is not None:
            space = self.backup_space(plan.backup)
            if space.short:
                log.error("not enough free space for the backup before migrating: %s", space)
                raise StoreError(
                    f"Not enough free disk space to keep a copy of the database before "
                    f"updating it: {format_size(space.needed)} is needed in {space.folder},"
                    f" {format_size(space.free)} is free. Free up space and try again.")
            self.backup_to(plan.backup)
            log.info("database backed up to %s before migrating %s → %s",
                     plan.backup, plan.current, plan.head)
        for repair in repairs if plan.current is not None else ():  # a new file: no tables
            if repair.due(self):
                log.warning("before migrating: %s", repair.title)
                repair.run(self)
        for step in plan.steps:
            with self.engine.connect() as conn:
                self.apply_migration(conn, plan.config, step.revision)

    @staticmethod
    def apply_migration(conn: Connection, cfg: Config, revision: str) -> None:
        """One migration step in one real transaction. Python's sqlite3 runs DDL such as
        CREATE INDEX outside any transaction unless one is begun explicitly, so without the
        BEGIN a kill between two statements of a migration left half of it applied."""
        from alembic import command

        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def _current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            has_table = raw.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).fetchone()
            if not has_table:
                return None
            row = raw.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(row[0]) if row else None

    def backup_space(self, target: Path) -> SpaceCheck:
        """Is there room for a copy at `target`? The copy is as big as the database's
        pages (WAL content included); the margin is for the migration that follows."""
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            pages = int(raw.execute("PRAGMA page_count").fetchone()[0])
            page_size = int(raw.execute("PRAGMA page_size").fetchone()[0])
        return check_room(target.parent, pages * page_size)

    def backup_to(self, target: Path, progress: Any = None, pages: int = -1) -> None:
        """Consistent online copy via SQLite's backup API (safe while the app writes),
        written under a temporary name and renamed when complete: a kill mid-copy never
        leaves a truncated file that a later start would take for the backup."""
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        raw = self.engine.raw_connection()
        try:
            src = raw.driver_connection
            assert isinstance(src, sqlite3.Connection)
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=pages, progress=progress)
            finally:
                dst.close()
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            raw.close()
        os.replace(partial, target)

    def integrity_problem(self) -> str | None:
        """Run SQLite's `quick_check` (slow on big files: call it off the GUI thread).

        Returns None when the file is sound, else a sentence for the agent. Nothing is
        repaired or deleted: the agent is told to keep working and restore a backup.
        """
        if self.path is None:
            return None
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        finally:
            conn.close()
        if rows == ["ok"]:
            return None
        log.error("database integrity check failed for %s: %s", self.path, rows)
        return (
            f"The database file {self.path} reports damage ({rows[0]}). Your data is still "
            "being used as it is; export your customers and ask support to restore a backup."
        )

    def session(self) -> Session:
        return self._factory()

    @contextmanager
    def transaction(self, **info: Any) -> Iterator[Session]:
        """A session in one transaction: commit on success, rollback on error."""
        with self._factory() as s:
            s.info.update(info)
            with s.begin():
                yield s

    def close(self) -> None:
        self.engine.dispose()


def copy_database(src: Path, dst: Path) -> None:
    """Plain file copy of a closed database (benchmarks cache generated data this way)."""
    shutil.copyfile(src, dst)
