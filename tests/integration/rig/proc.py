"""A subprocess whose stdout lines are collected, with readiness waits and PID teardown."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A loopback port free for both UDP and TCP right now (SIP peers bind both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as s2:
                s2.bind(("127.0.0.1", port))
            return int(port)
        except OSError:
            continue
    raise RuntimeError("no free loopback port found")


def udp_bound(port: int) -> bool:
    """Whether some process has a UDP socket bound to `port` (reads /proc/net/udp)."""
    hexport = f"{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]
            if local.rsplit(":", 1)[1] == hexport:
                return True
    return False


class Peer:
    """Runs `cmd`; `lines` holds its stdout (and stderr) lines as they arrive."""

    def __init__(self, name: str, cmd: Sequence[str], cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            self.cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace",
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name=f"{name}-stdout")
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float = 10.0, start: int = 0) -> re.Match[str]:
        """First line from index `start` matching `pattern`; raises with the output."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and i >= len(self.lines)):
                    break
                self._cond.wait(min(left, 0.1))
        raise AssertionError(f"{self.name}: no line matching {pattern!r} within {timeout} s "
                             f"(rc={self.proc.poll()}); output:\n" + "\n".join(self.lines[-40:]))

    def has_line(self, pattern: str) -> bool:
        rx = re.compile(pattern)
        with self._cond:
            return any(rx.search(x) for x in self.lines)

    def wait_udp(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if udp_bound(port):
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not listen on UDP {port} (rc={self.proc.poll()})"
                             ":\n" + "\n".join(self.lines[-40:]))

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the process group we created, then SIGKILL; returns the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._reader.join(2)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL at once: a peer that dies without a word (fault tests)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
