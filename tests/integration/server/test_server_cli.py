"""The `agent-desktop-server` command line: admin actions and the demo seed, then the
results checked through the running server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.server.conftest import make_db_url
from tests.integration.server.harness import REPO, Api, ServerProcess


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "sync.server", "--db", db_url,
                           "--log-level", "warning", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_admin_cli_and_demo_seed(backend: str, request: pytest.FixtureRequest,
                                 tmp_path: Path) -> None:
    url = make_db_url(backend, request, tmp_path)
    assert _cli(url, "admin", "create-team", "sales").returncode == 0
    again = _cli(url, "admin", "create-team", "sales")
    assert again.returncode == 2 and "already exists" in again.stderr
    made = _cli(url, "admin", "create-user", "ann", "--role", "agent", "--team", "sales")
    assert made.returncode == 0, made.stderr
    found = re.search(r"password (\S+)", made.stdout)
    assert found is not None
    ann_pw = found.group(1)
    bad = _cli(url, "admin", "create-user", "bob", "--role", "team_lead")
    assert bad.returncode == 2 and "must belong to a team" in bad.stderr
    short = _cli(url, "admin", "create-user", "cy", "--password", "short")
    assert short.returncode == 2 and "at least 8" in short.stderr
    seed = _cli(url, "demo-seed", "--customers", "5", "--agent-password", "agent-pass-1",
                "--lead-password", "lead-pass-1")
    assert seed.returncode == 0, seed.stderr
    assert "user agent password agent-pass-1" in seed.stdout
    rows = int(re.search(r"(\d+) demo rows added", seed.stdout).group(1))  # type: ignore[union-attr]
    assert rows >= 10  # 5 customers and at least one phone each
    reseed = _cli(url, "demo-seed", "--customers", "5", "--agent-password", "x" * 8,
                  "--lead-password", "y" * 8)
    assert "0 demo rows added" in reseed.stdout, "seeding twice adds nothing"

    server = ServerProcess(url, tmp_path / "rec", tmp_path / "server.log")
    server.start()
    try:
        agent = Api(server.url, "agent", "agent-pass-1")
        lead = Api(server.url, "lead", "lead-pass-1")
        customers = agent.sync_down().live("customer")
        assert len(customers) == 5
        assert len(lead.sync_down().live("customer")) == 5
        target = sorted(customers)[0]
        assert _cli(url, "admin", "assign", target, "ann").returncode == 0
        ann = Api(server.url, "ann", ann_pw)
        assert set(ann.sync_down().live("customer")) == {target}
        agent.sync_down()
        assert target in agent.replica.removed
        missing = _cli(url, "admin", "assign", "no-such-customer", "ann")
        assert missing.returncode == 2 and "no customer" in missing.stderr
        assert _cli(url, "admin", "revoke", "ann").stdout.startswith("1 session")
        r = ann.pull_raw(ann.replica.cursor)
        assert r.status_code == 401 and r.json()["reason"] == "token_revoked"
        old_cursor = lead.replica.cursor
        lead.push(("customer", target, {"city": "Moved"}, "upsert", 2))
        assert _cli(url, "admin", "compact", "--keep-last", "0").returncode == 0
        assert lead.pull_raw(old_cursor).json()["reset_required"] is True
        for api in (agent, lead, ann):
            api.close()
    finally:
        server.stop()
    assert "Traceback" not in server.log_text()
