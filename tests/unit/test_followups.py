"""FollowupService: today/overdue list in the agent's local day, next due time, due ranges."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from agent_desktop.followups import FollowupService
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Task, utcnow
from agent_desktop.wrapup import to_iso
from tests.unit.test_wrapup import FakeClock, make_customer, make_db

SHANGHAI = timezone(timedelta(hours=8))
# 23 Nov 2026, 18:00 in Shanghai = 10:00 UTC
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=SHANGHAI)


def add_task(db: Database, customer_id: int, title: str, due: datetime,
             done: bool = False) -> int:
    with db.transaction() as s:
        t = Task(customer_id=customer_id, title=title, due_at=to_iso(due),
                 done_at=utcnow() if done else None)
        s.add(t)
        s.flush()
        return t.id


def setup(tmp_path: Path) -> tuple[Database, FakeClock, FollowupService, int]:
    db = make_db(tmp_path)
    clock = FakeClock(NOW)
    cid = make_customer(db, "张伟", ("+8613900139000", "+8613900139001"))
    return db, clock, FollowupService(db, clock=clock), cid


def test_today_lists_overdue_first_and_stops_at_local_midnight(tmp_path: Path) -> None:
    db, _clock, svc, cid = setup(tmp_path)
    add_task(db, cid, "yesterday", NOW - timedelta(days=1))
    add_task(db, cid, "tonight", NOW + timedelta(hours=5, minutes=59))  # 23:59 local
    add_task(db, cid, "tomorrow", NOW + timedelta(hours=6))  # 00:00 local next day
    add_task(db, cid, "done", NOW - timedelta(hours=1), done=True)
    items = svc.today()
    assert [f.title for f in items] == ["yesterday", "tonight"]
    assert [f.overdue for f in items] == [True, False]
    assert items[0].customer_name == "张伟" and items[0].phone == "+8613900139000"


def test_deleted_customers_and_tasks_are_not_listed(tmp_path: Path) -> None:
    db, _clock, svc, cid = setup(tmp_path)
    other = make_customer(db, "gone")
    add_task(db, other, "for gone", NOW - timedelta(hours=1))
    tid = add_task(db, cid, "tombstoned", NOW - timedelta(hours=1))
    with db.transaction() as s:
        c = s.get(Customer, other)
        t = s.get(Task, tid)
        assert c is not None and t is not None
        c.deleted_at = utcnow()
        t.deleted_at = utcnow()
    assert svc.today() == []
    assert svc.next_due_after(NOW - timedelta(days=1)) is None


def test_next_due_after_and_due_between_drive_the_reminder(tmp_path: Path) -> None:
    db, clock, svc, cid = setup(tmp_path)
    assert svc.next_due_after(clock()) is None
    add_task(db, cid, "past", NOW - timedelta(minutes=1))
    soon = add_task(db, cid, "soon", NOW + timedelta(minutes=10))
    add_task(db, cid, "next week", NOW + timedelta(days=7))
    nxt = svc.next_due_after(clock())
    assert nxt == NOW + timedelta(minutes=10)
    clock.advance(minutes=10)
    fired = svc.due_between(NOW, clock())
    assert [f.task_id for f in fired] == [soon] and fired[0].overdue
    assert svc.next_due_after(clock()) == NOW + timedelta(days=7)
    assert svc.due_between(clock(), clock() + timedelta(days=8))[0].title == "next week"
