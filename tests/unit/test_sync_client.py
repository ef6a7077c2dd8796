"""SyncClient core against a scripted fake transport: outbox batching and trimming,
wire-id monotonicity, applying pages atomically with their cursor, pending-field
protection, removals, resets, rejections, malformed pages and backoff."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from agent_desktop.store.db import Database
from agent_desktop.store.models import (
    CallLog,
    Customer,
    Outbox,
    PhoneNumber,
    Recording,
    SyncConflict,
    Tag,
)
from sync.client import state
from sync.client.apply import ChangeFormatError, parse_change
from sync.client.backoff import Backoff
from sync.client.client import SyncClient
from sync.client.conflicts import ConflictError, ConflictStore
from sync.client.errors import PermanentError, TooLarge, TransientError

Handler = Callable[[str, str, Any, Any], dict[str, Any]]


class FakeTransport:
    """Records requests; answers with `handler(method, path, json, params)`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[str, str, Any]] = []

    def release_thread_session(self) -> None:
        """The pull's look-ahead thread ends (nothing to close here)."""

    def json_request(self, method: str, path: str, *, what: str, json: Any = None,
                     params: Any = None) -> dict[str, Any]:
        self.calls.append((method, path, json if json is not None else params))
        return self.handler(method, path, json, params)


def empty_pull(cursor: str = "c1") -> dict[str, Any]:
    return {"changes": [], "next_cursor": cursor, "has_more": False,
            "reset_required": False, "estimated_remaining": 0}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "a.sqlite3")
    yield d
    d.close()


def add_customers(db: Database, n: int, prefix: str = "c") -> list[str]:
    uuids = []
    with db.transaction() as s:
        for i in range(n):
            c = Customer(name=f"{prefix}{i}")
            s.add(c)
            s.flush()
            uuids.append(c.uuid)
    return uuids


def outbox_count(db: Database) -> int:
    with db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(Outbox)) or 0)


def acking_server(pushed: list[dict[str, Any]]) -> Handler:
    """Accepts every mutation, remembers it, and acknowledges the last id."""
    last = {"id": 0}

    def handler(method: str, path: str, body: Any, params: Any) -> dict[str, Any]:
        if path == "/sync/push":
            for m in body["mutations"]:
                if m["mutation_id"] > last["id"]:
                    pushed.append(m)
                    last["id"] = m["mutation_id"]
            return {"last_mutation_id": last["id"], "results": [
                {"mutation_id": m["mutation_id"], "status": "applied", "version": 1,
                 "conflicts": []} for m in body["mutations"]]}
        if path == "/sync/pull":
            return empty_pull()
        raise AssertionError(path)
    return handler


def test_push_sends_outbox_in_batches_in_order_and_trims(db: Database) -> None:
    add_customers(db, 7)
    pushed: list[dict[str, Any]] = []
    fake = FakeTransport(acking_server(pushed))
    client = SyncClient(db, fake, push_batch=3)  # type: ignore[arg-type]
    result = client.push()
    assert result.acknowledged == 7
    assert [len(c[2]["mutations"]) for c in fake.calls] == [3, 3, 1]
    ids = [m["mutation_id"] for m in pushed]
    assert ids == sorted(ids) and len(set(ids)) == 7
    assert all(c[2]["client_id"] == client.client_id() for c in fake.calls)
    assert all(c[2]["schema_version"] == 1 for c in fake.calls)
    assert pushed[0]["changed_fields"]["name"] == "c0"
    assert outbox_count(db) == 0


def test_wire_ids_keep_increasing_after_the_outbox_empties(db: Database) -> None:
    """SQLite reuses rowid 1 once the outbox is empty; the server must still see new ids."""
    pushed: list[dict[str, Any]] = []
    client = SyncClient(db, FakeTransport(acking_server(pushed)))  # type: ignore[arg-type]
    add_customers(db, 2, "first")
    client.push()
    add_customers(db, 2, "second")
    with db.transaction() as s:
        assert min(s.scalars(select(Outbox.mutation_id))) == 1  # rowid really restarted
    client.push()
    names = [m["changed_fields"]["name"] for m in pushed]
    assert names == ["first0", "first1", "second0", "second1"]  # none skipped as duplicate
    ids = [m["mutation_id"] for m in pushed]
    assert ids == sorted(set(ids))


def test_lost_push_answer_resends_and_server_dedupes(db: Database) -> None:
    add_customers(db, 3)
    pushed: list[dict[str, Any]] = []
    inner = acking_server(pushed)
    calls = {"n": 0}

    def flaky(method: str, path: str, body: Any, params: Any) -> dict[str, Any]:
        out = inner(method, path, body, params)
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientError("connection cut after the server committed")
        return out

    client = SyncClient(db, FakeTransport(flaky))  # type: ignore[arg-type]
    with pytest.raises(TransientError):
        client.push()
    assert outbox_count(db) == 3
    client.push()
    assert outbox_count(db) == 0
    assert len(pushed) == 3  # applied once each


def test_rejected_mutation_is_kept_for_the_agent_and_does_not_block(db: Database) -> None:
    add_customers(db, 2)

    def handler(method: str, path: str, body: Any, params: Any) -> dict[str, Any]:
        ms = body["mutations"]
        return {"last_mutation_id": ms[-1]["mutation_id"], "results": [
            {"mutation_id": ms[0]["mutation_id"], "status": "rejected",
             "error": {"code": "forbidden", "message": "not your customer"}},
            {"mutation_id": ms[1]["mutation_id"], "status": "applied", "version": 1}]}

    result = SyncClient(db, FakeTransport(handler)).push()  # type: ignore[arg-type]
    assert result.rejected == 1 and outbox_count(db) == 0
    items = ConflictStore(db).list_conflicts()
    assert len(items) == 1
    assert items[0].field == "*" and "not your customer" in items[0].current_value
    assert json.loads(items[0].lost_value)["name"] == "c0"
    assert not items[0].restorable


def test_too_large_halves_the_batch(db: Database) -> None:
    add_customers(db, 8)
    pushed: list[dict[str, Any]] = []
    inner = acking_server(pushed)

    def handler(method: str, path: str, body: Any, params: Any) -> dict[str, Any]:
        if len(body["mutations"]) > 2:
            raise TooLarge("too large")
        return inner(method, path, body, params)

    client = SyncClient(db, FakeTransport(handler), push_batch=8)  # type: ignore[arg-type]
    client.push()
    assert len(pushed) == 8 and outbox_count(db) == 0


def test_server_reporting_an_older_position_stops_without_deleting(db: Database) -> None:
    add_customers(db, 2)
    client = SyncClient(db, FakeTransport(  # type: ignore[arg-type]
        lambda m, p, b, q: {"last_mutation_id": 0, "results": []}))
    with pytest.raises(PermanentError, match="nothing was deleted"):
        client.push()
    assert outbox_count(db) == 2


def page(changes: list[dict[str, Any]], cursor: str, more: bool,
         remaining: int | None = 0, last: int | None = None) -> dict[str, Any]:
    return {"changes": changes, "next_cursor": cursor, "has_more": more,
            "reset_required": False, "estimated_remaining": remaining,
            "last_mutation_id": last}


def cust(uid: str, version: int = 1, **data: Any) -> dict[str, Any]:
    base = {"name": "N", "company": "", "city": "", "country": "", "email": "",
            "status": "new", "stage": "lead", "do_not_call": False, "owner": "agent",
            "created_at": "2026-01-01T00:00:00.000+00:00", "deleted_at": None}
    base.update(data)
    return {"entity": "customer", "uuid": uid, "op": "upsert", "version": version,
            "data": base}


def test_pull_applies_pages_with_cursor_and_progress(db: Database) -> None:
    pages = [
        page([cust("u1", name="Alice"),
              {"entity": "phone", "uuid": "p1", "op": "upsert", "version": 1,
               "data": {"customer_uuid": "u1", "raw": "138 0013 8000",
                        "e164": "+8613800138000", "label": "mobile", "valid": True,
                        "position": 0, "deleted_at": None, "future_field": 1}}],
             "k1", True, remaining=1),
        page([cust("u2", name="Bob")], "k2", False),
    ]
    seen_cursors: list[Any] = []

    def handler(method: str, path: str, body: Any, params: Any) -> dict[str, Any]:
        seen_cursors.append(body["cursor"])
        return pages[len(seen_cursors) - 1]

    progress: list[tuple[int, int]] = []
    client = SyncClient(db, FakeTransport(handler))  # type: ignore[arg-type]
    result = client.pull(lambda d, t: progress.append((d, t)))
    assert seen_cursors == [None, "k1"]
    assert result.applied == 3 and result.pages == 2
    assert progress == [(2, 3), (3, 3)]
    assert outbox_count(db) == 0  # remote rows never produce outbox rows
    with db.transaction() as s:
        alice = s.scalar(select(Customer).where(Customer.uuid == "u1"))
        assert alice is not None and alice.name_key == "alice" and alice.server_version == 1
        phone = s.scalars(select(PhoneNumber)).one()
        assert phone.customer_id == alice.id and phone.rev_digits == "0008310083168"
        assert state.get(s, state.CURSOR) == "k2"
        assert state.get(s, state.INITIAL_DONE) == "1"
    assert client.initial_sync_done()


def test_interrupted_pull_resumes_from_the_last_stored_page(db: Database) -> None:
    calls: list[Any] = []

    def handler(method: str, path: str, body: Any, params: Any) -> dict[str, Any]:
        calls.append(body["cursor"])
        if body["cursor"] is None:
            return page([cust("u1")], "k1", True, remaining=5)
        raise TransientError("network gone")

    client = SyncClient(db, FakeTransport(handler))  # type: ignore[arg-type]
    with pytest.raises(TransientError):
        client.pull()
    assert not client.initial_sync_done()
    client._transport = FakeTransport(  # type: ignore[assignment]
        lambda m, p, b, q: (calls.append(b["cursor"]), page([cust("u2")], "k2", False))[1])  # type: ignore[func-returns-value]
    client.pull()
    assert calls == [None, "k1", "k1"]
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 2


def test_page_and_cursor_commit_together(db: Database) -> None:
    """A page that cannot be applied leaves neither rows nor a moved cursor."""
    bad = page([cust("u1"), {"entity": "phone", "uuid": "p9", "op": "upsert",
                             "version": 1, "data": {"customer_uuid": "u1", "raw": None}}],
               "k1", False)
    client = SyncClient(db, FakeTransport(lambda m, p, b, q: bad))  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - NOT NULL violation from SQLite
        client.pull()
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0
        assert state.get(s, state.CURSOR) is None


def test_pending_local_fields_are_not_overwritten(db: Database) -> None:
    [uid] = add_customers(db, 1, "mine")
    with db.transaction() as s:
        c = s.scalar(select(Customer))
        assert c is not None
        c.city = "Lyon"  # queued, not yet pushed
    remote = cust(uid, version=4, name="server name", city="Paris")
    client = SyncClient(db, FakeTransport(  # type: ignore[arg-type]
        lambda m, p, b, q: page([remote], "k", False)))
    client.pull()
    with db.transaction() as s:
        c = s.scalar(select(Customer))
        assert c is not None
        # The unpushed creation row lists every field, so all of them are still pending.
        assert c.city == "Lyon" and c.name == "mine0" and c.server_version == 4
        assert c.company == ""


def test_last_mutation_id_in_pull_trims_outbox(db: Database) -> None:
    add_customers(db, 3)
    client = SyncClient(db, FakeTransport(  # type: ignore[arg-type]
        lambda m, p, b, q: page([], "k", False, last=2)))
    client.pull()
    with db.transaction() as s:
        assert [m for m in s.scalars(select(Outbox.mutation_id))] == [3]


def test_tombstone_and_removal(db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        c = Customer(uuid="u1", name="A")
        c.tags.append(Tag(uuid="t1", name="vip"))
        s.add(c)
        s.add(Customer(uuid="u2", name="B"))
    changes = [
        {"entity": "tag", "uuid": "t1", "op": "delete", "version": 3,
         "data": {"customer_uuid": "u1", "name": "vip", "deleted_at": "2026-01-02T00:00:00Z"}},
        {"entity": "customer", "uuid": "u2", "op": "remove", "version": 9, "data": {}},
    ]
    client = SyncClient(db, FakeTransport(  # type: ignore[arg-type]
        lambda m, p, b, q: page(changes, "k", False)))
    result = client.pull()
    assert result.removed == 1
    with db.transaction() as s:
        tag = s.scalar(select(Tag))
        assert tag is not None and tag.deleted_at == "2026-01-02T00:00:00Z"
        assert s.scalar(select(Customer).where(Customer.uuid == "u2")) is None
    assert outbox_count(db) == 0


def test_removal_drops_children_too(db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        c = Customer(uuid="u1", name="A")
        c.phones.append(PhoneNumber(uuid="p1", raw="1"))
        s.add(c)
    client = SyncClient(db, FakeTransport(lambda m, p, b, q: page(  # type: ignore[arg-type]
        [{"entity": "customer", "uuid": "u1", "op": "remove", "version": 2, "data": {}}],
        "k", False)))
    client.pull()
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(PhoneNumber)) == 0


def test_reset_redownloads_keeps_outbox_and_drops_stale_rows(db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        s.add(Customer(uuid="stale", name="gone on server", updated_at="2000-01-01"))
        s.add(Customer(uuid="kept", name="still there", updated_at="2000-01-01"))
        state.put(s, state.CURSOR, "old")
    [mine] = add_customers(db, 1, "local-unpushed")
    cursors: list[Any] = []

    def handler(method: str, path: str, body: Any, params: Any) -> dict[str, Any]:
        cursors.append(body["cursor"])
        if body["cursor"] == "old":
            return {"reset_required": True, "changes": [], "next_cursor": None,
                    "has_more": True}
        return page([cust("kept", name="still there")], "fresh", False)

    client = SyncClient(db, FakeTransport(handler))  # type: ignore[arg-type]
    result = client.pull()
    assert result.reset and cursors == ["old", None]
    with db.transaction() as s:
        uuids = set(s.scalars(select(Customer.uuid)))
        assert uuids == {"kept", mine}
        assert state.get(s, state.RESET_STARTED_AT) is None
    assert outbox_count(db) == 1


def test_audio_available_marks_recording_uploaded(db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        call = CallLog(uuid="c1", direction="out", number="1")
        call.recordings.append(Recording(uuid="r1", path="a.wav", size_bytes=10))
        s.add(call)
    client = SyncClient(db, FakeTransport(lambda m, p, b, q: page(  # type: ignore[arg-type]
        [{"entity": "recording", "uuid": "r1", "op": "upsert", "version": 2,
          "data": {"call_log_uuid": "c1", "path": "a.wav", "audio_available": True}}],
        "k", False)))
    client.pull()
    with db.transaction() as s:
        rec = s.scalars(select(Recording)).one()
        assert rec.upload_state == "done" and rec.upload_offset == 10


def test_malformed_page_is_a_transient_error_and_changes_nothing(db: Database) -> None:
    for body in ({"changes": "nope", "has_more": False, "next_cursor": None},
                 page([{"entity": "customer", "op": "upsert"}], "k", False),
                 page([{"entity": "customer", "uuid": "x", "op": "explode"}], "k", False)):
        client = SyncClient(db, FakeTransport(lambda m, p, b, q, body=body: body))  # type: ignore[arg-type,misc]
        with pytest.raises(TransientError):
            client.pull()
    with db.transaction() as s:
        assert state.get(s, state.CURSOR) is None


def test_parse_change_rejects_bad_shapes() -> None:
    with pytest.raises(ChangeFormatError):
        parse_change([1])
    with pytest.raises(ChangeFormatError):
        parse_change({"entity": "customer", "uuid": "u", "version": "x"})
    assert parse_change({"entity": "tag", "uuid": "u", "op": "delete", "version": 2,
                         "data": {}}).op == "delete"


def test_unknown_entity_is_skipped_with_a_reason(db: Database) -> None:
    client = SyncClient(db, FakeTransport(lambda m, p, b, q: page(  # type: ignore[arg-type]
        [{"entity": "invoice", "uuid": "i1", "op": "upsert", "version": 1, "data": {}}],
        "k", False)))
    result = client.pull()
    assert result.skipped and "invoice" in result.skipped[0]


def test_conflicts_are_fetched_once_and_can_be_restored(db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        s.add(Customer(uuid="u1", name="A", city="Paris"))
    served = {"n": 0}

    def handler(method: str, path: str, body: Any, params: Any) -> dict[str, Any]:
        assert path == "/sync/conflicts"
        served["n"] += 1
        if params["after_id"] == 0:
            return {"conflicts": [{"id": 5, "entity": "customer", "entity_uuid": "u1",
                                   "field": "city", "winning_value": "Paris",
                                   "losing_value": "Lyon", "kind": "field",
                                   "created_at": "2026-01-01T00:00:00Z"}],
                    "has_more": False}
        return {"conflicts": [], "has_more": False}

    client = SyncClient(db, FakeTransport(handler))  # type: ignore[arg-type]
    assert client.fetch_conflicts() == 1
    assert client.fetch_conflicts() == 0  # after_id remembered: no duplicates
    store = ConflictStore(db)
    [item] = store.list_conflicts()
    assert (item.record, item.lost_value, item.current_value) == ("A", "Lyon", "Paris")
    assert item.restorable
    store.restore(item.id)
    assert store.list_conflicts() == []
    with db.transaction() as s:
        c = s.scalars(select(Customer)).one()
        assert c.city == "Lyon"
        row = s.scalars(select(Outbox)).one()  # restoring is a normal, synced edit
        assert json.loads(row.changed_fields) == {"city": "Lyon"}
    with pytest.raises(ConflictError):
        store.restore(item.id)  # already resolved: refused, not repeated silently
    with pytest.raises(ConflictError):
        store.dismiss(999)


def test_restore_decodes_non_text_fields(db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        s.add(Customer(uuid="u1", name="A", do_not_call=True))
        s.add(SyncConflict(entity="customer", entity_uuid="u1", field="do_not_call",
                           local_value="false", server_value="true"))
    store = ConflictStore(db)
    store.restore(store.list_conflicts()[0].id)
    with db.transaction() as s:
        assert s.scalars(select(Customer)).one().do_not_call is False


def test_new_user_gets_new_client_id_and_reset(db: Database) -> None:
    client = SyncClient(db, FakeTransport(lambda m, p, b, q: {}))  # type: ignore[arg-type]
    assert client.bind_user("alice") is False
    first = client.client_id()
    assert client.bind_user("alice") is False and client.client_id() == first
    assert client.bind_user("bob") is True
    assert client.client_id() != first
    with db.transaction() as s:
        assert state.get(s, state.RESET_STARTED_AT)


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    b = Backoff(base_s=1, cap_s=8, rand=lambda: 1.0)
    assert [b.next_delay() for _ in range(5)] == [1, 2, 4, 8, 8]
    b.reset()
    assert b.next_delay() == 1
    half = Backoff(base_s=1, cap_s=8, rand=lambda: 0.5)
    assert half.next_delay(at_least=5) == 5
    assert half.next_delay() == 1.0
    with pytest.raises(ValueError):
        Backoff(base_s=0)


def test_pulled_name_key_matches_the_customer_service() -> None:
    from agent_desktop.customers import name_key
    from sync.client.apply import _name_key

    for name in ("  Straße Müller ", "王小明", "ALICE", ""):
        assert _name_key(name) == name_key(name)


def test_bulk_insert_resolves_parents_in_and_outside_the_page(db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        s.add(Customer(uuid="old", name="Existing"))
    changes = [
        {"entity": "phone", "uuid": "p-old", "op": "upsert", "version": 1,
         "data": {"customer_uuid": "old", "raw": "+33 1 23 45 67 89", "e164": None}},
        cust("new", name="  New Person "),
        {"entity": "call_log", "uuid": "cl", "op": "upsert", "version": 1,
         "data": {"customer_uuid": "new", "direction": "out", "number": "1"}},
        {"entity": "recording", "uuid": "rec", "op": "upsert", "version": 1,
         "data": {"call_log_uuid": "cl", "path": "x.wav", "size_bytes": 5,
                  "audio_available": True}},
        {"entity": "tag", "uuid": "orphan", "op": "upsert", "version": 1,
         "data": {"customer_uuid": "nowhere", "name": "x"}},
    ]
    client = SyncClient(db, FakeTransport(  # type: ignore[arg-type]
        lambda m, p, b, q: page(changes, "k", False)))
    result = client.pull()
    assert result.applied == 4 and len(result.skipped) == 1 and "nowhere" in result.skipped[0]
    with db.transaction() as s:
        new = s.scalar(select(Customer).where(Customer.uuid == "new"))
        old = s.scalar(select(Customer).where(Customer.uuid == "old"))
        assert new is not None and old is not None and new.name_key == "  new person "
        phone = s.scalars(select(PhoneNumber)).one()
        assert phone.customer_id == old.id and phone.rev_digits == "98765432133"
        call = s.scalars(select(CallLog)).one()
        assert call.customer_id == new.id
        rec = s.scalars(select(Recording)).one()
        assert rec.call_log_id == call.id and rec.upload_state == "done"
        assert rec.upload_offset == 5
    assert outbox_count(db) == 0


def test_client_id_of_another_user_rotates_the_identity(db: Database) -> None:
    from sync.client.errors import Forbidden

    def handler(method: str, path: str, body: Any, params: Any) -> dict[str, Any]:
        raise Forbidden("This client_id belongs to another user",
                        reason="client_id belongs to another user")

    client = SyncClient(db, FakeTransport(handler))  # type: ignore[arg-type]
    before = client.client_id()
    with pytest.raises(TransientError, match="will retry"):
        client.sync_round()
    assert client.client_id() != before
    client._transport = FakeTransport(  # type: ignore[assignment]
        lambda m, p, b, q: (_ for _ in ()).throw(Forbidden("no", reason="other")))
    with pytest.raises(Forbidden):  # other refusals are not papered over
        client.sync_round()
