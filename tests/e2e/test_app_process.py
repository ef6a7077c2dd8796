"""The app as a process (offscreen): the benchmark's first-paint hook and start-up refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent_desktop.paths import AppPaths

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def launch(root: Path, *args: str, env_extra: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "agent_desktop", "--data-dir", str(root),
                           *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_first_paint_line_then_quit(tmp_path: Path) -> None:
    done = launch(tmp_path, "--demo-rows", "300",
                  env_extra={"AGENT_DESKTOP_BENCH_FIRST_PAINT": "1"})
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("FIRST_PAINT ")]
    assert len(lines) == 1, done.stdout
    figures = json.loads(lines[0].removeprefix("FIRST_PAINT "))
    assert set(figures) == {"ms", "rss_mib", "epoch"}
    assert figures["ms"] > 0 and figures["rss_mib"] > 10
    # Demo data went into the empty database; a second start leaves it alone.
    db = AppPaths.from_root(tmp_path).database
    size = db.stat().st_size
    again = launch(tmp_path, "--demo-rows", "5000",
                   env_extra={"AGENT_DESKTOP_BENCH_FIRST_PAINT": "1"})
    assert again.returncode == 0, again.stderr
    import sqlite3

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 300
    assert db.stat().st_size >= size


def test_bad_arguments_are_refused_plainly(tmp_path: Path) -> None:
    done = launch(tmp_path, "--demo-rows", "-5")
    assert done.returncode == 2
    assert "--demo-rows must be 0 or more" in done.stderr


def test_ui_survives_many_void_calls() -> None:
    """PySide6 6.12 on Python 3.11 drops a reference to None on every void C++ call; the UI
    package pins the counts, so a long session does not abort (rc 134) — in a subprocess,
    since the failure mode kills the interpreter."""
    code = ("import ui\n"
            "from PySide6.QtWidgets import QApplication, QLabel\n"
            "app = QApplication([]); label = QLabel()\n"
            "for _ in range(30000): label.setText('x')\n"
            "print('alive')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "alive"
