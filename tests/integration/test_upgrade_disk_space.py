"""The one-time database update on a disk too full for the copy it keeps first: the real
app, on a real small tmpfs, asks the agent — who can update without a copy, or quit.

The app runs in a private mount namespace (`unshare -rm`, as tests/integration/
test_disk_full.py does) whose data folder is a tmpfs holding a database from before
migration 0003, with a few MB free: enough for the migration, not for a copy of the
file plus its margin. The process is the real `agent_desktop.app.run()` (offscreen, quits
after its first paint); a timer inside it plays the agent and clicks the question's
button. Since the tmpfs vanishes with the namespace, the worker reports what it left
(version, files, log lines) as JSON on its last line.

    python -m tests.integration.test_upgrade_disk_space worker ROOT ANSWER
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_desktop.store.space import MARGIN_MIN, format_size
from tests.integration.test_disk_full import require_private_tmpfs
from tests.unit.test_app_store_upgrade import make_old_database

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
QUIT = "Quit"
WITHOUT_COPY = "Update without a copy"
NO_QUESTION = "-"


def run_in_tmpfs(tmp_path: Path, size_kib: int, answer: str) -> dict[str, Any]:
    require_private_tmpfs(tmp_path)
    old = tmp_path / "old.sqlite3"
    make_old_database(old)
    assert not old.with_name(old.name + "-wal").exists()
    root = tmp_path / "root"
    root.mkdir()
    script = ('mount -t tmpfs -o size="$2"k tmpfs "$1" && mkdir -p "$1/data" && '
              'cp "$3" "$1/data/agent.sqlite3" && shift 3 && exec "$@"')
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8",
               AGENT_DESKTOP_BENCH_FIRST_PAINT="1")
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(root), str(size_kib), str(old),
         sys.executable, "-m", "tests.integration.test_upgrade_disk_space", "worker",
         str(root), answer],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(lines[-1])
    result["stderr"] = done.stderr
    result["size"] = old.stat().st_size
    return result


def test_short_of_space_the_agent_updates_without_a_copy(tmp_path: Path) -> None:
    out = run_in_tmpfs(tmp_path, 4096 + 512, WITHOUT_COPY)
    assert out["code"] == 0, out
    text = out["box"]
    data_dir = f"{tmp_path / 'root' / 'data'}"
    needed = format_size(out["size"] + MARGIN_MIN)  # a small file: the minimum margin
    assert f"the copy needs {needed} in {data_dir}, and only" in text, text
    assert "MB is free" in text and "update now without a copy" in text
    assert out["version"] == "0003"
    assert out["files"] == ["agent.sqlite3"]  # no copy, no half copy
    assert any("the agent chose to update without a backup" in ln for ln in out["log"])


def test_short_of_space_the_agent_quits(tmp_path: Path) -> None:
    out = run_in_tmpfs(tmp_path, 4096 + 512, QUIT)
    assert out["code"] == 3, out  # EXIT_UPGRADE_STOPPED
    assert out["box"]
    assert out["version"] == "0002"  # nothing was written
    assert out["files"] == ["agent.sqlite3"]
    assert any("start-up ended (exit code 3): database update stopped by the agent (quit "
               "when the disk was too full for the backup)" in ln for ln in out["log"]), out
    assert any("not enough free space for the backup" in ln for ln in out["log"])


def test_with_room_the_copy_is_kept_and_nobody_is_asked(tmp_path: Path) -> None:
    out = run_in_tmpfs(tmp_path, 32 * 1024, NO_QUESTION)
    assert out["code"] == 0, out
    assert out["box"] == ""
    assert out["version"] == "0003"
    assert out["files"] == ["agent.sqlite3", "agent.sqlite3.before-0003"]


# -- inside the namespace -------------------------------------------------------------------

def worker(root: Path, answer: str) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

    from agent_desktop import app as app_module
    from agent_desktop.paths import AppPaths
    from agent_desktop.startup import qapp

    qt = qapp([sys.argv[0]])
    seen = {"box": ""}

    def play_the_agent() -> None:
        for widget in QApplication.topLevelWidgets():
            box = widget.findChild(QMessageBox, "backupSpaceBox")
            if box is not None and box.isVisible() and not seen["box"]:
                seen["box"] = box.text()
                if answer != NO_QUESTION:
                    next(b for b in box.findChildren(QPushButton) if b.text() == answer).click()

    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(play_the_agent)
    timer.start()
    shown: list[str] = []
    app_module.show_fatal = shown.append  # type: ignore[assignment]  # never blocks here
    code = app_module.run(["--data-dir", str(root), "--no-phone", "--no-sync",
                           "--demo-rows", "0", "--lang", "en"])
    timer.stop()
    del qt
    paths = AppPaths.from_root(root)
    conn = sqlite3.connect(f"file:{paths.database}?mode=ro", uri=True)
    try:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        conn.close()
    files = sorted(p.name for p in paths.data_dir.iterdir()
                   if not p.name.endswith(("-wal", "-shm")) and p.is_file())
    log = paths.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    print(json.dumps({"code": code, "box": seen["box"], "fatal": shown, "version": version,
                      "files": files, "log": log}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        worker(Path(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(f"usage: python -m {__spec__.name if __spec__ else __file__} worker ROOT "
                 "ANSWER")
