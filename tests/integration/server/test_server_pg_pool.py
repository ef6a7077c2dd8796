"""The server's PostgreSQL connections on the hot path (issue 5, 500 agents): checkout
without a ping but never a dead connection, reads outside transactions that keep their
prepared statements, a pool that holds a connection per thread instead of opening and
closing them per burst, and the token check done in the handler's own worker-thread
call. Real PostgreSQL (the suite's temporary cluster), real server process over HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import pq

from sync.server.config import ServerConfig
from sync.server.db import ServerDatabase
from tests.integration.server.conftest import ServerHandle, make_db_url, start_server
from tests.integration.server.harness import PgCluster, mutation, new_uuid

pytestmark = pytest.mark.postgres


@pytest.fixture()
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return make_db_url("postgres", request, tmp_path)


@pytest.fixture()
def db(pg_url: str) -> Iterator[ServerDatabase]:
    database = ServerDatabase(pg_url, pool_size=3, max_overflow=0)
    database.migrate()
    yield database
    database.dispose()


def _terminate_others(cluster: PgCluster, database: str) -> int:
    """Ends every backend connected to `database` (as a restart or an idle timeout would)
    and waits until they are gone; returns how many there were."""
    with psycopg.connect(cluster.admin_dsn, autocommit=True) as admin:
        pids = [r[0] for r in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 30
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                            (database,)).fetchone() != (0,):
            assert time.monotonic() < deadline, "terminated backends did not go away"
            time.sleep(0.05)
    return len(pids)


def _backend_pid(db: ServerDatabase) -> int:
    with db.driver_read() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return int(cur.fetchone()[0])


def test_a_connection_the_database_closed_is_replaced_at_checkout_without_a_ping(
        db: ServerDatabase, pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ping(*_a: Any) -> bool:
        raise AssertionError("checkout pinged the database (a round trip per checkout)")

    monkeypatch.setattr(db.engine.dialect, "do_ping", no_ping)
    before = _backend_pid(db)
    assert _backend_pid(db) == before  # the pool hands the same live connection back
    assert _terminate_others(pg_cluster, db.engine.url.database or "") >= 1
    after = _backend_pid(db)  # a dead pooled connection would raise here
    assert after != before
    with db.read() as s:  # the ORM's sessions check out through the same pool
        assert s.connection().exec_driver_sql("SELECT 1").scalar_one() == 1


def test_reads_run_outside_a_transaction_and_keep_prepared_statements(
        db: ServerDatabase) -> None:
    with db.driver_read() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
        assert cur.connection.info.transaction_status == pq.TransactionStatus.IDLE
    statement = db.sql("SELECT count(*) FROM server_state WHERE key = :k")
    for _ in range(8):  # psycopg prepares a statement on its 5th execution
        with db.driver_read() as cur:
            cur.execute(statement, {"k": "instance_id"})
            assert cur.fetchone() == (1,)
    with db.driver_read() as cur:
        cur.execute("SELECT pg_backend_pid(), array_agg(statement) "
                    "FROM pg_prepared_statements")
        same_pid, prepared = cur.fetchone()
    assert same_pid == pid
    # Before: every read ended in ROLLBACK, which psycopg follows with DEALLOCATE ALL.
    assert any("server_state" in text for text in prepared or []), prepared
    with db.write() as s:  # writes still run in a transaction, committed at the end
        conn: Any = s.connection().connection.driver_connection
        assert conn.autocommit is False
        s.connection().exec_driver_sql("SELECT 1")
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS


def test_the_pool_keeps_one_connection_per_thread(pg_url: str, tmp_path: Path) -> None:
    defaults = ServerConfig(database_url=pg_url, recordings_dir=tmp_path)
    assert defaults.db_pool > defaults.threads  # every thread and the event loop
    threads = 6
    database = ServerDatabase(pg_url, pool_size=threads, max_overflow=2)
    try:
        assert database.warm_pool() == threads
        assert database.engine.pool.checkedin() == threads  # type: ignore[attr-defined]
        seen: set[int] = set()
        lock = threading.Lock()

        def burst() -> None:
            barrier = threading.Barrier(threads)

            def hold() -> None:
                with database.driver_read() as cur:
                    cur.execute("SELECT pg_backend_pid()")
                    pid = int(cur.fetchone()[0])
                    barrier.wait(timeout=30)  # all threads hold a connection at once
                with lock:
                    seen.add(pid)

            workers = [threading.Thread(target=hold) for _ in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(timeout=60)

        for _ in range(4):
            burst()
        # With a pool smaller than the threads, every burst opened (and on check-in
        # closed) overflow connections: new backends each time.
        assert len(seen) == threads, seen
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def pg_server(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server("postgres", request, tmp_path_factory.mktemp("pgpool"),
                          ["--threads", "4"])
    yield handle
    handle.proc.stop()
    handle.db.dispose()


def test_the_server_survives_its_database_connections_being_cut(
        pg_server: ServerHandle, pg_cluster: PgCluster) -> None:
    agent = pg_server.api(pg_server.user())
    agent.push(("customer", new_uuid(), {"name": "before the cut"}))
    assert len(agent.sync_down().live("customer")) == 1
    pg_server.db.dispose()
    assert _terminate_others(pg_cluster, pg_server.db.engine.url.database or "") >= 1
    # Every pooled connection of the server is dead now; no request may see one.
    for i in range(3):
        agent.push(("customer", new_uuid(), {"name": f"after the cut {i}"}))
        r = agent.pull_raw(agent.replica.cursor)
        assert r.status_code == 200, r.text
        agent.replica.apply(r.json())
    assert sorted(c["name"] for c in agent.replica.live("customer").values()) == [
        "after the cut 0", "after the cut 1", "after the cut 2", "before the cut"]
    assert "Traceback" not in pg_server.proc.log_text()


def test_push_and_pull_check_the_token_in_their_worker_call(
        pg_server: ServerHandle) -> None:
    """On PostgreSQL the token is looked up in the same worker-thread call as the handler:
    every way a token can be wrong is still refused before anything is read or written."""
    agent = pg_server.api(pg_server.user())
    mutations = [mutation(1, "customer", new_uuid(), {"name": "x"})]
    body = {"client_id": agent.client_id, "schema_version": 1, "mutations": mutations}
    pull = {"client_id": agent.client_id, "schema_version": 1, "cursor": None}
    for headers, code in ((
            {"X-Schema-Version": "1"}, "missing_token"),
            ({"X-Schema-Version": "1", "Authorization": "Basic abc"}, "invalid_token"),
            ({"X-Schema-Version": "1", "Authorization": "Bearer at_nope"}, "invalid_token")):
        for method, path, payload in (("POST", "/sync/push", body),
                                      ("POST", "/sync/pull", pull),
                                      ("GET", f"/sync/pull?client_id={agent.client_id}",
                                       None)):
            r = agent.http.request(method, path, json=payload, headers=headers)
            assert r.status_code == 401, (path, r.text)
            assert r.json()["reason"] == code
    agent.http.post("/auth/logout", headers=agent.headers, json={})
    r = agent.push_raw(mutations)
    assert r.status_code == 401 and r.json()["reason"] == "token_revoked"
    with pg_server.db.read() as s:  # nothing was written by the refused requests
        assert s.connection().exec_driver_sql(
            "SELECT count(*) FROM clients WHERE client_id = %(c)s",
            {"c": agent.client_id}).scalar_one() == 0
