"""Bring an existing database up to the newest schema on a worker thread, step by step,
saying what it is doing — and stoppable without harm.

Why: a migration can take minutes on a big file (0003 builds covering indexes: ~2 min at
1M customers). Run inside `Database.open` on the GUI thread, the agent saw nothing at all
for that long. Here the migration runs on its own thread and reports each step by signal
(a progress window shows it, `ui/migration_window.py`), one migration at a time:

- What is due is computed once (`Database.plan_migration`, shared with `Database.migrate`).
- First a copy of the file is kept (`<name>.before-<head>`, the name `Database.migrate`
  uses, so it does not copy again): written under a temporary name and renamed only when
  complete, so an interrupted copy never passes for a backup. The copy doubles the disk
  used, so free space is checked first (the file's size plus a margin for the migration);
  when short, `space_short` says how much is needed and where, and the worker waits for
  the agent: `skip_backup()` (update without a copy) or `stop()` (quit, nothing written).
- Then the repairs the composition root passed in (`Repair`), when due: work an earlier
  run left unfinished on the file *as its current revision describes it* — the search
  triggers and indexes an interrupted first download dropped. They run before any
  migration because migrations are written for the schema the migrations left: a later
  migration that replaces a search trigger or drops an obsolete index would fail on the
  missing trigger, or see its work undone when the old saved SQL is replayed after it.
  `IF EXISTS` in every future migration would only hide the first of those.
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
    space_short(object): a `SpaceCheck` (folder, needed, free bytes): too little room for
        the copy; the worker waits for `skip_backup()` or `stop()`. Unconnected: stops.
    finished(object, str): the opened `Database` and "" — or None and a sentence for the
        agent (or `STOPPED`). Emitted once, from the worker thread (queued to receivers),
        after `outcome` is set (an `Outcome`: the app's exit code depends on it).
"""

from __future__ import annotations

import enum
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import SIGNAL, QCoreApplication, QObject, Signal

from agent_desktop.store.revision import read_head_revision
from agent_desktop.store.space import format_size

if TYPE_CHECKING:
    from agent_desktop.store.db import Database, Repair

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


class Outcome(enum.Enum):
    """How an upgrade ended; the app exits with a distinct code for each failure
    (agent_desktop/startup.py: EXIT_*)."""

    DONE = "done"
    REFUSED = "refused"  # the file cannot be used at all (locked, damaged, read-only…)
    STOPPED = "stopped"  # the agent stopped it, or quit when the disk was too full
    FAILED = "failed"  # a step failed; the file is as after the previous step


class StoreUpgrade(QObject):
    """Open `path` and migrate it to the newest schema on a worker thread (see module)."""

    step = Signal(str, int, int)
    progress = Signal(int, int)  # done, total (pages of the copy) within the current step
    space_short = Signal(object)  # SpaceCheck: answer with skip_backup() or stop()
    finished = Signal(object, str)

    STOPPED = "stopped"

    def __init__(self, path: Path, parent: QObject | None = None, *,
                 repairs: Sequence[Repair] = ()) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.repairs = tuple(repairs)
        self.outcome: Outcome | None = None  # set before `finished` is emitted
        self.stop_reason = ""  # for the log: what the agent stopped
        self._stop = threading.Event()
        self._answered = threading.Event()  # the agent answered the low-space question
        self._skip_backup = False
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
        self._answered.set()
        with self._lock:
            if self._running is not None:
                self._running.interrupt()

    def skip_backup(self) -> None:
        """The agent's answer to `space_short`: update without keeping a copy."""
        self._skip_backup = True
        self._answered.set()

    def wait(self, timeout: float | None = None) -> bool:
        """For tests and shutdown: True once the worker has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # -- worker thread ---------------------------------------------------------------------

    def _finish(self, outcome: Outcome, db: Database | None, text: str) -> None:
        self.outcome = outcome
        self.finished.emit(db, text)

    def _run(self) -> None:
        from agent_desktop.store.db import Database, StoreError

        try:
            db = Database.open(self.path, migrate=False)
        except StoreError as exc:
            log.error("database refused: %s", exc)
            self._finish(Outcome.REFUSED, None, str(exc))
            return
        except Exception as exc:
            log.exception("database could not be opened for its upgrade")
            self._finish(Outcome.REFUSED, None, self._failed_text(exc))
            return
        try:
            self._upgrade(db)
        except UpgradeStopped:
            log.warning("database upgrade stopped by the agent (%s); the file is as after "
                        "the last finished step and the update resumes at the next start",
                        self.stop_reason or "while it ran")
            db.close()
            self._finish(Outcome.STOPPED, None, self.STOPPED)
            return
        except Exception as exc:
            log.exception("database upgrade failed")
            db.close()
            self._finish(Outcome.FAILED, None, self._failed_text(exc))
            return
        self._finish(Outcome.DONE, db, "")

    def _failed_text(self, exc: BaseException) -> str:
        text = QCoreApplication.translate(
            "StoreUpgrade", "Your database could not be updated to this version of Agent "
            "Desktop (%1). It was left as it was; details are in the log.")
        return text.replace("%1", type(exc).__name__)

    def _upgrade(self, db: Database) -> None:
        from sqlalchemy import event

        plan = db.plan_migration()
        if plan is None:
            return
        # A new file (no revision yet) has nothing to repair: its tables do not exist.
        repairs = [r for r in self.repairs if plan.current is not None and r.due(db)]
        backup = plan.backup
        if backup is not None and not self._room_for_backup(db, backup):
            backup = None
        count = len(plan.steps) + len(repairs) + (1 if backup is not None else 0)
        number = 0
        if backup is not None:
            number += 1
            self.step.emit(QCoreApplication.translate(
                "StoreUpgrade", "Keeping a copy of your data"), number, count)
            self._backup(db, backup)
            log.info("database backed up to %s before migrating %s → %s",
                     backup, plan.current, plan.head)
        event.listen(db.engine, "before_cursor_execute", self._before_statement)
        try:
            for repair in repairs:  # before any migration: see Repair
                self._check_stop()
                number += 1
                self.step.emit(repair.title, number, count)
                log.warning("before migrating: %s", repair.title)
                try:
                    repair.run(db)  # a stop takes effect at its next statement
                except Exception as exc:
                    raise self._stopped_or(exc) from exc
            for step in plan.steps:
                self._check_stop()
                number += 1
                self.step.emit(QCoreApplication.translate(
                    "StoreUpgrade", "Updating: %1").replace("%1", step.title), number, count)
                log.info("migrating the database to %s (%s)", step.revision, step.title)
                with db.engine.connect() as conn:
                    raw = conn.connection.driver_connection
                    assert isinstance(raw, sqlite3.Connection)
                    with self._lock:
                        self._running = raw
                    try:
                        # One real transaction per step (see the module docstring).
                        db.apply_migration(conn, plan.config, step.revision)
                    except Exception as exc:
                        raise self._stopped_or(exc) from exc
                    finally:
                        with self._lock:
                            self._running = None
        finally:
            event.remove(db.engine, "before_cursor_execute", self._before_statement)

    def _room_for_backup(self, db: Database, backup: Path) -> bool:
        """True when the copy fits; else the agent chooses (`space_short`): False to go on
        without a copy, or UpgradeStopped to quit. Nothing has been written yet."""
        space = db.backup_space(backup)
        if not space.short:
            return True
        log.warning("not enough free space for the backup: %s needed in %s, %s free; "
                    "asking the agent", format_size(space.needed), space.folder,
                    format_size(space.free))
        if self.receivers(SIGNAL("space_short(PyObject)")) == 0:
            self.stop_reason = "not enough free space for the backup, and nobody to ask"
            raise UpgradeStopped()
        self.space_short.emit(space)
        self._answered.wait()
        if self._stop.is_set() or not self._skip_backup:
            self.stop_reason = "quit when the disk was too full for the backup"
            raise UpgradeStopped()
        log.warning("the agent chose to update without a backup (%s free, %s needed)",
                    format_size(space.free), format_size(space.needed))
        return False

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
