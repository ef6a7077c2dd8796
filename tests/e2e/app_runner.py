"""Start the real app as a process, let a scenario drive it, and make sure it ends —
with everything it started.

The app runs `python -m agent_desktop` exactly as an agent starts it, with
AGENT_DESKTOP_E2E_SCRIPT pointing at a scenario (ui/scripted_scenario.py drives the real
widgets in-process); when the scenario ends the app closes its window and quits, and the
test waits for that exit. While it runs, the app's process tree is recorded: after it
exits, every process it started (the embedded sync server, the simulated line) must end
within a bounded wait — a survivor is killed by its PID and the test fails. A scenario
that hangs gets SIGTERM, then SIGKILL, by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.process_tree import Descendants

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "artifacts" / "screenshots"
DEMO_ROWS = 2000


def app_env(display: str | None, scenario: Path) -> dict[str, str]:
    """The app's environment: a real X display, or offscreen when `display` is None."""
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(QT_QPA_PLATFORM="xcb" if display else "offscreen",
               AGENT_DESKTOP_E2E_SCRIPT=str(scenario), LANG="C.UTF-8", PYTHONUNBUFFERED="1")
    if display:
        env["DISPLAY"] = display
    env.pop("WAYLAND_DISPLAY", None)
    return env


class AppProcess:
    """`python -m agent_desktop …` with its output collected and its descendants recorded."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "agent_desktop", *args], env=env,
                                     cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace")
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="app-output", daemon=True)
        self._reader.start()
        self.descendants = Descendants(self.proc.pid)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None after ending a process that did not exit in time."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            return None

    def finish(self) -> None:
        """Ends the output reader; fails the test if anything the app started is left."""
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        survivors = self.descendants.end_survivors(timeout=30)
        assert not survivors, ("processes started by the app outlived it (killed now):\n"
                               + "\n".join(survivors))


def run_app(display: str | None, root: Path, steps: list[dict[str, object]], *extra: str,
            timeout: float = 180) -> dict[str, Any]:
    """Run a scenario in the real app; returns the scenario's result (asserted ok)."""
    result = root / "e2e-result.json"
    scenario = root / "scenario.json"
    scenario.write_text(json.dumps({"result": str(result), "screenshots": str(SHOTS),
                                    "timeout_s": 30, "steps": steps}, ensure_ascii=False),
                        encoding="utf-8")
    app = AppProcess(["--data-dir", str(root), "--demo-rows", str(DEMO_ROWS), *extra],
                     app_env(display, scenario))
    try:
        code = app.wait(timeout)
    finally:
        app.finish()
    if code is None:
        pytest.fail(f"app did not finish the scenario within {timeout:.0f} s:\n{app.output}")
    assert code == 0, app.output
    assert result.exists(), f"no scenario result; app output:\n{app.output}"
    data: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
    assert data["ok"], (f"{data['error']}\n{json.dumps(data['steps'], ensure_ascii=False)}\n"
                        f"{app.output}")
    return data
