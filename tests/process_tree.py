"""Which processes a test's process started, and whether they are really gone.

Why: the app starts children of its own (the embedded sync server, the simulated line);
a test that only waits for the app cannot tell that one of them outlived it (an e2e run
once left the embedded server running for 46 minutes). `Descendants` records the process
tree while the app runs; afterwards every recorded process must end within a bounded
wait, and any survivor is killed by its PID (never by name) and reported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


def gone(pid: int, create_time: float | None = None) -> bool:
    """Exited: no such PID, a zombie waiting for a reaper, or the PID reused since."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        return create_time is not None and abs(proc.create_time() - create_time) > 0.01
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float, create_time: float | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid, create_time):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def tcp_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nobody listens on `port` any more, and a new server could bind it (SO_REUSEADDR,
    as uvicorn binds: connections in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.settimeout(2)
        if probe.connect_ex((host, port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Seen:
    pid: int
    create_time: float
    cmdline: str


class Descendants:
    """Records every descendant of `root_pid` (polled every `interval` s) until stopped."""

    def __init__(self, root_pid: int, interval: float = 0.2) -> None:
        self.root_pid = root_pid
        self.seen: dict[tuple[int, float], Seen] = {}
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._poll, name="descendants", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.record()
            self._stop.wait(self._interval)

    def record(self) -> None:
        try:
            children = psutil.Process(self.root_pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            with contextlib.suppress(psutil.Error):
                key = (child.pid, child.create_time())
                if key not in self.seen:
                    self.seen[key] = Seen(child.pid, key[1], " ".join(child.cmdline()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def matching(self, text: str) -> list[Seen]:
        return [s for s in self.seen.values() if text in s.cmdline]

    def end_survivors(self, timeout: float = 20.0) -> list[str]:
        """Wait up to `timeout` for every recorded process to end; kill the others by PID
        (SIGKILL) and return what they were, for the test to fail with."""
        self.stop()
        deadline = time.monotonic() + timeout
        survivors: list[str] = []
        for s in self.seen.values():
            if wait_gone(s.pid, max(0.0, deadline - time.monotonic()), s.create_time):
                continue
            survivors.append(f"pid {s.pid}: {s.cmdline}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(s.pid, signal.SIGKILL)
            wait_gone(s.pid, 10, s.create_time)
        return survivors


def status_line(pid: int) -> str:
    """The `State:` line of /proc/PID/status (for failure messages)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "gone"
    return next((ln for ln in text.splitlines() if ln.startswith("State:")), "?")
