"""WrapupService: drafts survive, the save is atomic with its outbox rows, bad input is named.

The helpers at the top (`make_db`, `make_customer`, `make_call`, `FakeClock`) are shared by
the other wrap-up / dialer / follow-up / stats test modules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent_desktop.settings import Settings
from agent_desktop.store.db import Database
from agent_desktop.store.models import (
    CallLog,
    Customer,
    Note,
    Outbox,
    PhoneNumber,
    Tag,
    Task,
    WrapupDraft,
    utcnow,
)
from agent_desktop.wrapup import WrapupData, WrapupError, WrapupService, to_iso

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def make_db(tmp_path: Path) -> Database:
    return Database.open(tmp_path / "agent.sqlite3")


def make_settings(tmp_path: Path, **values: object) -> Settings:
    s = Settings.load(tmp_path / "settings.toml")
    for k, v in values.items():
        s.set(k.replace("__", "."), v)
    return s


def make_customer(db: Database, name: str = "王小明", numbers: tuple[str, ...] = (
        "+8613800138000",), *, dnc: bool = False, tags: tuple[str, ...] = ()) -> int:
    with db.transaction() as s:
        c = Customer(name=name, name_key=name.casefold(), do_not_call=dnc)
        for i, n in enumerate(numbers):
            c.phones.append(PhoneNumber(raw=n, e164=n if n.startswith("+") else None,
                                        valid=n.startswith("+"), position=i))
        for t in tags:
            c.tags.append(Tag(name=t))
        s.add(c)
        s.flush()
        return c.id


def make_call(db: Database, customer_id: int | None, *, answered: bool = True,
              started: datetime = T0 - timedelta(minutes=5), talk: float = 60.0,
              outcome: str | None = None, disposition: str | None = None) -> int:
    with db.transaction() as s:
        call = CallLog(
            customer_id=customer_id, direction="out", number="+8613800138000",
            state="ended", started_at=to_iso(started),
            answered_at=to_iso(started + timedelta(seconds=5)) if answered else None,
            ended_at=to_iso(started + timedelta(seconds=5 + talk)),
            talk_seconds=talk if answered else 0.0,
            outcome=outcome or ("answered" if answered else "no_answer"),
            disposition=disposition, wrapped_up_at=to_iso(started) if disposition else None)
        s.add(call)
        s.flush()
        return call.id


def outbox_count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Outbox)) or 0)


@pytest.fixture
def env(tmp_path: Path) -> tuple[Database, Settings, FakeClock, WrapupService]:
    db = make_db(tmp_path)
    settings = make_settings(tmp_path)
    clock = FakeClock()
    return db, settings, clock, WrapupService(db, settings, clock=clock, agent="alice")


Env = tuple[Database, Settings, FakeClock, WrapupService]


def test_dispositions_follow_settings_and_empty_list_is_a_plain_error(env: Env) -> None:
    _db, settings, _clock, svc = env
    settings.set("wrapup.dispositions", " Sale , No answer,,sale, Call back ")
    assert svc.dispositions() == ["Sale", "No answer", "Call back"]
    settings.set("wrapup.dispositions", " , ")
    with pytest.raises(WrapupError, match="No dispositions are configured"):
        svc.dispositions()
    assert svc.validate(WrapupData(disposition="Sale"))[0].startswith("No dispositions")


def test_open_creates_a_draft_and_save_draft_round_trips(env: Env) -> None:
    db, _s, _c, svc = env
    cid = make_customer(db)
    call = make_call(db, cid)
    pending = svc.open(call)
    assert pending.customer_name == "王小明" and pending.has_draft
    data = WrapupData(disposition="Interested", tags=["vip", "华东"], notes="回电 下周",
                      status="interested", follow_up_at=to_iso(T0 + timedelta(days=1)))
    before = outbox_count(db)
    svc.save_draft(call, data)
    assert outbox_count(db) == before, "drafts are local-only, never synced"
    [again] = svc.pending_drafts()
    assert again.data == data and again.call_log_id == call


def test_save_is_atomic_with_outbox_rows_and_removes_the_draft(env: Env) -> None:
    db, _s, clock, svc = env
    cid = make_customer(db, tags=("vip",))
    call = make_call(db, cid)
    svc.open(call)
    due = T0 + timedelta(days=2)
    data = WrapupData(disposition="Call back", tags=["vip", "demo"], notes="wants pricing",
                      status="interested", stage="qualified", follow_up_at=to_iso(due),
                      do_not_call=False)
    with db.session() as s:
        first_new = int(s.scalar(select(func.max(Outbox.mutation_id))) or 0)
    result = svc.save(call, data)
    assert result.warnings == () and result.task_id is not None and result.note_id is not None
    with db.session() as s:
        c = s.get(Customer, cid)
        log_row = s.get(CallLog, call)
        assert c is not None and log_row is not None
        assert (c.status, c.stage, c.do_not_call) == ("interested", "qualified", False)
        assert sorted(t.name for t in c.tags) == ["demo", "vip"]
        assert log_row.disposition == "Call back" and log_row.wrapup_notes == "wants pricing"
        assert log_row.wrapped_up_at == to_iso(clock())
        task = s.get(Task, result.task_id)
        assert task is not None and task.due_at == to_iso(due) and task.call_log_id == call
        note = s.get(Note, result.note_id)
        assert note is not None and note.body == "wants pricing" and note.author == "alice"
        assert s.get(WrapupDraft, call) is None
        rows = s.scalars(select(Outbox).where(Outbox.mutation_id > first_new)).all()
    entities = sorted((r.entity, r.op) for r in rows)
    assert entities == sorted([("call_log", "upsert"), ("customer", "upsert"),
                               ("tag", "upsert"), ("note", "upsert"), ("task", "upsert")])
    call_fields = json.loads(next(r for r in rows if r.entity == "call_log").changed_fields)
    assert call_fields["disposition"] == "Call back"
    assert "wrapped_up_at" in call_fields
    # Created in one transaction: one created_at stamp range, consecutive mutation ids.
    ids = sorted(r.mutation_id for r in rows)
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert svc.pending_drafts() == []


def test_a_failure_inside_the_save_rolls_everything_back(env: Env,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db, _s, _c, svc = env
    cid = make_customer(db)
    call = make_call(db, cid)
    data = WrapupData(disposition="Sale", tags=["won"], notes="signed",
                      follow_up_at=to_iso(T0 + timedelta(days=30)))
    svc.save_draft(call, data)
    before = outbox_count(db)

    original = WrapupService._apply_customer

    def apply_then_fail(self: WrapupService, *args: object) -> tuple[int | None, int | None]:
        original(self, *args)  # type: ignore[arg-type]
        raise RuntimeError("disk full")

    monkeypatch.setattr(WrapupService, "_apply_customer", apply_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        svc.save(call, data)
    with db.session() as s:
        log_row = s.get(CallLog, call)
        assert log_row is not None and log_row.disposition is None
        assert s.scalars(select(Note)).all() == []
        assert s.get(WrapupDraft, call) is not None
    assert outbox_count(db) == before
    [pending] = svc.pending_drafts()
    assert pending.data == data


def test_validation_messages_and_the_draft_is_kept_on_failure(env: Env) -> None:
    db, _s, clock, svc = env
    call = make_call(db, make_customer(db))
    past = WrapupData(notes="typed text", follow_up_at=to_iso(clock() - timedelta(hours=1)))
    problems = svc.validate(past)
    assert any("Choose a disposition" in p for p in problems)
    assert any("is in the past" in p for p in problems)
    assert svc.validate(WrapupData(disposition="Nope"))[0] == (
        "“Nope” is not one of the configured dispositions.")
    assert "1–32 characters" in svc.validate(WrapupData(disposition="Sale", status=" "))[0]
    assert "tag is empty" in svc.validate(WrapupData(disposition="Sale", tags=[" "]))[0]
    with pytest.raises(WrapupError, match="in the past"):
        svc.save(call, past)
    [pending] = svc.pending_drafts()
    assert pending.data.notes == "typed text"
    with db.session() as s:
        row = s.get(CallLog, call)
        assert row is not None and row.wrapped_up_at is None


def test_customer_deleted_by_sync_saves_the_call_and_says_what_was_not_applied(
        env: Env) -> None:
    db, _s, _c, svc = env
    cid = make_customer(db, "Li Lei")
    call = make_call(db, cid)
    svc.open(call)
    with db.transaction(applying_remote=True) as s:
        c = s.get(Customer, cid)
        assert c is not None
        c.deleted_at = utcnow()
    [pending] = svc.pending_drafts()
    assert pending.customer_deleted
    result = svc.save(call, WrapupData(disposition="Interested", notes="asked for demo",
                                       tags=["hot"], status="interested",
                                       follow_up_at=to_iso(T0 + timedelta(days=1))))
    [warning] = result.warnings
    assert "Li Lei was deleted on the server" in warning
    assert "the status change, the tags, the follow-up" in warning
    with db.session() as s:
        row = s.get(CallLog, call)
        assert row is not None and row.disposition == "Interested"
        assert row.wrapup_notes == "asked for demo"
        assert s.scalars(select(Task)).all() == [] and s.scalars(select(Tag)).all() == []
    assert svc.pending_drafts() == []


def test_call_without_customer_is_wrapped_up_without_warning(env: Env) -> None:
    db, _s, _c, svc = env
    call = make_call(db, None)
    assert svc.save(call, WrapupData(disposition="Wrong number")).warnings == ()


def test_pending_includes_answered_calls_without_a_draft_but_not_old_or_done_ones(
        env: Env) -> None:
    db, _s, _c, svc = env
    cid = make_customer(db)
    crashed = make_call(db, cid)  # answered, app died before the draft's first write
    make_call(db, cid, answered=False)  # no answer: nothing to wrap up
    make_call(db, cid, disposition="Sale")  # already wrapped up
    make_call(db, cid, started=T0 - timedelta(days=30))  # too old to block anything
    assert [p.call_log_id for p in svc.pending_drafts()] == [crashed]
    svc.save(crashed, WrapupData(disposition="Sale"))
    with pytest.raises(WrapupError, match="already wrapped up"):
        svc.save(crashed, WrapupData(disposition="Sale"))


def test_can_dial_respects_the_setting(env: Env) -> None:
    db, settings, _c, svc = env
    call = make_call(db, make_customer(db, "Han Meimei"))
    assert svc.can_dial() == (True, "")
    settings.set("wrapup.required_before_next_call", True)
    ok, why = svc.can_dial()
    assert not ok and "Wrap up the call with Han Meimei" in why
    assert svc.can_dial(live_call_ids=[call]) == (True, ""), "a call still going on is no block"
    svc.save(call, WrapupData(disposition="Sale"))
    assert svc.can_dial() == (True, "")


def test_answered_follow_up_call_completes_due_tasks(env: Env) -> None:
    db, _s, clock, svc = env
    cid = make_customer(db)
    with db.transaction() as s:
        s.add(Task(customer_id=cid, title="due", due_at=to_iso(clock() - timedelta(hours=1))))
        s.add(Task(customer_id=cid, title="later", due_at=to_iso(clock() + timedelta(days=3))))
    svc.save(make_call(db, cid), WrapupData(disposition="Interested"))
    with db.session() as s:
        done = {t.title: t.done_at for t in s.scalars(select(Task))}
        task_ops = s.scalars(select(Outbox).where(Outbox.entity == "task")).all()
    assert done["due"] == to_iso(clock()) and done["later"] is None
    assert any("done_at" in json.loads(r.changed_fields) and r.base_version == 0
               for r in task_ops)


def test_known_tags_most_used_first_and_status_choices(env: Env) -> None:
    db, _s, _c, svc = env
    make_customer(db, "a", tags=("vip", "hot"))
    make_customer(db, "b", tags=("vip",))
    assert svc.known_tags() == ["vip", "hot"]
    assert svc.known_tags("h") == ["hot"]
    assert svc.status_choices()[0] == "new"
    assert "lead" in svc.stage_choices()


def test_unreadable_draft_json_is_kept_as_notes() -> None:
    assert WrapupData.from_json("not json {").notes == "not json {"
    assert WrapupData.from_json('{"disposition": "Sale", "future_field": 1}').disposition == (
        "Sale")


def test_signals_announce_a_new_pending_wrapup_and_the_save(env: Env) -> None:
    db, _s, _c, svc = env
    cid = make_customer(db)
    call = make_call(db, cid)
    saved: list[tuple[int, int]] = []
    changed: list[bool] = []
    svc.wrapup_saved.connect(lambda a, b: saved.append((a, b)))
    svc.pending_changed.connect(lambda: changed.append(True))
    svc.open(call)
    svc.open(call)  # already open: no second announcement
    assert changed == [True]
    svc.save(call, WrapupData(disposition="Sale"))
    assert saved == [(call, cid)] and changed == [True, True]
