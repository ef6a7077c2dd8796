"""The app as a process takes the early road to its first frame (offscreen).

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
