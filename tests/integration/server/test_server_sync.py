"""Push/pull protocol over real HTTP, on SQLite and PostgreSQL (docs/sync-protocol.md §4)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from sync.server.admin import assign_customer, compact
from sync.server.models import ChangeLog, Conflict, Record
from tests.integration.server.conftest import ServerHandle
from tests.integration.server.harness import Api, mutation, new_uuid


def _world(server: ServerHandle) -> tuple[str, Api, Api]:
    team = server.team()
    return team, server.api(server.user("agent", team)), server.api(server.user("team_lead",
                                                                               team))


def test_push_is_idempotent_when_repeated(server: ServerHandle) -> None:
    _, agent, _lead = _world(server)
    cu = new_uuid()
    muts = [mutation(1, "customer", cu, {"name": "Bo"}),
            mutation(2, "customer", cu, {"city": "Oslo"}, base=1)]
    first = agent.push_raw(muts).json()
    again = agent.push_raw(muts).json()
    assert [r["status"] for r in first["results"]] == ["applied", "applied"]
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert again["last_mutation_id"] == 2
    with server.db.read() as s:
        rec = s.execute(select(Record).where(Record.uuid == cu)).scalar_one()
        entries = s.execute(select(func.count()).select_from(ChangeLog)
                            .where(ChangeLog.record_id == rec.id)).scalar_one()
    assert rec.version == 2
    assert entries == 2


def test_duplicated_concurrent_requests_apply_once(server: ServerHandle) -> None:
    """The same batch sent 6 times at once (a retrying client behind a flaky proxy)."""
    _, agent, _ = _world(server)
    uuids = [new_uuid() for _ in range(20)]
    muts = [mutation(i + 1, "customer", u, {"name": f"C{i}"}) for i, u in enumerate(uuids)]
    statuses: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def send() -> None:
        api = Api(server.url, agent.username, "correct horse battery", agent.client_id)
        try:
            r = api.push_raw(muts)
            with lock:
                if r.status_code != 200:
                    errors.append(r.text)
                else:
                    statuses.extend(x["status"] for x in r.json()["results"])
        finally:
            api.close()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Counter(statuses) == {"applied": 20, "duplicate": 100}
    with server.db.read() as s:
        versions = s.execute(select(Record.version).where(Record.uuid.in_(uuids))).scalars()
        assert sorted(versions) == [1] * 20


def test_invalid_mutation_is_reported_and_never_blocks(server: ServerHandle) -> None:
    _, agent, _ = _world(server)
    good1, good2 = new_uuid(), new_uuid()
    res = agent.push(("customer", good1, {"name": "ok"}),
                     ("customer", new_uuid(), {"name": 42}),
                     ("customer", new_uuid(), {"nickname": "x"}),
                     ("phone", new_uuid(), {"customer_uuid": new_uuid(), "raw": "1"}),
                     ("planet", new_uuid(), {}),
                     ("customer", new_uuid(), {}),
                     ("customer", good2, {"name": "also ok"}))
    assert [r["status"] for r in res] == ["applied"] + ["rejected"] * 5 + ["applied"]
    assert [r["error"]["code"] for r in res[1:6]] == [
        "bad_value", "unknown_field", "unknown_parent", "unknown_entity", "missing_field"]
    assert "customer.name must be a str" in res[1]["error"]["message"]
    assert set(agent.fresh_replica().live("customer")) == {good1, good2}


def test_client_id_of_another_user_is_refused(server: ServerHandle) -> None:
    team, agent, _ = _world(server)
    other = server.api(server.user("agent", team))
    agent.push(("customer", new_uuid(), {"name": "mine"}))
    r = other.push_raw([mutation(1, "customer", new_uuid(), {"name": "x"})],
                       client_id=agent.client_id)
    assert r.status_code == 403
    assert r.json()["reason"] == "client_id belongs to another user"
    r = other.pull_raw(client_id=agent.client_id)
    assert r.status_code == 403
    assert other.push_raw([], client_id=agent.client_id).status_code == 403


def test_schema_version_is_checked_everywhere(server: ServerHandle) -> None:
    _, agent, _ = _world(server)
    h = dict(agent.headers, **{"X-Schema-Version": "2"})
    r = agent.http.post("/sync/pull", json={"client_id": agent.client_id, "schema_version": 1},
                        headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "schema_mismatch"
    assert r.json()["server_schema_versions"] == [1, 1]
    r = agent.http.post("/sync/pull", json={"client_id": agent.client_id, "schema_version": 7},
                        headers=agent.headers)
    assert r.status_code == 409
    no_header = {"Authorization": agent.headers["Authorization"]}
    r = agent.http.post("/sync/pull", json={"client_id": agent.client_id, "schema_version": 1},
                        headers=no_header)
    assert r.status_code == 400
    assert "X-Schema-Version" in r.json()["message"]
    res = agent.push_raw([mutation(1, "customer", new_uuid(), {"name": "x"}, schema=9)]).json()
    assert res["results"][0]["error"]["code"] == "schema_mismatch"


def test_per_field_last_writer_wins_and_keeps_the_loser(server: ServerHandle) -> None:
    _, agent, lead = _world(server)
    cu = new_uuid()
    agent.push(("customer", cu, {"name": "Cy", "city": "Rome", "email": "a@x"}))
    # Both edit from version 1 while offline; the lead's push arrives last and wins city.
    a = agent.push(("customer", cu, {"city": "Milan", "company": "Acme"}, "upsert", 1))
    b = lead.push(("customer", cu, {"city": "Turin", "email": "b@x"}, "upsert", 1))
    assert a[0]["conflicts"] == []
    assert [(c["field"], c["your_value"], c["other_value"], c["winner"])
            for c in b[0]["conflicts"]] == [("city", "Turin", "Milan", "yours")]
    data = agent.fresh_replica().live("customer")[cu]
    assert (data["city"], data["company"], data["email"]) == ("Turin", "Acme", "b@x")
    # The agent, whose value lost, sees the kept conflict.
    r = agent.http.get("/sync/conflicts", headers=agent.headers)
    rows = [c for c in r.json()["conflicts"] if c["entity_uuid"] == cu]
    assert [(c["field"], c["losing_value"], c["winning_value"], c["loser_user"],
             c["winner_user"]) for c in rows] == [
        ("city", "Milan", "Turin", agent.username, lead.username)]


def test_own_consecutive_edits_with_a_stale_base_do_not_conflict(server: ServerHandle) -> None:
    _, agent, _ = _world(server)
    cu = new_uuid()
    res = agent.push(("customer", cu, {"name": "Di"}),
                     ("customer", cu, {"city": "A"}, "upsert", 0),
                     ("customer", cu, {"city": "B"}, "upsert", 0))
    assert all(r["conflicts"] == [] for r in res)
    assert res[-1]["version"] == 3


def test_delete_wins_over_edit_in_both_orders(server: ServerHandle) -> None:
    _, agent, lead = _world(server)
    cu, tag, note = new_uuid(), new_uuid(), new_uuid()
    agent.push(("customer", cu, {"name": "Ed"}), ("tag", tag, {"customer_uuid": cu,
                                                              "name": "vip"}),
               ("note", note, {"customer_uuid": cu, "body": "hello"}))
    # Edit arrives first, then a delete based on the old version: delete wins, edit kept.
    lead.push(("customer", cu, {"city": "Nice"}, "upsert", 1))
    d = agent.push(("customer", cu, {"deleted_at": "2026-11-22T06:00:00.000+00:00"},
                    "delete", 1))
    assert d[0]["status"] == "applied"
    assert [(c["field"], c["other_value"]) for c in d[0]["conflicts"]] == [("city", "Nice")]
    # An edit arriving after the delete is not applied.
    e = lead.push(("customer", cu, {"city": "Lyon"}, "upsert", 2))
    assert e[0]["status"] == "conflict"
    assert [(c["field"], c["your_value"], c["winner"]) for c in e[0]["conflicts"]] == [
        ("city", "Lyon", "theirs")]
    # A child created under the deleted customer loses too.
    f = lead.push(("tag", new_uuid(), {"customer_uuid": cu, "name": "late"}))
    assert f[0]["status"] == "conflict"
    rep = agent.fresh_replica()
    assert cu not in rep.live() and tag not in rep.live() and note not in rep.live()
    # An incremental puller receives the tombstones.
    rows = rep.rows
    assert cu not in rows  # snapshot skips deleted rows
    with server.db.read() as s:
        kinds = s.execute(select(Conflict.kind).where(Conflict.entity_uuid == cu)).scalars()
        assert set(kinds) == {"delete"}


def test_tombstones_reach_an_incremental_puller(server: ServerHandle) -> None:
    _, agent, lead = _world(server)
    cu, tag = new_uuid(), new_uuid()
    agent.push(("customer", cu, {"name": "Flo"}),
               ("tag", tag, {"customer_uuid": cu, "name": "hot"}))
    lead.sync_down()
    assert tag in lead.replica.live("tag")
    agent.push(("tag", tag, {"deleted_at": "2026-11-22T07:00:00.000+00:00"}, "delete", 1))
    lead.sync_down()
    assert lead.replica.rows[tag][1]["deleted_at"] == "2026-11-22T07:00:00.000+00:00"
    assert tag not in lead.replica.live()


def test_insert_only_call_log_never_conflicts_and_only_its_author_writes(
        server: ServerHandle) -> None:
    _, agent, lead = _world(server)
    cu, call = new_uuid(), new_uuid()
    agent.push(("customer", cu, {"name": "Gus"}),
               ("call_log", call, {"customer_uuid": cu, "direction": "out", "number": "1"}))
    lead.push(("customer", cu, {"city": "X"}, "upsert", 1))
    res = agent.push(("call_log", call, {"state": "ended", "disposition": "sale",
                                         "wrapup_notes": "done"}, "upsert", 0),
                     ("call_log", call, {"wrapup_notes": "done!"}, "upsert", 0))
    assert [r["conflicts"] for r in res] == [[], []]
    r = lead.push(("call_log", call, {"disposition": "other"}, "upsert", 2))
    assert r[0]["status"] == "rejected" and r[0]["error"]["code"] == "forbidden"
    assert lead.fresh_replica().live("call_log")[call]["wrapup_notes"] == "done!"


def test_reassignment_arrives_as_removal_and_moves_children(server: ServerHandle) -> None:
    team, agent, lead = _world(server)
    other = server.api(server.user("agent", team))
    cu, ph, call, rec = new_uuid(), new_uuid(), new_uuid(), new_uuid()
    agent.push(("customer", cu, {"name": "Hal"}),
               ("phone", ph, {"customer_uuid": cu, "raw": "555"}),
               ("call_log", call, {"customer_uuid": cu, "direction": "out", "number": "555"}),
               ("recording", rec, {"call_log_uuid": call, "path": "r.wav"}))
    agent.sync_down()
    other.sync_down()
    assert cu in agent.replica.live() and cu not in other.replica.live()
    res = lead.push(("customer", cu, {"owner": other.username}, "upsert", 1))
    assert res[0]["status"] == "applied"
    agent.sync_down()
    assert cu in agent.replica.removed
    assert not {cu, ph, call, rec} & set(agent.replica.live())
    other.sync_down()
    assert {cu, ph, call} <= set(other.replica.live())
    assert rec not in other.replica.live(), "another agent's recording must stay private"
    assert other.replica.live("customer")[cu]["owner"] == other.username
    # Agents may not reassign.
    res = other.push(("customer", cu, {"owner": agent.username}, "upsert", 2))
    assert res[0]["error"]["code"] == "forbidden"
    # The admin CLI path does the same; back to the first agent.
    assign_customer(server.db, cu, agent.username)
    agent.sync_down()
    other.sync_down()
    assert {cu, ph, call, rec} <= set(agent.replica.live())
    assert cu not in other.replica.live()


def test_paged_initial_pull_resumes_and_misses_nothing(server: ServerHandle) -> None:
    _, agent, _ = _world(server)
    uuids = [new_uuid() for _ in range(1200)]
    for start in range(0, 1200, 400):
        agent.push(*[("customer", u, {"name": f"P{i}"})
                     for i, u in enumerate(uuids[start:start + 400], start)])
    r = agent.pull_raw(None, limit=500)
    page1 = r.json()
    assert len(page1["changes"]) == 500 and page1["has_more"]
    assert page1["estimated_remaining"] == 700
    # A change committed while the first download is under way.
    late = new_uuid()
    agent.push(("customer", late, {"name": "late"}), ("customer", uuids[0], {"city": "Z"},
                                                     "upsert", 1))
    # "Interrupted": a new process resumes from the stored cursor.
    resumed = Api(server.url, agent.username, "correct horse battery", agent.client_id)
    resumed.replica.apply(page1)
    rep = resumed.sync_down(limit=500)
    assert set(uuids) | {late} == set(rep.live("customer"))
    assert rep.live("customer")[uuids[0]]["city"] == "Z"
    assert rep.pages >= 4
    resumed.close()


def test_compaction_forces_a_reset_and_the_reset_pull_works(server: ServerHandle) -> None:
    _, agent, _ = _world(server)
    cu = new_uuid()
    agent.push(("customer", cu, {"name": "Ivy"}))
    agent.sync_down()
    old_cursor = agent.replica.cursor
    agent.push(("customer", cu, {"city": "Q"}, "upsert", 1))
    compact(server.db, keep_last=0)
    r = agent.pull_raw(old_cursor)
    assert r.status_code == 200
    body = r.json()
    assert body["reset_required"] is True and body["changes"] == []
    assert body["next_cursor"] is None
    assert agent.fresh_replica().live("customer")[cu]["city"] == "Q"


def test_changes_after_compaction_reach_an_up_to_date_client(server: ServerHandle) -> None:
    """Sequence numbers must never be reused after compaction deleted the newest entries."""
    _, agent, lead = _world(server)
    cu = new_uuid()
    agent.push(("customer", cu, {"name": "Jo"}))
    lead.sync_down()
    compact(server.db, keep_last=0)
    agent.push(("customer", cu, {"city": "After"}, "upsert", 1))
    lead.sync_down()  # its cursor is at the horizon: no reset, and nothing skipped
    assert lead.replica.live("customer")[cu]["city"] == "After"


def test_bad_requests_get_clear_4xx(server: ServerHandle) -> None:
    _, agent, _ = _world(server)
    h = dict(agent.headers, **{"Content-Type": "application/json"})
    r = agent.http.post("/sync/push", content=b"{not json", headers=h)
    assert (r.status_code, r.json()["error"]) == (400, "malformed_json")
    r = agent.http.post("/sync/push", json={"client_id": "x", "schema_version": 1,
                                            "mutations": "no"}, headers=agent.headers)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert "mutations" in r.json()["message"]
    r = agent.http.post("/sync/push", content=b"x" * (9 * 1024 * 1024), headers=h)
    assert (r.status_code, r.json()["error"]) == (413, "too_large")
    many = [mutation(i, "customer", new_uuid(), {"name": "n"}) for i in range(1, 1002)]
    r = agent.push_raw(many)
    assert (r.status_code, r.json()["limit_mutations"]) == (413, 1000)
    r = agent.pull_raw("bm90IGEgY3Vyc29y")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_cursor")
    r = agent.push_raw([mutation(2, "customer", new_uuid(), {"name": "a"}),
                        mutation(1, "customer", new_uuid(), {"name": "b"})])
    assert r.status_code == 422 and "increasing" in r.json()["message"]
    r = agent.push_raw([mutation(1, "customer", "a\x00", {"name": "n"})], client_id="c\x00")
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    r = agent.http.get("/nowhere", headers=agent.headers)
    assert (r.status_code, r.json()["error"]) == (404, "not_found")


def test_pull_returns_last_mutation_id_for_outbox_trimming(server: ServerHandle) -> None:
    _, agent, _ = _world(server)
    agent.push(("customer", new_uuid(), {"name": "J"}), ("customer", new_uuid(), {"name": "K"}))
    body: dict[str, Any] = agent.pull_raw().json()
    assert body["last_mutation_id"] == 2
    empty = agent.push_raw([]).json()
    assert (empty["last_mutation_id"], empty["results"]) == (2, [])
