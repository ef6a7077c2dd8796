"""The app's exit codes when it stops before its workspace because of the database, each
with its own log line: 2 the database is refused, 3 the agent stopped the one-time update,
4 the update failed.

Real processes (offscreen): `python -m tests.e2e.test_app_exit_codes driver MODE ROOT`
runs the real `agent_desktop.app.run()` and exits with its code. The message box for a
refusal would block a process nobody looks at, so the driver prints its text instead; the
agent's stop is played on the real progress window (close it, then "Stop and close"),
while the migration is held at its first statement so that a small file cannot finish
before the click.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agent_desktop.paths import AppPaths
from tests.unit.test_app_store_upgrade import make_old_database

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def launch(mode: str, root: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8")
    done = subprocess.run([sys.executable, "-m", "tests.e2e.test_app_exit_codes", "driver",
                           mode, str(root)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=180, check=False)
    log = AppPaths.from_root(root).log_file.read_text(encoding="utf-8", errors="replace")
    return done, [ln for ln in log.splitlines() if "start-up ended" in ln]


def old_database(root: Path) -> Path:
    path = AppPaths.from_root(root).database
    path.parent.mkdir(parents=True, exist_ok=True)
    make_old_database(path)
    return path


def version(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("behind", [True, False], ids=["update-due", "at-newest"])
def test_a_refused_database_exits_with_2(tmp_path: Path, behind: bool) -> None:
    path = old_database(tmp_path)
    if not behind:
        from agent_desktop.store.db import Database

        Database.open(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another window holds the file
    try:
        done, ended = launch("plain", tmp_path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "FATAL The database is in use by another Agent Desktop window" in done.stdout
    assert len(ended) == 1, ended
    assert "start-up ended (exit code 2): database refused: The database is in use" in ended[0]
    assert version(path) == ("0002" if behind else "0003")


def test_an_update_stopped_by_the_agent_exits_with_3(tmp_path: Path) -> None:
    path = old_database(tmp_path)
    done, ended = launch("stop", tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "FATAL" not in done.stdout  # the agent chose it: no error box
    assert len(ended) == 1, ended
    assert "start-up ended (exit code 3): database update stopped by the agent" in ended[0]
    assert version(path) == "0002"


def test_a_failed_update_exits_with_4(tmp_path: Path) -> None:
    path = old_database(tmp_path)
    done, ended = launch("fail", tmp_path)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "FATAL Your database could not be updated to this version of Agent Desktop " \
           "(RuntimeError)" in done.stdout
    assert len(ended) == 1, ended
    assert "start-up ended (exit code 4): database update failed" in ended[0]
    assert version(path) == "0002"  # the failed step was rolled back


# -- the driver (a real process) ------------------------------------------------------------

def driver(mode: str, root: Path) -> int:
    import threading

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

    from agent_desktop import app as app_module
    from agent_desktop.startup import qapp
    from agent_desktop.store_upgrade import StoreUpgrade
    from ui.migration_window import MigrationWindow

    qapp([sys.argv[0]])
    app_module.show_fatal = lambda text: print("FATAL", text, flush=True)
    held = threading.Event()
    timer = QTimer()

    def statement(self: StoreUpgrade, sql: str) -> None:
        if not sql.lstrip().upper().startswith("CREATE INDEX"):
            return
        if mode == "fail":
            raise RuntimeError("the disk went away")
        held.set()
        self._stop.wait(60)  # until the agent's click has stopped the update

    def play_the_agent() -> None:
        if not held.is_set():
            return
        for window in QApplication.topLevelWidgets():
            if not isinstance(window, MigrationWindow) or not window.isVisible():
                continue
            box = window.findChild(QMessageBox, "stopMigrationBox")
            if box is None or not box.isVisible():
                window.close()  # asks first
                return
            next(b for b in box.findChildren(QPushButton)
                 if b.text() == "Stop and close").click()
            timer.stop()

    if mode in ("stop", "fail"):
        setattr(StoreUpgrade, "statement_started", statement)  # noqa: B010  (a test double)
    timer.setInterval(50)
    timer.timeout.connect(play_the_agent)
    timer.start()
    return app_module.run(["--data-dir", str(root), "--no-phone", "--no-sync",
                           "--demo-rows", "0", "--lang", "en"])


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "driver":
        sys.exit(driver(sys.argv[2], Path(sys.argv[3])))
    sys.exit("usage: python -m tests.e2e.test_app_exit_codes driver plain|stop|fail ROOT")
