"""The embedded loopback server the desktop app starts (issue 5 item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.server.embedded import EmbeddedServer
from tests.integration.server.harness import Api

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
