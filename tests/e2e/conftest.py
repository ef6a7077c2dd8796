"""Fixtures of the end-to-end tests: a private X server (Xvfb) per test.

Everything started here is stopped by its PID at teardown. The app itself is started and
ended by `tests/e2e/app_runner.py` (which also checks that nothing the app started
outlives it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def xvfb(tmp_path: Path) -> Iterator[str]:
    """A private X server on a free display (`-displayfd`: the server picks the number
    and writes it once it accepts clients); yields DISPLAY, stops it by PID."""
    xvfb_bin = shutil.which("Xvfb")
    assert xvfb_bin, "Xvfb is missing: run scripts/bootstrap.sh test"
    read_fd, write_fd = os.pipe()
    log_path = tmp_path / "xvfb.log"
    with log_path.open("wb") as log_file:  # a file, not a pipe nobody drains
        proc = subprocess.Popen(
            [xvfb_bin, "-displayfd", str(write_fd), "-screen", "0", "1400x900x24",
             "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        assert number.isdigit(), \
            f"Xvfb did not start: {log_path.read_text(errors='replace')[-2000:]}"
        yield f":{number}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
