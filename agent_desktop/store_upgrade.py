"""Bring an existing database up to the newest schema on a worker thread, step by step,
saying what it is doing — and stoppable without harm.

Why: a migration can take minutes on a big file (0003 builds covering indexes: ~2 min at
1M customers). Run inside `Database.open` on the GUI thread, the agent saw nothing at all
for that long. Here the migration runs on its own thread and reports each step by signal
(a progress window shows it, `ui/migration_window.py`), one migration at a time:

- First a copy of the file is kept (`<name>.before-<head>`, the name `Database.migrate`
  uses, so it does not copy again): written under a temporary name and renamed only when
  complete, so an interrupted copy never passes for a backup.
- Each migration runs in its own SQLite transaction, opened explicitly (`BEGIN`): the
  sqlite3 driver does not begin a transaction before DDL by itself, so without it every
  `CREATE INDEX` of a migration would commit on its own, and a stop in the middle would
  leave half a migration with the old version number. With it, a stop or a kill at any
  point leaves the file exactly as it was after the previous step; the next start
  resumes from there.
- `stop()` (the agent closed the window) interrupts the running SQLite statement
  (`sqlite3.Connection.interrupt`, thread-safe), or the backup between pages; the step's
  transaction rolls back and `finished` reports `STOPPED`.

Signals:
    step(str, int, int): what is being done now, its number (1-based) and the step count.
    progress(int, int): how far the current step is (done, total), when that is known
        (the copy: pages copied); a migration's own statements do not say.
    finished(object, str): the opened `Database` and "" — or None and a sentence for the
        agent (or `STOPPED`). Emitted once, from the worker thread (queued to receivers).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Signal

from agent_desktop.store.revision import read_head_revision

if TYPE_CHECKING:
    from agent_desktop.store.db import Database

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
BACKUP_PAGES_PER_STEP = 4096  # ~16 MB of a 4 KiB-page file between progress/stop checks


def upgrade_due(path: Path) -> tuple[str, str] | None:
    """(stored revision, newest revision) when an existing database is behind; None when
    it is at the newest migration, new, or not readable here (`Database.open` then
    explains the problem). Plain sqlite3, read-only: SQLAlchemy is not imported for this."""
    try:
        with path.open("rb") as fh:
            if fh.read(16) != SQLITE_HEADER:
                return None
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.5)
    except (OSError, sqlite3.Error):
        return None
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None  # no version table: a new file, made from scratch quickly
    finally:
        conn.close()
    head = read_head_revision()
    if row is None or head is None or row[0] == head:
        return None
    return str(row[0]), head


class UpgradeStopped(Exception):
    """The agent stopped the upgrade; the current step was rolled back."""


class StoreUpgrade(QObject):
    """Open `path` and migrate it to the newest schema on a worker thread (see module)."""

    step = Signal(str, int, int)
    progress = Signal(int, int)  # done, total (pages of the copy) within the current step
    finished = Signal(object, str)

    STOPPED = "stopped"

    def __init__(self, path: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: sqlite3.Connection | None = None  # the connection to interrupt
        self._thread: threading.Thread | None = None

    # -- GUI thread ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="store-upgrade", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop as soon as possible; the file stays as after the last finished step."""
        self._stop.set()
        with self._lock:
            if self._running is not None:
                self._running.interrupt()

    def wait(self, timeout: float | None = None) -> bool:
        """For tests and shutdown: True once the worker has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # -- worker thread ---------------------------------------------------------------------

    def _run(self) -> None:
        from agent_desktop.store.db import Database, StoreError

        try:
            db = Database.open(self.path, migrate=False)
        except StoreError as exc:
            log.error("database refused: %s", exc)
            self.finished.emit(None, str(exc))
            return
        except Exception as exc:
            log.exception("database could not be opened for its upgrade")
            self.finished.emit(None, self._failed_text(exc))
            return
        try:
            self._upgrade(db)
        except UpgradeStopped:
            log.warning("database upgrade stopped by the agent; resumes at the next start")
            db.close()
            self.finished.emit(None, self.STOPPED)
            return
        except Exception as exc:
            log.exception("database upgrade failed")
            db.close()
            self.finished.emit(None, self._failed_text(exc))
            return
        self.finished.emit(db, "")

    def _failed_text(self, exc: BaseException) -> str:
        text = QCoreApplication.translate(
            "StoreUpgrade", "Your database could not be updated to this version of Agent "
            "Desktop (%1). It was left as it was; details are in the log.")
        return text.replace("%1", type(exc).__name__)

    def _upgrade(self, db: Database) -> None:
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from sqlalchemy import event

        from agent_desktop.store.db import alembic_config

        with db.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        cfg = alembic_config(str(db.engine.url))
        script = ScriptDirectory.from_config(cfg)
        head = script.get_current_head()
        if current == head or head is None:
            return
        pending = list(reversed(list(script.iterate_revisions(head, current))))
        backup = self.path.with_name(f"{self.path.name}.before-{head}")
        do_backup = current is not None and not backup.exists()
        count = len(pending) + (1 if do_backup else 0)
        number = 0
        if do_backup:
            number += 1
            self.step.emit(QCoreApplication.translate(
                "StoreUpgrade", "Keeping a copy of your data"), number, count)
            self._backup(db, backup)
            log.info("database backed up to %s before migrating %s → %s",
                     backup, current, head)
        event.listen(db.engine, "before_cursor_execute", self._before_statement)
        try:
            for rev in pending:
                self._check_stop()
                number += 1
                title = (rev.doc or rev.revision).splitlines()[0]
                self.step.emit(QCoreApplication.translate(
                    "StoreUpgrade", "Updating: %1").replace("%1", title), number, count)
                log.info("migrating the database to %s (%s)", rev.revision, title)
                with db.engine.connect() as conn:
                    raw = conn.connection.driver_connection
                    assert isinstance(raw, sqlite3.Connection)
                    with self._lock:
                        self._running = raw
                    try:
                        # One real transaction per step (see the module docstring).
                        db.apply_migration(conn, cfg, rev.revision)
                    except Exception as exc:
                        raise self._stopped_or(exc) from exc
                    finally:
                        with self._lock:
                            self._running = None
        finally:
            event.remove(db.engine, "before_cursor_execute", self._before_statement)

    def _stopped_or(self, exc: BaseException) -> BaseException:
        return UpgradeStopped() if self._stop.is_set() else exc

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise UpgradeStopped()

    def _before_statement(self, _conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        """Each SQL statement of a migration: a stop takes effect before the next one."""
        self._check_stop()
        self.statement_started(statement)

    def statement_started(self, statement: str) -> None:
        """Hook for diagnostics and tests (worker thread); the default does nothing."""

    def _copied(self, _status: int, remaining: int, total: int) -> None:
        self._check_stop()
        self.progress.emit(total - remaining, total)

    def _backup(self, db: Database, target: Path) -> None:
        """SQLite's online backup into `target` (complete or absent), with progress."""
        db.backup_to(target, progress=self._copied, pages=BACKUP_PAGES_PER_STEP)
