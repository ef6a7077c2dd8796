"""Run the simulated customer line beside the app (the embedded demo default).

Why a helper: with no PBX configured, the composition root starts `sip.simline` as a
child process on a free loopback port, points the dial plan at it, and stops it by its
own PID at exit — so a new user can dial a demo customer and hear a real answer.
`start()` waits for the line's READY (a few hundred ms, at start-up, before the window
shows); a line that cannot start is a plain error, never a hang.
"""

from __future__ import annotations

import logging
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)
_READY = re.compile(r"^READY port=(\d+)")


class SimLineError(RuntimeError):
    """The simulated line could not start; `str()` is a sentence for the agent."""


class SimLineProcess:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, ring_ms: int = 1500,
                 hangup_after_s: float = 20.0, wav: Path | None = None,
                 python: str = sys.executable) -> None:
        self._cmd = [python, "-m", "sip.simline", "--host", host, "--port", str(port),
                     "--ring-ms", str(ring_ms), "--hangup-after-s", str(hangup_after_s),
                     "--exit-with-parent", str(os.getpid())]  # no orphan if we are killed
        if wav is not None:
            self._cmd += ["--wav", str(wav)]
        self._host = host
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def domain(self) -> str:
        """host:port to put in the dial plan (valid after start())."""
        return f"{self._host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout_s: float = 30.0) -> str:
        """Start the line and return its SIP domain. It is ready in ~0.1 s; the generous
        limit is for a loaded machine (a CI run once saw no READY within 10 s)."""
        if self._proc is not None:
            return self.domain
        root = Path(__file__).resolve().parent.parent
        self._proc = subprocess.Popen(
            self._cmd, cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        assert self._proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self._proc.stdout, selectors.EVENT_READ)
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = self._proc.stdout.readline()
                if not line:
                    break  # exited
                seen.append(line.rstrip())
                m = _READY.match(line)
                if m:
                    self.port = int(m.group(1))
                    log.info("simulated customer line ready on %s (pid %d)", self.domain,
                             self._proc.pid)
                    self._proc.stdout.close()  # we no longer read it; its prints go nowhere
                    return self.domain
        finally:
            sel.close()
        tail = "; ".join(s for s in seen[-3:] if s)
        self.stop()
        raise SimLineError("The simulated customer line did not start"
                           + (f" ({tail})" if tail else "") + ".")

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM by PID (the line hangs up and shuts pjsua2 down), SIGKILL if stuck."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("simulated line pid %d did not stop; killing it", proc.pid)
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None and not proc.stdout.closed:
            proc.stdout.close()
        return proc.returncode
