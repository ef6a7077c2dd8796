"""Schemathesis over the served OpenAPI spec: generated and malformed requests to every
operation, signed in, never produce a server error (§0: 4xx with a clear JSON error)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.server.conftest import ServerHandle

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_no_server_errors_on_generated_requests(server: ServerHandle, tmp_path: Path) -> None:
    team = server.team()
    api = server.api(server.user("team_lead", team))
    st = Path(sys.executable).with_name("st")
    cmd = [str(st), "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
           "-H", f"Authorization: Bearer {api.tokens['access_token']}",
           "-H", "X-Schema-Version: 1",
           "--exclude-path", "/auth/logout",  # would sign the fuzzer itself out
           "--max-examples", "40", "--seed", "20261122", "--workers", "2",
           "--phases", "examples,coverage,fuzzing", "--generation-database", "none",
           "--request-timeout", "60", "--no-color"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    found = re.search(r"(\d+) generated, (\d+) passed", out)
    assert found is not None, out[-3000:]
    assert int(found.group(1)) == int(found.group(2)) >= 200
    assert "Tested: 12" in out, "every operation except logout was exercised"
