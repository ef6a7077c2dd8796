"""Authorization matrix: every role × resource × action against the real server (§2).

Roles around one customer owned by `owner` (an agent of team A): `peer` (another agent of
team A), `lead` (team A's lead), `stranger` (an agent of team B), `other_lead` (team B's
lead) and `admin`. Each case gets freshly made rows, so writes in one case cannot change
the outcome of another.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.server.conftest import ServerHandle
from tests.integration.server.harness import OPEN_APIS, Api, new_uuid

ROLES = ("owner", "peer", "lead", "stranger", "other_lead", "admin")
RESOURCES = ("customer", "phone", "note", "call_log", "recording")
SEE = {"owner", "lead", "admin"}
AUTHOR_ONLY = {"owner", "admin"}  # insert-only rows: only their author (or an admin)

EDITS = {"customer": {"city": "Edited"}, "phone": {"label": "work"},
         "note": {"body": "edited"}, "call_log": {"wrapup_notes": "edited"},
         "recording": {"state": "complete"}}


def _expected(role: str, resource: str, action: str) -> bool:
    if action in ("update", "delete") and resource in ("call_log", "recording"):
        return role in AUTHOR_ONLY
    return role in SEE


CASES = [(role, res, action) for role in ROLES for res in RESOURCES
         for action in ("read", "update", "delete")]
CASES += [(role, "customer", "add_child") for role in ROLES]
CASES += [(role, "recording", "download") for role in ROLES]


@dataclass
class World:
    apis: dict[str, Api]


@pytest.fixture(scope="module")
def world(server: ServerHandle) -> Iterator[World]:
    team_a, team_b = server.team(), server.team()
    names = {"owner": server.user("agent", team_a), "peer": server.user("agent", team_a),
             "lead": server.user("team_lead", team_a),
             "stranger": server.user("agent", team_b),
             "other_lead": server.user("team_lead", team_b),
             "admin": server.user("admin")}
    apis = {role: server.api(name) for role, name in names.items()}
    for api in apis.values():
        OPEN_APIS.remove(api)  # kept for the whole module
    yield World(apis)
    for api in apis.values():
        api.close()


def _make_rows(owner: Api, with_audio: bool) -> dict[str, str]:
    rows = {r: new_uuid() for r in RESOURCES}
    audio = os.urandom(4096)
    owner.push(("customer", rows["customer"], {"name": "M"}),
               ("phone", rows["phone"], {"customer_uuid": rows["customer"], "raw": "1"}),
               ("note", rows["note"], {"customer_uuid": rows["customer"], "body": "n"}),
               ("call_log", rows["call_log"], {"customer_uuid": rows["customer"],
                                               "direction": "out", "number": "1"}),
               ("recording", rows["recording"], {"call_log_uuid": rows["call_log"],
                                                 "path": "m.wav"}))
    if with_audio:
        url = f"/recordings/{rows['recording']}/upload"
        r = owner.http.post(url, headers=owner.headers | {
            "Upload-Length": str(len(audio)),
            "Upload-Sha256": hashlib.sha256(audio).hexdigest()})
        assert r.status_code == 201
        r = owner.http.patch(url, content=audio, headers=owner.headers | {
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert r.status_code == 204
    return rows


@pytest.mark.parametrize(("role", "resource", "action"), CASES)
def test_authorization(world: World, role: str, resource: str, action: str) -> None:
    owner = world.apis["owner"]
    actor = world.apis[role]
    rows = _make_rows(owner, with_audio=action == "download")
    target = rows[resource]
    allowed = _expected(role, resource, action)
    if action == "read":
        actor.sync_down()
        assert (target in actor.replica.live()) is allowed
        return
    if action == "download":
        r = actor.http.get(f"/recordings/{target}/audio", headers=actor.headers)
        assert r.status_code == (200 if allowed else 404)
        return
    if action == "add_child":
        res = actor.push(("tag", new_uuid(), {"customer_uuid": target, "name": "t"}))
    elif action == "update":
        res = actor.push((resource, target, EDITS[resource], "upsert", 1))
    else:
        res = actor.push((resource, target, {"deleted_at": "2026-11-22T07:00:00.000+00:00"},
                          "delete", 1))
    if allowed:
        assert res[0]["status"] == "applied", res
    else:
        assert res[0]["status"] == "rejected", res
        assert res[0]["error"]["code"] == "forbidden"
    owner.sync_down()
    data = owner.replica.rows[target][1]
    if action == "update":
        changed = all(data.get(k) == v for k, v in EDITS[resource].items())
        assert changed is allowed
    elif action == "delete":
        assert (data.get("deleted_at") is not None) is allowed
