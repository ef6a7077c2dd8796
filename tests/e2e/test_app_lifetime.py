"""The real app as a process never leaves its embedded sync server behind: not when it
quits while the server is still starting, and not when it is killed outright.

Offscreen (no X server needed); the app is driven by a scenario like the Xvfb tests, and
its process tree is recorded while it runs (tests/e2e/app_runner.py).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from agent_desktop.paths import AppPaths
from tests.e2e.app_runner import AppProcess, app_env, run_app
from tests.process_tree import Seen, status_line, tcp_port_free, wait_gone

pytestmark = pytest.mark.integration


def _server_port(seen: Seen) -> int:
    args = seen.cmdline.split()
    return int(args[args.index("--port") + 1])


def test_quitting_while_the_embedded_server_starts_leaves_nothing(tmp_path: Path) -> None:
    """The scenario ends as soon as rows are painted: the app quits while its embedded
    server is being seeded or started (what left one running for 46 minutes)."""
    run_app(None, tmp_path, [{"op": "wait_rows", "min": 20}], "--no-phone")
    log = AppPaths.from_root(tmp_path).log_file.read_text(encoding="utf-8", errors="replace")
    # A start cut short by the app closing is no error for the agent or the log.
    assert "embedded sync server not started" not in log, log[-3000:]


def test_killing_the_app_ends_its_embedded_server(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({
        "result": str(tmp_path / "result.json"), "timeout_s": 30,
        "steps": [{"op": "wait_rows", "min": 20}, {"op": "wait_sync", "timeout_s": 170},
                  {"op": "wait", "ms": 600_000}]}), encoding="utf-8")
    app = AppProcess(["--data-dir", str(tmp_path), "--demo-rows", "200", "--no-phone"],
                     app_env(None, scenario))
    paths = AppPaths.from_root(tmp_path)
    try:
        deadline = time.monotonic() + 180
        servers: list[Seen] = []
        while time.monotonic() < deadline and app.proc.poll() is None:
            servers = app.descendants.matching("sync.server.embedded")
            log = paths.log_file
            if servers and log.exists() and "embedded sync server on" in log.read_text(
                    encoding="utf-8", errors="replace"):
                break
            time.sleep(0.2)
        assert len(servers) == 1, f"no embedded server seen; app output:\n{app.output}"
        server = servers[0]
        port = _server_port(server)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        app.proc.send_signal(signal.SIGKILL)
        assert app.wait(30) == -signal.SIGKILL
        assert wait_gone(server.pid, 30, server.create_time), \
            f"the embedded server outlived the killed app ({status_line(server.pid)})"
        assert tcp_port_free(port)
        server_log = paths.data_dir / "server" / "server.log"
        assert "the app that started this server is gone: stopping" in server_log.read_text(
            encoding="utf-8", errors="replace")
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.wait(10)
        app.finish()
