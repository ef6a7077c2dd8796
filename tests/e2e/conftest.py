"""Fixtures of the end-to-end tests: a private X server (Xvfb) and session bus per test.

A desktop session has a D-Bus session bus; without one, the first D-Bus client on an X
display (Qt's input-method support, as the Chinese-input step runs) makes libdbus
*autolaunch* a bus (`dbus-launch --autolaunch`) that lives as long as the X server — it
outlived the app in the Xvfb tests. So each test gets its own bus, with no service
activation (nothing else starts on it: the keyring finds no Secret Service, as before).

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

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def session_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private D-Bus session bus (no service activation) in DBUS_SESSION_BUS_ADDRESS for
    the test (the app inherits it); yields its address, stops it by PID."""
    daemon = shutil.which("dbus-daemon")
    assert daemon, "dbus-daemon is missing: run scripts/bootstrap.sh test"
    config = tmp_path / "session-bus.conf"
    config.write_text(BUS_CONFIG.format(socket=tmp_path / "bus"), encoding="utf-8")
    proc = subprocess.Popen([daemon, f"--config-file={config}", "--nofork",
                             "--print-address=1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().decode().strip()  # printed once it listens
        assert address.startswith("unix:"), f"dbus-daemon did not start: {address!r}"
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def xvfb(tmp_path: Path, session_bus: str) -> Iterator[str]:
    """A private X server on a free display (`-displayfd`: the server picks the number
    and writes it once it accepts clients), with its session bus; yields DISPLAY, stops
    it by PID."""
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
        _stop(proc)
