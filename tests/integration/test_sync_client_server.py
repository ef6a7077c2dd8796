"""The desktop sync client against the real server process over HTTP (uvicorn on loopback):
edits travel between installs, concurrent offline edits converge with the losing values
kept, reassignment removals, reset with the outbox kept, resumable first download."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from agent_desktop.store.models import Customer, Note, SyncConflict, Tag
from sync.client import state
from sync.client.conflicts import ConflictStore
from sync.client.errors import AuthError
from sync.server.admin import assign_customer, compact, revoke_sessions
from sync.server.db import ServerDatabase
from tests.integration.fault_proxy import Agent, ServerProcess, User, outbox_size, snapshot

pytestmark = pytest.mark.integration

A1 = User("a1", "pw-a1-secret")
A2 = User("a2", "pw-a2-secret")
LEAD = User("lead", "pw-lead-secret", "team_lead")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                               marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server on SQLite, then on a real temporary PostgreSQL cluster (where the change
    feed's snapshot ordering is what keeps concurrent commits from being skipped)."""
    root = tmp_path_factory.mktemp("server")
    cluster = None
    url = None
    if request.param == "postgres":
        from tests.integration.server.harness import PgCluster

        cluster = PgCluster()
        cluster.start()
        url = cluster.create_database("client_sync")
    srv = ServerProcess(root, [A1, A2, LEAD], db_url=url)
    srv.start()
    yield srv
    srv.stop()
    if cluster is not None:
        cluster.stop()


@pytest.fixture
def make_agent(server: ServerProcess, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    made: list[Agent] = []

    def make(name: str, user: User, **kw: object) -> Agent:
        a = Agent(name, tmp_path, server.url, user, **kw)  # type: ignore[arg-type]
        a.sign_in()
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()


def new_customer(agent: Agent, name: str, **fields: object) -> str:
    with agent.db.transaction() as s:
        c = Customer(name=name, owner=agent.user.username, **fields)
        s.add(c)
        s.flush()
        return c.uuid


def edit(agent: Agent, uuid: str, **fields: object) -> None:
    with agent.db.transaction() as s:
        c = s.scalar(select(Customer).where(Customer.uuid == uuid))
        assert c is not None
        for k, v in fields.items():
            setattr(c, k, v)


def customer(agent: Agent, uuid: str) -> Customer | None:
    with agent.db.transaction() as s:
        return s.scalar(select(Customer).where(Customer.uuid == uuid))


def test_edits_on_one_install_reach_another(make_agent: Callable[..., Agent]) -> None:
    laptop, desktop = make_agent("laptop", A1), make_agent("desktop", A1)
    lead = make_agent("lead", LEAD)
    uid = new_customer(laptop, "Zhang Wei", city="Beijing")
    with laptop.db.transaction() as s:
        c = s.scalar(select(Customer).where(Customer.uuid == uid))
        assert c is not None
        c.tags.append(Tag(name="vip"))
        s.add(Note(customer=c, body="called twice"))
    laptop.sync()
    assert outbox_size(laptop) == 0
    desktop.sync()
    lead.sync()
    for other in (desktop, lead):
        c = customer(other, uid)
        assert c is not None and (c.name, c.city) == ("Zhang Wei", "Beijing")
        assert c.server_version > 0
        assert outbox_size(other) == 0  # applied rows never echo back into the outbox
    # a tag removal is a tombstone that travels too
    with desktop.db.transaction() as s:
        tag = s.scalars(select(Tag)).one()
        tag.deleted_at = "2026-11-22T00:00:00.000+00:00"
    desktop.sync()
    laptop.sync()
    with laptop.db.transaction() as s:
        assert s.scalars(select(Tag)).one().deleted_at is not None
    assert snapshot(laptop) == snapshot(desktop)


def test_two_agents_offline_edits_converge_and_keep_the_loser(
        make_agent: Callable[..., Agent]) -> None:
    agent, lead = make_agent("agent", A1), make_agent("lead2", LEAD)
    uid = new_customer(agent, "Li Na", city="Shanghai", company="ACME")
    agent.sync()
    lead.sync()
    # both offline: same field differently, plus different fields
    edit(agent, uid, city="Hangzhou", email="li@example.com")
    edit(lead, uid, city="Nanjing", stage="qualified")
    agent.sync()   # arrives first
    lead.sync()    # arrives last: its city wins (server arrival order)
    agent.sync()
    a, b = customer(agent, uid), customer(lead, uid)
    assert a is not None and b is not None
    assert (a.city, a.email, a.stage) == ("Nanjing", "li@example.com", "qualified")
    assert snapshot(agent) == snapshot(lead)
    lost = [(c.field, c.lost_value, c.current_value)
            for c in ConflictStore(agent.db).list_conflicts() if c.entity_uuid == uid]
    assert ("city", "Hangzhou", "Nanjing") in lost
    # the agent puts the lost value back; it is an ordinary edit and converges again
    item = next(c for c in ConflictStore(agent.db).list_conflicts() if c.field == "city")
    ConflictStore(agent.db).restore(item.id)
    agent.sync()
    lead.sync()
    lead_c = customer(lead, uid)
    assert lead_c is not None and lead_c.city == "Hangzhou"


def test_five_installs_random_offline_edits_converge(make_agent: Callable[..., Agent]) -> None:
    """a1 on three machines and the team lead on two, each editing offline between syncs."""
    agents = [make_agent(f"a1-{i}", A1) for i in range(3)] + \
             [make_agent(f"lead-{i}", LEAD) for i in range(2)]
    rng = random.Random(5)
    uuids = [new_customer(agents[0], f"shared {i}") for i in range(6)]
    for a in agents:
        a.sync()
    created_notes = 0
    for _round in range(4):
        for a in agents:
            for _ in range(3):
                uid = rng.choice(uuids)
                if rng.random() < 0.3:
                    with a.db.transaction() as s:
                        c = s.scalar(select(Customer).where(Customer.uuid == uid))
                        assert c is not None
                        s.add(Note(customer=c, body=f"{a.name} note {created_notes}"))
                    created_notes += 1
                else:
                    field = rng.choice(["city", "company", "status", "email"])
                    edit(a, uid, **{field: f"{a.name}-{field}-{rng.randint(0, 999)}"})
        order = agents[:]
        rng.shuffle(order)
        for a in order:
            a.sync()
    for _ in range(2):  # two quiet rounds: everyone has everything
        for a in agents:
            a.sync()
    snaps = [snapshot(a) for a in agents]
    assert all(s == snaps[0] for s in snaps[1:])
    notes = [v for k, v in snaps[0].items()
             if k.startswith("note:") and v["customer_uuid"] in uuids]
    assert len(notes) == created_notes  # none lost, none twice
    assert all(outbox_size(a) == 0 for a in agents)
    with agents[0].db.transaction() as s:
        assert s.scalars(select(SyncConflict)).first() is not None


def test_reassigned_customer_is_removed_locally(server: ServerProcess,
                                                make_agent: Callable[..., Agent]) -> None:
    mine, other = make_agent("a1-r", A1), make_agent("a2-r", A2)
    uid = new_customer(mine, "Moving Away")
    keep = new_customer(mine, "Staying")
    with mine.db.transaction() as s:
        c = s.scalar(select(Customer).where(Customer.uuid == uid))
        assert c is not None
        s.add(Note(customer=c, body="child row"))
    mine.sync()
    db = ServerDatabase(server.db_url)
    try:
        assign_customer(db, uid, "a2")
    finally:
        db.dispose()
    mine.sync()
    other.sync()
    assert customer(mine, uid) is None and customer(mine, keep) is not None
    with mine.db.transaction() as s:
        assert s.scalars(select(Note).where(Note.body == "child row")).first() is None
    moved = customer(other, uid)
    assert moved is not None and moved.owner == "a2"
    assert customer(other, keep) is None  # never visible to a2


def test_reset_after_compaction_keeps_the_outbox(server: ServerProcess,
                                                 make_agent: Callable[..., Agent]) -> None:
    a, b = make_agent("reset-a", A1), make_agent("reset-b", A1)
    uid = new_customer(a, "Before Reset")
    a.sync()
    b.sync()
    edit(b, uid, city="queued while behind")   # pending in b's outbox
    for i in range(5):
        new_customer(a, f"filler {i}")
    a.sync()
    db = ServerDatabase(server.db_url)
    try:
        # keep_last=1: b (cursor at a's first row) falls behind the horizon, a does not.
        compact(db, keep_last=1)
    finally:
        db.dispose()
    result = b.client.sync_round()
    assert result.pull.reset
    assert outbox_size(b) == 0
    a.sync()
    c = customer(a, uid)
    assert c is not None and c.city == "queued while behind"
    assert snapshot(a) == snapshot(b)


def test_interrupted_first_download_resumes(make_agent: Callable[..., Agent]) -> None:
    seed = make_agent("seeder", A2)
    with seed.db.transaction() as s:
        for i in range(120):
            s.add(Customer(name=f"bulk {i:03d}", owner="a2"))
    seed.sync()
    fresh = make_agent("fresh", A2, pull_limit=25)
    fresh.client.group_rows = 25  # one page per transaction: stop after exactly two
    pages = {"n": 0}
    progress: list[tuple[int, int]] = []

    def stop_after_two() -> bool:
        return pages["n"] >= 2

    def count(done: int, total: int) -> None:
        pages["n"] += 1
        progress.append((done, total))

    fresh.client.pull(count, stop_after_two)
    assert not fresh.client.initial_sync_done()
    with fresh.db.transaction() as s:
        cursor = state.get(s, state.CURSOR)
    assert cursor is not None and len(snapshot(fresh)) == 50 == progress[-1][0]
    assert progress[0][1] > progress[0][0]  # an estimated total drives the progress bar
    # "restart the app": a new client object over the same database
    from sync.client.client import SyncClient
    again = SyncClient(fresh.db, fresh.transport, pull_limit=25)
    again.group_rows = 25
    rest: list[tuple[int, int]] = []
    again.pull(lambda d, t: rest.append((d, t)))
    assert rest[0][0] > 50  # continued, not restarted
    assert again.initial_sync_done()
    names = {v["name"] for k, v in snapshot(fresh).items() if k.startswith("customer:")}
    assert {f"bulk {i:03d}" for i in range(120)} <= names


def test_revoked_session_needs_sign_in(server: ServerProcess,
                                       make_agent: Callable[..., Agent]) -> None:
    a = make_agent("revoked", A2)
    a.sync()
    db = ServerDatabase(server.db_url)
    try:
        assert revoke_sessions(db, "a2") >= 1
    finally:
        db.dispose()
    with pytest.raises(AuthError, match="sign in again"):
        a.sync()
    assert a.tokens.load() is None
    a.sign_in()
    a.sync()
