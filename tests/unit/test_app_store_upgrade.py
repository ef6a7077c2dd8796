"""A database behind the newest schema is upgraded on a worker thread behind a progress
window; stopping it or killing the process leaves a file that opens and finishes next time.

Real migrations on a small real database: it is built at the newest schema, then put back
to 0002 (the covering indexes of 0003 dropped, the version stamped 0002), which is exactly
what a database from before 0003 looks like.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from agent_desktop import startup
from agent_desktop.app import parse_args
from agent_desktop.customers import CustomerService
from agent_desktop.paths import AppPaths
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database, head_revision
from agent_desktop.store_upgrade import StoreUpgrade, upgrade_due
from ui.migration_window import MigrationWindow

REPO = Path(__file__).resolve().parents[2]
LIST_INDEXES = {"ix_customers_list", "ix_phone_numbers_list", "ix_tags_list"}
ROWS = 120


def make_old_database(path: Path) -> None:
    """A database with customers, as it was before migration 0003."""
    db = Database.open(path)
    svc = CustomerService(db, PhoneNormalizer("CN"))
    for i in range(ROWS):
        svc.create_customer({"name": f"客户 {i:03d}", "city": "Shanghai"},
                            phone=f"+86 138 0013 {i:04d}")
    db.close()
    with sqlite3.connect(path) as conn:
        for name in LIST_INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("UPDATE alembic_version SET version_num = '0002'")
    conn.close()


def state(path: Path) -> tuple[str, set[str], int]:
    """(version, list indexes present, live customers), read with plain sqlite3."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        names = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")} & LIST_INDEXES
        count = conn.execute(
            "SELECT count(*) FROM customers WHERE deleted_at IS NULL").fetchone()[0]
    finally:
        conn.close()
    return version, names, count


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    path = tmp_path / "agent.sqlite3"
    make_old_database(path)
    assert state(path) == ("0002", set(), ROWS)
    return path


def run_upgrade(qtbot: QtBot, upgrade: StoreUpgrade) -> tuple[object, str, list[Any]]:
    steps: list[Any] = []
    upgrade.step.connect(lambda *a: steps.append(a))
    with qtbot.waitSignal(upgrade.finished, timeout=60_000) as done:
        upgrade.start()
    assert upgrade.wait(10)
    db, error = done.args
    return db, error, steps


def test_upgrade_due_reads_the_version_without_sqlalchemy(old_db: Path, tmp_path: Path) -> None:
    assert upgrade_due(old_db) == ("0002", "0003")
    assert upgrade_due(tmp_path / "missing.sqlite3") is None  # a new file: quick, no window
    (tmp_path / "text.sqlite3").write_text("not a database", encoding="utf-8")
    assert upgrade_due(tmp_path / "text.sqlite3") is None  # Database.open explains it
    code = ("import sys; from pathlib import Path; from agent_desktop.store_upgrade import "
            f"upgrade_due; print(upgrade_due(Path({str(old_db)!r}))); "
            "print('sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    assert out == ["('0002',", "'0003')", "False"]


def test_upgrade_keeps_a_copy_then_migrates_step_by_step(old_db: Path, qtbot: QtBot,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_desktop import store_upgrade

    monkeypatch.setattr(store_upgrade, "BACKUP_PAGES_PER_STEP", 16)
    upgrade = StoreUpgrade(old_db)
    copied: list[tuple[int, int]] = []
    upgrade.progress.connect(lambda done, total: copied.append((done, total)))
    db, error, steps = run_upgrade(qtbot, upgrade)
    qtbot.waitUntil(lambda: bool(copied) and copied[-1][0] == copied[-1][1])
    pages = old_db.stat().st_size // 4096
    assert len(copied) >= pages // 16 - 1 and copied[-1][1] >= pages // 2
    assert [d for d, _t in copied] == sorted(d for d, _t in copied)  # it only moves forward
    assert error == "" and isinstance(db, Database)
    db.close()
    assert [(n, c) for _text, n, c in steps] == [(1, 2), (2, 2)]
    assert steps[0][0] == "Keeping a copy of your data"
    assert steps[1][0].startswith("Updating: search: covering indexes")
    assert state(old_db) == ("0003", LIST_INDEXES, ROWS)
    backup = old_db.with_name(old_db.name + ".before-0003")
    assert state(backup) == ("0002", set(), ROWS)  # the copy is the file as it was
    assert not backup.with_name(backup.name + ".partial").exists()
    assert upgrade_due(old_db) is None
    # Nothing left to do: the next open is the plain one.
    db2, error2, steps2 = run_upgrade(qtbot, StoreUpgrade(old_db))
    assert error2 == "" and steps2 == []
    assert isinstance(db2, Database)
    db2.close()


class StopInside(StoreUpgrade):
    """Stops itself (as the window's Stop button does) inside migration 0003, after its
    first index was built: the step's transaction must roll back."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.seen: list[str] = []

    def statement_started(self, statement: str) -> None:
        self.seen.append(statement)
        if sum(s.lstrip().upper().startswith("CREATE INDEX") for s in self.seen) == 2:
            self.stop()


def test_a_stopped_upgrade_leaves_the_file_as_before_the_step(old_db: Path,
                                                              qtbot: QtBot) -> None:
    upgrade = StopInside(old_db)
    db, error, _steps = run_upgrade(qtbot, upgrade)
    assert db is None and error == StoreUpgrade.STOPPED
    assert state(old_db) == ("0002", set(), ROWS)  # not even the first index is left
    db2, error2, steps2 = run_upgrade(qtbot, StoreUpgrade(old_db))
    assert error2 == "" and isinstance(db2, Database)
    db2.close()
    assert [s[0].split(":")[0] for s in steps2] == ["Updating"]  # the copy was kept
    assert state(old_db) == ("0003", LIST_INDEXES, ROWS)


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from agent_desktop import store_upgrade
from agent_desktop.store_upgrade import StoreUpgrade

mode, path = sys.argv[1], Path(sys.argv[2])
calls = []

class Killed(StoreUpgrade):
    def statement_started(self, statement):
        calls.append(statement)
        creates = sum(s.lstrip().upper().startswith("CREATE INDEX") for s in calls)
        if mode == "migration" and creates == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # two indexes built, the third starting

    def _check_stop(self):
        calls.append("check")
        if mode == "backup" and len(calls) == 4:
            os.kill(os.getpid(), signal.SIGKILL)  # in the middle of the copy
        super()._check_stop()

if mode == "backup":
    store_upgrade.BACKUP_PAGES_PER_STEP = 2
up = Killed(path)
up.start()
up.wait(60)
print("not killed")
"""


@pytest.mark.parametrize("mode", ["migration", "backup"])
def test_a_kill_during_the_upgrade_leaves_a_store_that_opens_and_finishes(
        old_db: Path, qtbot: QtBot, mode: str) -> None:
    done = subprocess.run([sys.executable, "-c", KILL_SCRIPT, mode, str(old_db)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    backup = old_db.with_name(old_db.name + ".before-0003")
    if mode == "backup":
        assert not backup.exists()  # a half copy never passes for the backup
    assert state(old_db) == ("0002", set(), ROWS)
    db, error, steps = run_upgrade(qtbot, StoreUpgrade(old_db))
    assert error == "" and isinstance(db, Database)
    db.close()
    assert len(steps) == (2 if mode == "backup" else 1)
    assert state(old_db) == ("0003", LIST_INDEXES, ROWS)
    assert state(backup) == ("0002", set(), ROWS)


def _startup(root: Path) -> startup.Startup:
    return startup.begin(parse_args(["--no-phone", "--no-sync", "--data-dir", str(root),
                                     "--demo-rows", "0", "--lang", "en"]), ["test"])


def _during_migration(monkeypatch: pytest.MonkeyPatch,
                      on_gui: Callable[[MigrationWindow], bool]) -> dict[str, Any]:
    """Hold the worker at the first statement of migration 0003 until `on_gui(window)`,
    polled on the GUI thread while `open_store` runs its loop, returns True.

    `on_gui` is asked only once the GUI thread has ticked twice while the worker sat
    inside the migration (`seen["held_ticks"]`): that is what proves the window stays
    responsive. Counting every tick instead raced the worker — with a small file the copy
    and the step change can land before the first 20 ms tick, so a live GUI counted 1.
    """
    release = threading.Event()
    holding = threading.Event()
    seen: dict[str, Any] = {"ticks": 0, "held_ticks": 0}

    def held(self: StoreUpgrade, statement: str) -> None:
        if statement.lstrip().upper().startswith("CREATE INDEX"):
            holding.set()
            assert release.wait(30), "the GUI side never released the migration"

    monkeypatch.setattr(StoreUpgrade, "statement_started", held)
    timer = QTimer()
    timer.setInterval(20)

    def poll() -> None:
        seen["ticks"] += 1
        if holding.is_set():
            seen["held_ticks"] += 1  # the GUI thread runs while the worker is inside 0003
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MigrationWindow) and w.isVisible()]
        if windows and seen["held_ticks"] >= 2 and on_gui(windows[0]):
            timer.stop()
            release.set()

    timer.timeout.connect(poll)
    timer.start()
    seen["timer"] = timer
    return seen


def test_open_store_shows_the_progress_window_and_stays_responsive(
        app_root: Path, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    path = AppPaths.from_root(app_root).database
    path.parent.mkdir(parents=True, exist_ok=True)
    make_old_database(path)
    start = _startup(app_root)
    shown: dict[str, str] = {}

    def look(window: MigrationWindow) -> bool:
        step = window.findChild(QLabel, "migrationStep")
        assert step is not None
        if "Step 2 of 2" not in step.text():
            return False
        heading = window.findChild(QLabel, "migrationHeading")
        elapsed = window.findChild(QLabel, "migrationElapsed")
        assert heading is not None and elapsed is not None
        shown.update(heading=heading.text(), step=step.text(), elapsed=elapsed.text())
        shots = REPO / "artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(shots / "migration-window.png"))
        return True

    seen = _during_migration(monkeypatch, look)
    fatal: list[str] = []
    db = startup.open_store(start, fatal.append)
    try:
        assert fatal == [] and isinstance(db, Database)
        assert shown["heading"] == "Updating your database (one-time)…"
        assert shown["step"].startswith("Step 2 of 2: Updating: search: covering indexes")
        assert shown["elapsed"].endswith("elapsed")
        assert seen["held_ticks"] >= 2  # the GUI ticked while the worker was inside 0003
        assert not any(isinstance(w, MigrationWindow) and w.isVisible()
                       for w in QApplication.topLevelWidgets())
        assert state(path)[:2] == ("0003", LIST_INDEXES)
        assert "database migration" in start.timer.phases
    finally:
        if db is not None:
            db.close()
        start.release_logging()


def test_closing_the_window_asks_then_stops_safely(app_root: Path, qtbot: QtBot,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = AppPaths.from_root(app_root).database
    path.parent.mkdir(parents=True, exist_ok=True)
    make_old_database(path)
    start = _startup(app_root)
    progress: list[str] = []

    def close_and_stop(window: MigrationWindow) -> bool:
        box = window.findChild(QMessageBox, "stopMigrationBox")
        if not progress:
            window.close()  # the agent clicks the window's close button
            progress.append("asked")
            return False
        if box is None or not box.isVisible():
            return False
        assert window.isVisible()  # closing only asked
        stop = next(b for b in box.findChildren(QPushButton) if b.text() == "Stop and close")
        stop.click()
        progress.append(window.findChild(QLabel, "migrationStep").text())  # type: ignore[union-attr]
        return True

    _during_migration(monkeypatch, close_and_stop)
    fatal: list[str] = []
    db = startup.open_store(start, fatal.append)
    start.release_logging()
    assert db is None and fatal == []  # stopped on request: nothing to complain about
    assert progress == ["asked", "Stopping safely…"]
    assert state(path) == ("0002", set(), ROWS)
    # The next start finishes the job.
    monkeypatch.undo()
    start = _startup(app_root)
    db = startup.open_store(start, fatal.append)
    try:
        assert isinstance(db, Database) and fatal == []
        assert state(path) == ("0003", LIST_INDEXES, ROWS)
    finally:
        if db is not None:
            db.close()
        start.release_logging()


def test_keep_updating_closes_nothing(qtbot: QtBot) -> None:
    window = MigrationWindow()
    qtbot.addWidget(window)
    window.show()
    stops: list[int] = []
    window.stop_requested.connect(lambda: stops.append(1))
    window.show_step("Keeping a copy of your data", 1, 2)
    window.show_progress(30, 120)
    assert (window.progress.maximum(), window.progress.value()) == (120, 30)
    window.close()
    box = window.findChild(QMessageBox, "stopMigrationBox")
    assert box is not None and box.isVisible() and window.isVisible()
    keep = next(b for b in box.findChildren(QPushButton) if b.text() == "Keep updating")
    keep.click()
    qtbot.waitUntil(lambda: not box.isVisible())
    assert window.isVisible() and stops == []
    assert window.step_label.text() == "Step 1 of 2: Keeping a copy of your data"
    window.show_step("Updating: the next one", 2, 2)
    assert window.progress.maximum() == 0  # busy again: a migration does not say how far
    window.done()
    assert not window.isVisible()


def test_a_locked_database_behind_the_schema_is_refused_in_plain_words(
        app_root: Path, qtbot: QtBot) -> None:
    """Another window holds the file: the upgrade does not start; the agent is told."""
    path = AppPaths.from_root(app_root).database
    path.parent.mkdir(parents=True, exist_ok=True)
    make_old_database(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    start = _startup(app_root)
    fatal: list[str] = []
    try:
        db = startup.open_store(start, fatal.append)
    finally:
        other.execute("ROLLBACK")
        other.close()
        start.release_logging()
    assert db is None
    assert len(fatal) == 1 and "locked" in fatal[0]
    assert state(path) == ("0002", set(), ROWS)
    assert not path.with_name(path.name + ".before-0003").exists()


def test_database_migrate_fails_whole_steps_only(old_db: Path) -> None:
    """`Database.migrate` (servers, tools and tests open stores with it) has the window's
    guarantee too: a failure at the second CREATE INDEX of 0003 leaves none of them."""
    from sqlalchemy import event

    db = Database.open(old_db, migrate=False)
    seen: list[str] = []

    def fail_second_index(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        if statement.lstrip().upper().startswith("CREATE INDEX"):
            seen.append(statement)
            if len(seen) == 2:
                raise RuntimeError("disk went away")

    event.listen(db.engine, "before_cursor_execute", fail_second_index)
    with pytest.raises(RuntimeError, match="disk went away"):
        db.migrate()
    db.close()
    assert len(seen) == 2
    assert state(old_db) == ("0002", set(), ROWS)
    reopened = Database.open(old_db)  # and the next open finishes
    reopened.close()
    assert state(old_db)[:2] == (head_revision(), LIST_INDEXES)


def test_an_interrupted_copy_leaves_no_backup(old_db: Path, tmp_path: Path) -> None:
    db = Database.open(old_db, migrate=False)
    target = tmp_path / "copy.sqlite3"

    def stop(_status: int, _remaining: int, _total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        db.backup_to(target, progress=stop, pages=1)
    db.close()
    assert not target.exists()
    assert not target.with_name(target.name + ".partial").exists()
