"""The per-round hot path on driver-level statements (push of new rows, incremental pull,
token lookup) against the general ORM path, on SQLite and on a real PostgreSQL.

Both paths must leave the same rows, change-log entries and client state, and answer the
same pages: the driver path is an optimisation of the general one, never a second
behaviour. Each test also checks that the path it means to exercise really ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from sync.server import push as push_module
from sync.server.accounts import create_team, create_user
from sync.server.auth import AuthService, Principal, token_hash
from sync.server.config import ServerConfig
from sync.server.db import ServerDatabase
from sync.server.errors import ApiError
from sync.server.feed import Feed
from sync.server.models import AuthSession, ChangeLog, Client, Record, Token, User
from sync.server.pull import PullIn, PullService
from sync.server.push import MutationIn, PushIn, PushService
from tests.integration.server.conftest import make_db_url
from tests.integration.server.harness import new_uuid

pytestmark = pytest.mark.integration


class Services:
    def __init__(self, db: ServerDatabase) -> None:
        self.db = db
        self.push = PushService(db, Feed(db.is_postgres), (1, 1), 1000)
        self.pull = PullService(db, 500, 5000)
        self.mid: dict[str, int] = {}

    def principal(self, username: str) -> Principal:
        with self.db.read() as s:
            u = s.execute(select(User).where(User.username == username)).scalar_one()
            return Principal(u.id, u.username, u.role, u.team_id, 0)

    def send(self, p: Principal, client: str, changes: list[tuple[str, str, dict[str, Any]]]
             ) -> list[dict[str, Any]]:
        muts = []
        for entity, uuid, fields in changes:
            self.mid[client] = self.mid.get(client, 0) + 1
            muts.append(MutationIn(mutation_id=self.mid[client], entity=entity,
                                   entity_uuid=uuid, op="upsert", changed_fields=fields,
                                   schema_version=1))
        out = self.push.push(p, PushIn(client_id=client, schema_version=1, mutations=muts))
        return [r.model_dump() for r in out.results]

    def pull_all(self, p: Principal, client: str, cursor: str | None) -> tuple[list[Any], str]:
        changes: list[Any] = []
        while True:
            page = json.loads(self.pull.pull(p, PullIn(client_id=client, schema_version=1,
                                                       cursor=cursor, limit=7)))
            changes += page["changes"]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return changes, cursor or ""


@pytest.fixture(scope="module")
def services(backend: str, request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    url = make_db_url(backend, request, tmp_path_factory.mktemp(f"hot_{backend}"))
    db = ServerDatabase(url)
    db.migrate()

    def accounts(s: Any) -> None:
        create_team(s, "hot")
        create_team(s, "other")
        for name, role, team in (("ann", "agent", "hot"), ("bob", "agent", "hot"),
                                 ("lee", "team_lead", "hot"), ("zed", "agent", "other"),
                                 ("root", "admin", None)):
            create_user(s, name, "pw-long-enough", role, team)

    db.run_write(accounts)
    yield Services(db)
    db.dispose()


def _batch() -> tuple[list[tuple[str, str, dict[str, Any]]], list[str]]:
    """One of each new-row shape: customer, its children, a call with and without a
    customer, a task under the call."""
    cust, phone, tag, note, call, lone_call, task = (new_uuid() for _ in range(7))
    return [
        ("customer", cust, {"name": "Hot Path", "city": "Lyon"}),
        ("phone", phone, {"customer_uuid": cust, "raw": "+33 1 23 45 67 89"}),
        ("tag", tag, {"customer_uuid": cust, "name": "vip"}),
        ("note", note, {"customer_uuid": cust, "body": "called back"}),
        ("call_log", call, {"customer_uuid": cust, "direction": "out", "number": "123"}),
        ("task", task, {"customer_uuid": cust, "call_log_uuid": call,
                        "due_at": "2026-12-01T09:00:00.000+00:00"}),
        ("call_log", lone_call, {"direction": "in", "number": "456"}),
    ], [cust, phone, tag, note, call, task, lone_call]


def _stored(db: ServerDatabase, uuids: list[str], client: str) -> list[Any]:
    """Rows and change-log entries of `uuids`, with identities replaced by positions."""
    pos = {u: f"#{i}" for i, u in enumerate(uuids)} | {client: "<client>"}

    def norm(text: str | None) -> str | None:
        for k, v in pos.items():
            text = text.replace(k, v) if text else text
        return text

    with db.read() as s:
        recs = {r.uuid: r for r in s.execute(select(Record).where(Record.uuid.in_(uuids)))
                .scalars()}
        log = s.execute(select(ChangeLog.record_id, ChangeLog.op, ChangeLog.audience_user_id,
                               ChangeLog.audience_team_id)
                        .join(Record, Record.id == ChangeLog.record_id)
                        .where(Record.uuid.in_(uuids)).order_by(ChangeLog.seq)).all()
        by_id = {r.id: pos[r.uuid] for r in recs.values()}
        rows = [(r.entity, norm(r.customer_uuid), norm(r.call_log_uuid), r.author_id,
                 r.owner_user_id, r.team_id, r.version, json.loads(norm(r.data) or ""),
                 json.loads(norm(r.field_versions) or ""), r.deleted_at, r.audio_available,
                 r.created_at == r.updated_at) for r in (recs[u] for u in uuids)]
        client_row = s.get(Client, client)
        assert client_row is not None
        return [rows, [(by_id[e.record_id], e.op, e.audience_user_id, e.audience_team_id)
                       for e in log], client_row.last_mutation_id]


def _spy_new_rows(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records whether each push went the new-rows way to the end (True) or fell back."""
    taken: list[bool] = []
    real = PushService._push_new_rows

    def spy(self: PushService, *args: Any) -> Any:
        out = real(self, *args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(PushService, "_push_new_rows", spy)
    return taken


@pytest.mark.parametrize("pusher", ["ann", "lee", "root"])
def test_new_rows_path_stores_what_the_general_path_stores(
        services: Services, monkeypatch: pytest.MonkeyPatch, pusher: str) -> None:
    p = services.principal(pusher)
    taken = _spy_new_rows(monkeypatch)
    fast_client, slow_client = new_uuid(), new_uuid()
    fast_batch, fast_uuids = _batch()
    fast = services.send(p, fast_client, fast_batch)
    assert taken == [True]
    monkeypatch.setattr(push_module, "NEW_ROWS_MAX", 0)  # the general path, same shape
    slow_batch, slow_uuids = _batch()
    slow = services.send(p, slow_client, slow_batch)
    assert taken == [True], "the general path ran"
    assert fast == slow
    assert all(r["status"] == "applied" and r["version"] == 1 for r in fast)
    assert _stored(services.db, fast_uuids, fast_client) == \
        _stored(services.db, slow_uuids, slow_client)


def test_new_rows_path_repeats_are_duplicates_and_the_pulled_rows_match(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    ann, lee = services.principal("ann"), services.principal("lee")
    taken = _spy_new_rows(monkeypatch)
    client = new_uuid()
    _c, cursor = services.pull_all(lee, client, None)
    batch, uuids = _batch()
    first = services.send(ann, "ann-" + client, batch)
    services.mid["ann-" + client] -= len(batch)  # the same request again (lost answer)
    again = services.send(ann, "ann-" + client, batch)
    assert taken == [True, True]
    assert [r["status"] for r in first] == ["applied"] * 7
    assert [r["status"] for r in again] == ["duplicate"] * 7
    fast_changes, _ = services.pull_all(lee, client, cursor)
    monkeypatch.setattr(PullService, "_log_round", lambda *_a: None)  # general log page
    slow_changes, _ = services.pull_all(lee, client, cursor)
    assert [c["uuid"] for c in fast_changes] == uuids
    assert fast_changes == slow_changes


def test_anything_unusual_falls_back_to_the_general_path(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    ann, zed = services.principal("ann"), services.principal("zed")
    taken = _spy_new_rows(monkeypatch)
    cust = new_uuid()
    services.send(ann, "a1", [("customer", cust, {"name": "Mine"})])
    # An edit that looks like a create (every required field sent): found under the lock,
    # the batch is handed to the general path, which applies it as an update.
    res = services.send(ann, "a1", [("customer", new_uuid(), {"name": "New"}),
                                    ("customer", cust, {"name": "Mine", "city": "Paris"})])
    assert [r["status"] for r in res] == ["applied", "applied"]
    assert res[1]["version"] == 2
    # A partial edit is not a create: never planned for the driver path.
    res = services.send(ann, "a1", [("customer", cust, {"city": "Nice"})])
    assert res[0]["version"] == 3
    # A child under someone else's customer: the general path rejects it, as before.
    res = services.send(zed, "z1", [("phone", new_uuid(), {"customer_uuid": cust,
                                                          "raw": "1"})])
    assert res[0]["status"] == "rejected" and res[0]["error"]["code"] == "forbidden"
    # A child of a customer not on the server: unknown parent.
    res = services.send(ann, "a1", [("tag", new_uuid(), {"customer_uuid": new_uuid(),
                                                        "name": "x"})])
    assert res[0]["error"]["code"] == "unknown_parent"
    assert taken == [True, False, False, False]
    # A field the checks refuse never reaches the driver path at all.
    before = len(taken)
    res = services.send(ann, "a1", [("customer", new_uuid(), {"name": "x", "nope": 1})])
    assert res[0]["error"]["code"] == "unknown_field" and len(taken) == before


def test_another_users_client_id_is_refused_on_the_driver_paths(services: Services) -> None:
    ann, bob = services.principal("ann"), services.principal("bob")
    client = new_uuid()
    services.send(ann, client, [("customer", new_uuid(), {"name": "A"})])
    _c, cursor = services.pull_all(ann, client, None)
    with pytest.raises(ApiError) as push_err:
        services.send(bob, client, [("customer", new_uuid(), {"name": "B"})])
    with pytest.raises(ApiError) as pull_err:
        services.pull.pull(bob, PullIn(client_id=client, schema_version=1, cursor=cursor))
    assert push_err.value.status == pull_err.value.status == 403
    with services.db.read() as s:
        assert s.execute(select(Record).where(Record.data.contains('"B"'))).first() is None


def test_token_lookup_on_the_driver_honours_revocation_at_once(services: Services,
                                                                tmp_path: Path) -> None:
    db = services.db
    auth = AuthService(db, ServerConfig(database_url=db.url, recordings_dir=tmp_path))
    tokens = auth.login("bob", "pw-long-enough", "127.0.0.1")
    header = f"Bearer {tokens.access_token}"
    p = auth.authenticate(header)
    assert (p.username, p.role) == ("bob", "agent")
    with db.write() as s:  # another process (admin CLI, another worker) revokes it
        sid = s.execute(select(Token.session_id).where(
            Token.token_hash == token_hash(tokens.access_token))).scalar_one()
        s.execute(update(AuthSession).where(AuthSession.id == sid).values(revoked_at="now"))
    with pytest.raises(ApiError) as err:
        auth.authenticate(header)
    assert err.value.extra["reason"] == "token_revoked"
    with pytest.raises(ApiError) as err:
        auth.authenticate("Bearer " + tokens.refresh_token)
    assert err.value.extra["reason"] == "invalid_token"
