"""The app as a process takes the early road to its first frame (offscreen), and under a
real X server that first frame already has the finished window's layout.

In a subprocess because the early road is about what is *not* imported yet when the first
rows are painted (SQLAlchemy, the ORM, the detail pane), and because `run()` owns the
event loop of its QApplication.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def launch(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8",
               AGENT_DESKTOP_BENCH_FIRST_PAINT="1")
    done = subprocess.run([sys.executable, "-m", "agent_desktop", "--data-dir", str(root),
                           "--no-phone", "--no-sync", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=180, check=False)
    lines: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        tag, _, payload = line.partition(" ")
        if tag in ("FIRST_PAINT", "STARTUP"):
            lines[tag] = json.loads(payload)
    return done, lines


def test_first_start_generates_demo_then_later_starts_paint_before_the_store(
        tmp_path: Path) -> None:
    # An empty data folder: the full path (demo data), nothing painted early.
    done, first = launch(tmp_path, "--demo-rows", "250")
    assert done.returncode == 0, done.stderr[-2000:]
    assert first["STARTUP"]["early_frame"] is False
    # Customers on disk: rows painted from plain sqlite3 before SQLAlchemy is imported,
    # then the whole app built in the same window.
    done, again = launch(tmp_path, "--demo-rows", "250")
    assert done.returncode == 0, done.stderr[-2000:]
    startup = again["STARTUP"]
    assert startup["early_frame"] is True
    assert startup["sqlalchemy_loaded_at_first_paint"] is False
    assert startup["ready_epoch"] >= again["FIRST_PAINT"]["epoch"]
    assert startup["cpu_ms_at_first_paint"] > 0
    assert set(again["FIRST_PAINT"]) == {"ms", "rss_mib", "epoch"}
    assert again["FIRST_PAINT"]["rss_mib"] > startup["rss_mib_at_first_paint"]
    log = (tmp_path / "log" / "agent-desktop.log").read_text(encoding="utf-8")
    assert "first paint" in log and "store imports (SQLAlchemy)" in log
    # The early road opens the log file after the first frame; what was logged before it
    # is in the file, in order.
    assert log.count("starting; data in") == 2
    assert log.rindex("starting; data in") < log.rindex("start-up after main()")


@pytest.mark.e2e
def test_first_frame_on_x_has_the_final_layout(xvfb: str, tmp_path: Path) -> None:
    """Under a real X server, as an agent starts it (phone and sync on): the first frame,
    painted before the store is opened, already has the layout of the finished window —
    the phone and call-list docks, their tabs, the status bar — and the list pane's pixels
    are the same once the store, workspace, softphone and sync are in. Both frames are kept
    under artifacts/screenshots/layout/ to look at."""
    from tests.e2e.app_runner import run_app

    shots = REPO / "artifacts" / "screenshots" / "layout"
    for name in ("first-frame", "everything-up"):
        for ext in ("png", "json"):
            (shots / f"{name}.{ext}").unlink(missing_ok=True)
    # First start: demo data generated on the full path (nothing painted early).
    run_app(xvfb, tmp_path, [{"op": "wait_rows", "min": 20}], "--no-phone", "--no-sync")
    # Second start: the early first frame, then everything; shots at both moments.
    os.environ["AGENT_DESKTOP_LAYOUT_SHOTS"] = str(shots)
    try:
        run_app(xvfb, tmp_path, [{"op": "wait_rows", "min": 20},
                                 {"op": "wait_phone", "timeout_s": 60},
                                 {"op": "wait", "ms": 2000}], timeout=300)
    finally:
        del os.environ["AGENT_DESKTOP_LAYOUT_SHOTS"]
    first = json.loads((shots / "first-frame.json").read_text(encoding="utf-8"))
    final = json.loads((shots / "everything-up.json").read_text(encoding="utf-8"))
    assert set(first["docks"]) == {"dock_softphonePanel", "dock_dialerPanel"}
    phone = first["docks"]["dock_softphonePanel"]
    assert phone["visible"] and phone["rect"][2] >= 300 and phone["area"] == "RightDockWidgetArea"
    assert [t["tabs"] for t in first["dock_tabs"]] == [["Phone", "Call list"]]
    for key in first:
        assert final[key] == first[key], f"{key} moved between the first frame and the end"

    from PySide6.QtGui import QImage

    before = QImage(str(shots / "first-frame.png"))
    after = QImage(str(shots / "everything-up.png"))
    assert not before.isNull() and before.size() == after.size()
    # The list and the (empty) detail pane look the same, to the pixel; around them only
    # texts change as data arrives (the Today count, status-bar figures).
    for pane in ("list", "detail"):
        x, y, w, h = first[pane]
        assert before.copy(x, y, w, h) == after.copy(x, y, w, h), f"the {pane} pane changed"
    # The dock region really shows different content (the stand-in, then the phone):
    # the comparison above is not blind.
    dx, dy, dw, dh = phone["rect"]
    assert before.copy(dx, dy, dw, dh) != after.copy(dx, dy, dw, dh)


def test_a_database_behind_the_schema_is_migrated_behind_the_progress_window(
        tmp_path: Path) -> None:
    """The process on a database from before migration 0003: the migration runs (on its
    worker thread, the progress window up), then the list is painted from the migrated
    file; a copy of the old file is kept."""
    import sqlite3

    done, _first = launch(tmp_path, "--demo-rows", "250")
    assert done.returncode == 0, done.stderr[-2000:]
    db_file = tmp_path / "data" / "agent.sqlite3"
    assert db_file.is_file()
    with sqlite3.connect(db_file) as conn:
        for name in ("ix_customers_list", "ix_phone_numbers_list", "ix_tags_list"):
            conn.execute(f"DROP INDEX {name}")
        conn.execute("UPDATE alembic_version SET version_num = '0002'")
    conn.close()
    done, again = launch(tmp_path, "--demo-rows", "250")
    assert done.returncode == 0, done.stderr[-2000:]
    assert again["STARTUP"]["early_frame"] is False  # the migration went first
    log = (tmp_path / "log" / "agent-desktop.log").read_text(encoding="utf-8")
    assert "migrating the database to 0003" in log
    assert "database migration" in log  # the start-up phase, timed
    conn = sqlite3.connect(db_file)
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0003",)
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"ix_customers_list", "ix_phone_numbers_list", "ix_tags_list"} <= indexes
    finally:
        conn.close()
    assert (db_file.with_name(db_file.name + ".before-0003")).is_file()
