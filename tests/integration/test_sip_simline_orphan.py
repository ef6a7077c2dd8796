"""The app's embedded simulated line does not outlive a killed app (no orphan process)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PARENT = """
import sys, time
from sip.simline_process import SimLineProcess
line = SimLineProcess(ring_ms=100)
print(line.start(), line.pid, flush=True)
time.sleep(120)
"""


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for a reaper counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in state


def test_line_stops_when_the_app_is_killed() -> None:
    app = subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO, text=True,
                           stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert app.stdout is not None
    line_pid = 0
    try:
        domain, pid = app.stdout.readline().split()
        line_pid = int(pid)
        assert domain.startswith("127.0.0.1:") and not gone(line_pid)
        app.send_signal(signal.SIGKILL)
        app.wait(10)
        deadline = time.monotonic() + 10
        while not gone(line_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gone(line_pid), "the simulated line outlived the killed app"
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(5)
        app.stdout.close()
        if line_pid and not gone(line_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(line_pid, signal.SIGKILL)
