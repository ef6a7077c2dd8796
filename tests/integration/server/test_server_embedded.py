"""The embedded loopback server the desktop app starts (issue 5 item 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from sync.server.embedded import EmbeddedServer, EmbeddedServerError
from tests.integration.server.harness import REPO, Api
from tests.process_tree import gone, status_line, tcp_port_free, wait_gone

pytestmark = pytest.mark.integration


def test_embedded_server_seeds_demo_and_survives_restart(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "data")
    assert server.seed_demo("agent-pass-1", "lead-pass-1", customers=3) > 3
    assert server.seed_demo("ignored-1", "ignored-2", customers=3) == 0
    server.start()
    try:
        agent = Api(server.url, "agent", "agent-pass-1")
        assert len(agent.sync_down().live("customer")) == 3
        agent.push(("customer", "11111111-2222-3333-4444-555555555555", {"name": "New"}))
        agent.close()
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode is not None
    server = EmbeddedServer(tmp_path / "data")  # stop() is final for an instance
    server.start()
    try:
        lead = Api(server.url, "lead", "lead-pass-1")
        assert len(lead.sync_down().live("customer")) == 4
        lead.close()
    finally:
        server.stop()


# -- the server never outlives the process that started it ---------------------------------

LAUNCHER = """
import sys, threading, time
from pathlib import Path
from sync.server.embedded import EmbeddedServer

server = EmbeddedServer(Path(sys.argv[1]))
# As the app does: started from a short-lived thread (PR_SET_PDEATHSIG would fire when
# this thread ends; the lifeline must not).
started = threading.Thread(target=server.start)
started.start()
started.join()
time.sleep(2)  # the starting thread is long gone: the server must still be up
print(server.pid, server.port, flush=True)
time.sleep(600)
"""


def test_the_server_stops_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path / "data")],
                                cwd=REPO, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True)
    assert launcher.stdout is not None
    server_pid = 0
    try:
        line = launcher.stdout.readline().split()
        assert len(line) == 2, "the launcher did not report its server"
        server_pid, port = int(line[0]), int(line[1])
        created = psutil.Process(server_pid).create_time()
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(10)
        assert wait_gone(server_pid, 30, created), \
            f"the server outlived its killed parent ({status_line(server_pid)})"
        assert tcp_port_free(port)
        log = (tmp_path / "data" / "server.log").read_text(encoding="utf-8")
        assert "the app that started this server is gone: stopping" in log
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(10)
        launcher.stdout.close()
        if server_pid and not gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)


def test_stop_cancels_a_start_in_progress_and_one_to_come(tmp_path: Path) -> None:
    """The app may quit while the server is still being seeded or started (its start runs
    on a thread): stop() must leave no server behind, whenever it comes."""
    server = EmbeddedServer(tmp_path / "data")
    outcome: list[BaseException | str] = []

    def start() -> None:
        try:
            outcome.append(server.start())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    deadline = time.monotonic() + 30
    while server.proc is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.proc is not None, "the server process was never spawned"
    proc = server.proc
    server.stop()  # while it starts (it takes ~1 s to answer /health)
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], EmbeddedServerError)
    assert "Agent Desktop is closing" in str(outcome[0])
    assert proc.poll() is not None
    # A stop before start() is even called (the app quit while the server was seeded):
    late = EmbeddedServer(tmp_path / "late")
    late.stop()
    with pytest.raises(EmbeddedServerError, match="closing"):
        late.start()
    assert late.proc is None  # never spawned


def test_the_launcher_refuses_a_lifeline_that_is_not_open() -> None:
    done = subprocess.run([sys.executable, "-m", "sync.server.embedded", "--lifeline-fd", "97",
                           "--", "serve"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert "--lifeline-fd 97 is not an open file descriptor" in done.stderr
