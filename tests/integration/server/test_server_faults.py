"""Nothing lost, nothing twice: pushes and pulls through a fault-injecting proxy, with the
server killed and restarted in the middle (issue 5, faults)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from sync.server.models import ChangeLog, Client, Record
from tests.integration.server.conftest import PASSWORD, ServerHandle, start_server
from tests.integration.server.faultproxy import FaultProxy
from tests.integration.server.harness import SCHEMA, new_uuid

pytestmark = pytest.mark.integration


class RetryingClient:
    """The client's contract in miniature: resend the same outbox batch until acknowledged."""

    def __init__(self, url: str, username: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=5,
                                 headers={"Connection": "close", **SCHEMA})
        self.username = username
        self.client_id = new_uuid()
        self.token = ""
        self.failures = 0

    def _call(self, fn: Callable[[], httpx.Response]) -> dict[str, Any]:
        for _ in range(60):
            try:
                if not self.token:
                    r = self.http.post("/auth/login", json={"username": self.username,
                                                            "password": PASSWORD})
                    r.raise_for_status()
                    self.token = r.json()["access_token"]
                r = fn()
                if r.status_code == 200:
                    return dict(r.json())
                assert r.status_code >= 500 or r.status_code == 401, r.text
            except (httpx.HTTPError, ValueError):
                pass
            self.failures += 1
        raise AssertionError("never acknowledged")

    def push(self, mutations: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call(lambda: self.http.post(
            "/sync/push", headers={"Authorization": f"Bearer {self.token}"},
            json={"client_id": self.client_id, "schema_version": 1, "mutations": mutations}))

    def pull(self, cursor: str | None) -> dict[str, Any]:
        return self._call(lambda: self.http.post(
            "/sync/pull", headers={"Authorization": f"Bearer {self.token}"},
            json={"client_id": self.client_id, "schema_version": 1, "cursor": cursor,
                  "limit": 25}))


FAULTS = ["drop", "duplicate", "lose_response", "cut_request", "delay:0.2", "duplicate",
          "lose_response", "drop", "cut_request", "duplicate"]


def test_faults_lose_nothing_and_apply_nothing_twice(backend: str,
                                                     request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    server: ServerHandle = start_server(backend, request, tmp_path / "srv")
    proxy = FaultProxy(server.proc.port)
    try:
        team = server.team()
        writer = RetryingClient(proxy.url, server.user("agent", team))
        reader = RetryingClient(proxy.url, server.user("team_lead", team))
        uuids: list[str] = []
        mid = 0
        for batch in range(10):
            muts = []
            for _ in range(20):
                mid += 1
                u = new_uuid()
                uuids.append(u)
                muts.append({"mutation_id": mid, "entity": "customer", "entity_uuid": u,
                             "op": "upsert", "changed_fields": {"name": f"F{mid}"},
                             "base_version": 0, "schema_version": 1})
            proxy.inject(*FAULTS[batch:batch + 3])
            if batch == 5:  # the server dies; the attempt fails; it comes back
                server.proc.stop(kill=True)
                with pytest.raises(httpx.HTTPError):
                    writer.http.post("/sync/push", json={}, headers={
                        "Authorization": f"Bearer {writer.token}"})
                server.proc.start()
            ack = writer.push(muts)
            assert ack["last_mutation_id"] == mid
        proxy.inject(*FAULTS)
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = reader.pull(cursor)
            seen |= {c["uuid"] for c in page["changes"] if c["entity"] == "customer"}
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        assert seen == set(uuids), "the puller lost rows"
        assert writer.failures > 0 and reader.failures > 0, "faults were really injected"
        assert "duplicate" in proxy.seen and "cut_request" in proxy.seen
        with server.db.read() as s:
            versions = list(s.execute(select(Record.version)
                                      .where(Record.uuid.in_(uuids))).scalars())
            entries = s.execute(select(func.count()).select_from(ChangeLog).join(Record)
                                .where(Record.uuid.in_(uuids))).scalar_one()
            last = s.execute(select(Client.last_mutation_id)
                             .where(Client.client_id == writer.client_id)).scalar_one()
        assert len(versions) == 200 and set(versions) == {1}, "a mutation was applied twice"
        assert entries == 200
        assert last == 200
    finally:
        proxy.close()
        server.proc.stop()
        server.db.dispose()
