"""A known client's first pull (cursor null) on driver statements against the general ORM
path, on SQLite and on a real PostgreSQL.

Every new install makes this call and 500 agents' first rounds fall in the same seconds,
so it has its own driver path (`PullService._first_page`); it must answer exactly what the
general path answers (rows, cursor, counts, authorization), and each test checks that the
path it means to exercise really ran. On PostgreSQL the page's plan is checked on a table
without statistics, where the planner otherwise sorts every visible row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from sync.server.accounts import create_team, create_user
from sync.server.auth import Principal
from sync.server.db import ServerDatabase
from sync.server.errors import ApiError
from sync.server.feed import Feed
from sync.server.models import Client, User
from sync.server.pull import PullIn, PullService
from sync.server.push import MutationIn, PushIn, PushService
from tests.integration.server.bench import seed_bulk
from tests.integration.server.conftest import make_db_url
from tests.integration.server.harness import new_uuid

pytestmark = pytest.mark.integration

# (name, role, team, customers of their own): the lead sees team "hot" (ann + bob), the
# admin everything.
ACCOUNTS = (("ann", "agent", "hot", 6), ("bob", "agent", "hot", 4),
            ("lee", "team_lead", "hot", 0), ("zed", "agent", "other", 2),
            ("root", "admin", None, 0))


class Services:
    def __init__(self, db: ServerDatabase) -> None:
        self.db = db
        self.push = PushService(db, Feed(db.is_postgres), (1, 1), 1000)
        self.pull = PullService(db, 500, 5000)
        self.mid = 0

    def principal(self, username: str) -> Principal:
        with self.db.read() as s:
            u = s.execute(select(User).where(User.username == username)).scalar_one()
            return Principal(u.id, u.username, u.role, u.team_id, 0)

    def send(self, p: Principal, client: str, names: list[str]) -> None:
        muts = []
        for name in names:
            self.mid += 1
            muts.append(MutationIn(mutation_id=self.mid, entity="customer",
                                   entity_uuid=new_uuid(), op="upsert",
                                   changed_fields={"name": name}, schema_version=1))
        self.push.push(p, PushIn(client_id=client, schema_version=1, mutations=muts))

    def page(self, p: Principal, client: str, cursor: str | None, limit: int
             ) -> dict[str, Any]:
        page = json.loads(self.pull.pull(p, PullIn(client_id=client, schema_version=1,
                                                   cursor=cursor, limit=limit)))
        page.pop("server_time")
        return dict(page)


@pytest.fixture(scope="module")
def services(backend: str, request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    url = make_db_url(backend, request, tmp_path_factory.mktemp(f"first_{backend}"))
    db = ServerDatabase(url)
    db.migrate()

    db.run_write(lambda s: [create_team(s, team) for team in ("hot", "other")])
    db.run_write(lambda s: [create_user(s, name, "pw-long-enough", role, team)
                            for name, role, team, _rows in ACCOUNTS])
    svc = Services(db)
    for name, _role, _team, rows in ACCOUNTS:  # customers of their own
        if rows:
            svc.send(svc.principal(name), f"seed-{name}", [f"{name} {i}" for i in range(rows)])
    yield svc
    db.dispose()


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool | str]:
    """Records whether each first pull was answered by the driver path (True), declined
    (False) or raised there ("raised")."""
    taken: list[bool | str] = []
    real = PullService._first_page

    def spy(self: PullService, *args: Any) -> Any:
        try:
            out = real(self, *args)
        except ApiError:
            taken.append("raised")
            raise
        taken.append(out is not None)
        return out

    monkeypatch.setattr(PullService, "_first_page", spy)
    return taken


@pytest.mark.parametrize("who", ["ann", "lee", "root", "zed"])
@pytest.mark.parametrize("limit", [3, 5000])
def test_first_page_answers_what_the_general_path_answers(
        services: Services, monkeypatch: pytest.MonkeyPatch, who: str, limit: int) -> None:
    p = services.principal(who)
    client = new_uuid()
    services.push.push(p, PushIn(client_id=client, schema_version=1, mutations=[]))
    taken = _spy(monkeypatch)
    fast = services.page(p, client, None, limit)
    assert taken == [True]
    monkeypatch.setattr(PullService, "_first_page", lambda *_a: None)
    general = services.page(p, client, None, limit)
    assert fast == general
    assert fast["changes"], "every principal here sees some rows"
    assert fast["estimated_remaining"] == max(
        {"ann": 6, "lee": 10, "root": 12, "zed": 2}[who] - limit, 0)
    # The rest of the download (snapshot pages, then the log) follows from either cursor.
    rest_fast = services.page(p, client, fast["next_cursor"], 5000)
    rest_general = services.page(p, client, general["next_cursor"], 5000)
    assert rest_fast == rest_general


def test_whole_download_from_the_driver_first_page_sees_each_visible_row_once(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    ann = services.principal("ann")
    client = new_uuid()
    services.send(ann, client, ["ann new"])
    taken = _spy(monkeypatch)
    names: list[str] = []
    cursor: str | None = None
    while True:
        page = services.page(ann, client, cursor, 2)
        names += [c["data"]["name"] for c in page["changes"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert taken == [True]
    assert sorted(set(names)) == sorted([f"ann {i}" for i in range(6)] + ["ann new"])
    assert not any(n.startswith(("bob", "zed")) for n in names)


def test_a_new_client_is_bound_by_the_general_path(services: Services,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bob = services.principal("bob")
    client = new_uuid()
    taken = _spy(monkeypatch)
    page = services.page(bob, client, None, 5000)
    assert taken == [False]  # unknown client: the driver path declined
    assert sorted(c["data"]["name"] for c in page["changes"]) == [f"bob {i}" for i in range(4)]
    with services.db.read() as s:
        row = s.get(Client, client)
        assert row is not None and row.user_id == bob.user_id
    assert services.page(bob, client, None, 5000) == page
    assert taken == [False, True]


def test_another_users_client_id_is_refused_on_the_first_page(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    ann, zed = services.principal("ann"), services.principal("zed")
    client = new_uuid()
    services.send(ann, client, ["ann private"])
    taken = _spy(monkeypatch)
    with pytest.raises(ApiError) as err:
        services.page(zed, client, None, 5000)
    assert err.value.status == 403
    assert taken == ["raised"]  # by the driver path, before any row was read


@pytest.mark.postgres
def test_first_page_walks_an_index_without_statistics(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_db_url("postgres", request, tmp_path_factory.mktemp("first_plan"))
    db = ServerDatabase(url)
    try:
        db.migrate()
        with db.engine.begin() as conn:
            for table in ("records", "change_log"):
                conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))

        def accounts(s: Any) -> None:
            create_team(s, "plan")
            create_user(s, "ann", "pw-long-enough", "agent", "plan")
            create_user(s, "lee", "pw-long-enough", "team_lead", "plan")

        db.run_write(accounts)
        seed_bulk(db, "ann", 1500)
        svc = Services(db)
        service = svc.pull
        plans: list[str] = []
        for who in ("ann", "lee"):
            p = svc.principal(who)
            client = new_uuid()
            svc.push.push(p, PushIn(client_id=client, schema_version=1, mutations=[]))
            shape, params = service._shape(p)
            plan_sql, _count, page_sql = service._first_sql(shape)
            with db.driver_transaction() as c:
                c.execute("EXPLAIN " + page_sql, params | {"after": 0, "n": 501})
                naive = "\n".join(str(r[0]) for r in c.fetchall())
                c.execute(plan_sql)
                c.execute("EXPLAIN " + page_sql, params | {"after": 0, "n": 501})
                plans.append("\n".join(str(r[0]) for r in c.fetchall()))
            if who == "ann":  # why the setting is there: this very statement sorts
                assert "Sort" in naive, naive
            taken = _spy(monkeypatch)
            page = svc.page(p, client, None, 500)
            assert taken == [True] and len(page["changes"]) == 500 and page["has_more"]
        assert "Sort" not in plans[0] and "Index Scan using ix_records_owner_id" in plans[0], \
            plans[0]
        assert "Sort" not in plans[1] and "Index Scan" in plans[1], plans[1]
        with db.engine.connect() as conn:
            assert conn.execute(text(
                "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM "
                "pg_stat_user_tables WHERE relname = 'records'")).scalar_one() is True
            # The setting ended with the page's transaction.
            assert conn.execute(text("SHOW enable_sort")).scalar_one() == "on"
    finally:
        db.dispose()
