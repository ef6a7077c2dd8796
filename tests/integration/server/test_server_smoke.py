from __future__ import annotations

from tests.integration.server.conftest import ServerHandle
from tests.integration.server.harness import new_uuid


def test_login_push_pull_roundtrip(server: ServerHandle) -> None:
    team = server.team()
    agent = server.api(server.user("agent", team))
    cu, ph = new_uuid(), new_uuid()
    res = agent.push(("customer", cu, {"name": "Ann", "city": "Paris"}),
                     ("phone", cu and ph, {"customer_uuid": cu, "raw": "+33 1 23"}))
    assert [r["status"] for r in res] == ["applied", "applied"]
    rep = agent.fresh_replica()
    assert rep.live("customer")[cu]["city"] == "Paris"
    assert rep.live("customer")[cu]["owner"] == agent.username
    assert rep.live("phone")[ph]["customer_uuid"] == cu
    agent.close()
