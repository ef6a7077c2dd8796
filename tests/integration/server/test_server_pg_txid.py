"""The change-log rule on PostgreSQL: a puller never skips a change whose transaction
commits after a later one (ARCHITECTURE.md §6, `txid < pg_snapshot_xmin(...)`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from sync.server.db import utcnow
from sync.server.feed import Feed
from sync.server.models import ChangeLog, Record, User
from tests.integration.server.conftest import PASSWORD, ServerHandle, start_server
from tests.integration.server.harness import Api, new_uuid

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pg_server(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server("postgres", request, tmp_path_factory.mktemp("pgtx"))
    yield handle
    handle.proc.stop()
    handle.db.dispose()


def test_late_committing_transaction_is_not_skipped(pg_server: ServerHandle) -> None:
    server = pg_server
    team = server.team()
    agent = server.api(server.user("agent", team))
    lead = server.api(server.user("team_lead", team))
    agent.push(("customer", new_uuid(), {"name": "before"}))
    lead.sync_down()
    feed = Feed(is_postgres=True)
    slow_uuid, fast_uuid = new_uuid(), new_uuid()
    with server.db.write() as s:  # T1: starts first, commits last
        owner = s.execute(select(User).where(User.username == agent.username)).scalar_one()
        now = utcnow()
        rec = Record(entity="customer", uuid=slow_uuid, customer_uuid=slow_uuid,
                     author_id=owner.id, owner_user_id=owner.id, team_id=owner.team_id,
                     version=1, data=json.dumps({"name": "slow", "owner": owner.username}),
                     field_versions="{}", created_at=now, updated_at=now)
        s.add(rec)
        feed.emit(s, rec, "upsert")
        feed.drain(s)
        slow_seq = s.execute(select(ChangeLog.seq).where(ChangeLog.record_id == rec.id)
                             ).scalar_one()
        # T2: a real push over HTTP, committed while T1 is still open.
        assert agent.push(("customer", fast_uuid, {"name": "fast"}))[0]["status"] == "applied"
        with server.db.read() as r:
            fast_seq = r.execute(select(ChangeLog.seq).join(Record).where(
                Record.uuid == fast_uuid)).scalar_one()
            naive = set(r.execute(select(ChangeLog.seq).where(ChangeLog.seq > slow_seq - 1)
                                  ).scalars())
        assert slow_seq < fast_seq, "T1 took its sequence number first"
        assert fast_seq in naive and slow_seq not in naive, (
            "a naive `seq > cursor` reader would hand out T2 now and skip T1 later")
        lead.sync_down()
        assert fast_uuid not in lead.replica.rows, "held back until T1 is settled"
    lead.sync_down()  # T1 committed
    assert {slow_uuid, fast_uuid} <= set(lead.replica.live("customer"))


def test_concurrent_pushers_and_a_live_puller_converge(pg_server: ServerHandle,
                                                       tmp_path: Path) -> None:
    server = pg_server
    team = server.team()
    agents = [server.user("agent", team) for _ in range(4)]
    lead = server.api(server.user("team_lead", team))
    done = threading.Event()
    pushed: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def pusher(name: str) -> None:
        api = Api(server.url, name, PASSWORD)
        try:
            for _ in range(5):
                batch = [new_uuid() for _ in range(20)]
                res = api.push(*[("customer", u, {"name": u[:8]}) for u in batch])
                with lock:
                    if any(r["status"] != "applied" for r in res):
                        errors.append(str(res))
                    pushed.extend(batch)
        except AssertionError as exc:
            with lock:
                errors.append(str(exc))
        finally:
            api.close()

    threads = [threading.Thread(target=pusher, args=(n,)) for n in agents]
    for t in threads:
        t.start()
    pulls = 0
    while any(t.is_alive() for t in threads) or pulls == 0:
        lead.sync_down(limit=37)
        pulls += 1
    for t in threads:
        t.join()
    done.set()
    lead.sync_down(limit=37)
    assert errors == []
    assert len(pushed) == 400
    assert set(pushed) <= set(lead.replica.live("customer")), "an incremental puller skipped rows"
    assert pulls >= 1
