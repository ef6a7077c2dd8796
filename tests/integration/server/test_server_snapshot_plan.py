"""A first download's snapshot pages on PostgreSQL are read in id order from an index,
even when the table has no statistics yet (customers just bulk-loaded or reassigned).

Without statistics the planner expected a handful of rows and sorted every visible row
after the cursor for each page (a bitmap scan + sort: paging became quadratic, 43 s for
100k customers instead of 16 s). The plan is captured from the statement the server
really runs, on its own connection and transaction, with autovacuum off for the table so
no ANALYZE can arrive during the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, text

from sync.server.auth import Principal
from sync.server.models import Record, User
from sync.server.pull import PullService
from tests.integration.server.bench import seed_bulk
from tests.integration.server.conftest import ServerHandle, start_server

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

CUSTOMERS = 1500


@pytest.fixture(scope="module")
def seeded(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, Principal]]:
    handle = start_server("postgres", request, tmp_path_factory.mktemp("snapplan"))
    try:
        team = handle.team()
        name = handle.user("agent", team)
        with handle.db.engine.begin() as conn:
            for table in ("records", "change_log"):
                conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
        seed_bulk(handle.db, name, CUSTOMERS)
        with handle.db.read() as s:
            user = s.execute(select(User).where(User.username == name)).scalar_one()
            principal = Principal(user.id, name, "agent", user.team_id, 0)
        yield handle, principal
    finally:
        handle.proc.stop()
        handle.db.dispose()


def _stats_missing(handle: ServerHandle) -> bool:
    with handle.db.engine.connect() as conn:
        return conn.execute(text(
            "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM pg_stat_user_tables"
            " WHERE relname = 'records'")).scalar_one() is True


def _plan(conn: Any, sql: str, params: Any) -> str:
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(str(r[0]) for r in cur.fetchall())


def test_snapshot_page_walks_an_index_without_statistics(
        seeded: tuple[ServerHandle, Principal]) -> None:
    handle, principal = seeded
    service = PullService(handle.db, 1000, 5000)
    plans: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, _ctx: Any,
                _many: bool) -> None:
        if "json_build_object" in statement:  # the snapshot page, on its own connection
            plans.append(_plan(cursor.connection, statement, params))

    assert _stats_missing(handle), "precondition: records has no statistics"
    stmt = service.snapshot_statement(principal, 0, 501)
    with handle.db.engine.connect() as conn:  # what a plain read would get
        compiled = stmt.compile(conn)
        naive = _plan(conn.connection.driver_connection, str(compiled),
                      compiled.construct_params())
    # Why the setting exists: without it this very statement sorts all the visible rows.
    assert "Sort" in naive, naive

    event.listen(handle.db.engine, "before_cursor_execute", capture)
    try:
        with handle.db.read() as s:
            rows = service.snapshot_rows(s, principal, 0, 501)
    finally:
        event.remove(handle.db.engine, "before_cursor_execute", capture)
    assert len(plans) == 1
    assert "Sort" not in plans[0], plans[0]
    assert "Index Scan using ix_records_owner_id" in plans[0], plans[0]
    assert len(rows) == 501
    # A team lead's rows (owner OR team) cannot come from one index in order: the primary
    # key is walked in order instead, still without sorting what remains.
    lead = Principal(principal.user_id, principal.username, "team_lead", principal.team_id, 0)
    event.listen(handle.db.engine, "before_cursor_execute", capture)
    try:
        with handle.db.read() as s:
            assert [i for i, _d in service.snapshot_rows(s, lead, 0, 501)] == \
                [i for i, _d in rows]
    finally:
        event.remove(handle.db.engine, "before_cursor_execute", capture)
    assert len(plans) == 2
    assert "Sort" not in plans[1] and "Index Scan" in plans[1], plans[1]
    assert _stats_missing(handle)


def test_snapshot_pages_cover_every_visible_row_once_in_id_order(
        seeded: tuple[ServerHandle, Principal]) -> None:
    handle, principal = seeded
    service = PullService(handle.db, 1000, 5000)
    with handle.db.read() as s:
        expected = [int(i) for i in s.execute(
            select(Record.id).where(Record.owner_user_id == principal.user_id,
                                    Record.deleted_at.is_(None)).order_by(Record.id)).scalars()]
    got: list[int] = []
    after = 0
    while True:
        with handle.db.read() as s:
            rows = service.snapshot_rows(s, principal, after, 997)
        if not rows:
            break
        got.extend(i for i, _doc in rows)
        after = rows[-1][0]
    assert got == expected
    assert len(got) > 3 * CUSTOMERS  # customers with their phones, tags, notes, tasks


def test_setting_ends_with_the_page(seeded: tuple[ServerHandle, Principal]) -> None:
    """The sort penalty is local to the page's transaction: the pooled connection it used
    plans sorts normally afterwards."""
    handle, principal = seeded
    service = PullService(handle.db, 1000, 5000)
    with handle.db.read() as s:
        service.snapshot_rows(s, principal, 0, 10)
    pool_size = handle.db.engine.pool.size()  # type: ignore[attr-defined]
    conns = [handle.db.engine.connect() for _ in range(pool_size)]
    try:
        for conn in conns:
            assert conn.execute(text("SHOW enable_sort")).scalar_one() == "on"
    finally:
        for conn in conns:
            conn.close()

