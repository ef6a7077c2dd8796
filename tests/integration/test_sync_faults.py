"""Sync through a fault-injecting proxy, with the server killed and restarted: every local
change reaches the server exactly once and all installs converge (0 lost, 0 duplicated)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from agent_desktop.store.models import Customer, Note
from sync.client.errors import TransientError
from tests.integration.fault_proxy import (
    FAULTS,
    Agent,
    FaultProxy,
    ServerProcess,
    User,
    outbox_size,
    snapshot,
)

pytestmark = pytest.mark.integration

AGENT = User("fa1", "pw-fa1-secret")
LEAD = User("flead", "pw-flead-secret", "team_lead")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("fault-server"), [AGENT, LEAD])
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                               marks=pytest.mark.postgres)])
def chaos_server(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cluster = None
    url = None
    if request.param == "postgres":
        from tests.integration.server.harness import PgCluster

        cluster = PgCluster()
        cluster.start()
        url = cluster.create_database("client_chaos")
    srv = ServerProcess(tmp_path_factory.mktemp("chaos-server"), [AGENT, LEAD], db_url=url)
    srv.start()
    yield srv
    srv.stop()
    if cluster is not None:
        cluster.stop()


def add_notes(agent: Agent, customer_uuid: str, bodies: list[str]) -> None:
    with agent.db.transaction() as s:
        c = s.scalar(select(Customer).where(Customer.uuid == customer_uuid))
        assert c is not None
        for b in bodies:
            s.add(Note(customer=c, body=b))


def notes_with_prefix(agent: Agent, prefix: str) -> list[str]:
    return sorted(str(v["body"]) for k, v in snapshot(agent).items()
                  if k.startswith("note:") and str(v["body"]).startswith(prefix))


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("path", ["/sync/push", "/sync/pull"])
def test_each_fault_on_a_request_loses_and_duplicates_nothing(
        server: ServerProcess, tmp_path: Path, fault: str, path: str) -> None:
    hits = {"n": 0}

    def decide(_n: int, _method: str, p: str) -> str | None:
        if p == path and hits["n"] < 2:  # the first two matching requests fail
            hits["n"] += 1
            return fault
        return None

    proxy = FaultProxy(server.port, decide=decide, delay_s=0.2)
    writer = Agent(f"w-{fault}-{path[6:]}", tmp_path, proxy.url, AGENT, push_batch=4)
    reader = Agent(f"r-{fault}-{path[6:]}", tmp_path, server.url, LEAD)
    try:
        writer.sign_in()
        reader.sign_in()
        with writer.db.transaction() as s:
            c = Customer(name=f"fault {fault} {path}", owner=AGENT.username)
            s.add(c)
            s.flush()
            uid = c.uuid
        prefix = f"{fault}{path}:"
        add_notes(writer, uid, [f"{prefix}{i}" for i in range(10)])
        writer.sync_until_ok()
        assert proxy.injected[fault] == 2
        assert outbox_size(writer) == 0
        reader.sync()
        assert notes_with_prefix(reader, prefix) == sorted(f"{prefix}{i}" for i in range(10))
        writer.sync_until_ok()
        assert snapshot(writer) == {k: v for k, v in snapshot(reader).items()
                                    if k in snapshot(writer)}
    finally:
        writer.close()
        reader.close()
        proxy.close()


def test_chaos_random_faults_and_server_kills_converge(chaos_server: ServerProcess,
                                                       tmp_path: Path) -> None:
    """Three installs behind a proxy failing 25% of requests; the server is SIGKILLed and
    restarted twice while they sync. Afterwards all installs and a fresh observer agree,
    every note written exists exactly once, and every outbox is empty."""
    server = chaos_server
    proxy = FaultProxy(server.port, fault_rate=0.25, seed=7, delay_s=0.2)
    agents = [Agent(f"chaos-{i}", tmp_path, proxy.url, user, push_batch=3, pull_limit=7)
              for i, user in enumerate([AGENT, AGENT, LEAD])]
    observer = Agent("observer", tmp_path, server.url, LEAD)
    rng = random.Random(11)
    killer_errors: list[BaseException] = []
    try:
        for a in agents:
            for _ in range(20):  # sign-in itself may hit a fault
                try:
                    a.sign_in()
                    break
                except TransientError:  # retry like an agent would
                    time.sleep(0.05)
        seed = agents[0]
        with seed.db.transaction() as s:
            customers = [Customer(name=f"chaos {i}", owner=AGENT.username) for i in range(4)]
            s.add_all(customers)
            s.flush()
            uuids = [c.uuid for c in customers]
        written: list[str] = []
        for a in agents:
            a.sync_until_ok(attempts=200, pause_s=0.1)

        def kill_and_restart(after_s: float) -> None:
            try:
                time.sleep(after_s)
                server.kill()
                time.sleep(0.5)
                server.start()
            except BaseException as exc:  # reported by the test body
                killer_errors.append(exc)

        for round_no in range(6):
            killer = None
            if round_no in (1, 4):
                killer = threading.Thread(target=kill_and_restart, args=(0.3,))
                killer.start()
            for a in agents:
                for _ in range(3):
                    uid = rng.choice(uuids)
                    if rng.random() < 0.5:
                        body = f"chaos:{a.name}:{len(written)}"
                        add_notes(a, uid, [body])
                        written.append(body)
                    else:
                        with a.db.transaction() as s:
                            c = s.scalar(select(Customer).where(Customer.uuid == uid))
                            assert c is not None
                            setattr(c, rng.choice(["city", "company", "email"]),
                                    f"{a.name}-{round_no}-{rng.randint(0, 99)}")
            for a in agents:
                a.sync_until_ok(attempts=300, pause_s=0.1)
            if killer is not None:
                killer.join(60)
        assert not killer_errors
        proxy.fault_rate = 0.0
        for _ in range(2):
            for a in agents:
                a.sync_until_ok()
        observer.sign_in()
        observer.sync()
        assert sum(proxy.injected.values()) > 10
        assert all(outbox_size(a) == 0 for a in agents)
        assert notes_with_prefix(observer, "chaos:") == sorted(written)
        full = snapshot(observer)
        chaos_rows = {k: v for k, v in full.items()
                      if k.startswith("customer:") and k[9:] in uuids}
        for a in agents:
            mine = snapshot(a)
            assert {k: mine[k] for k in chaos_rows} == chaos_rows
            assert notes_with_prefix(a, "chaos:") == sorted(written)
    finally:
        for a in [*agents, observer]:
            a.close()
        proxy.close()
