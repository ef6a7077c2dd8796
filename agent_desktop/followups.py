"""Follow-ups: what is due today or overdue, and when the next reminder must fire.

Why a separate service from CustomerService: the reminder needs "the next due time after
now" and "what fell due since the last reminder" — two cheap indexed queries on
`ix_tasks_due_open` — so the UI can arm ONE timer to the next due task instead of polling.
Day boundaries are the agent's local day (the clock's time zone), stored times are UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select

from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, PhoneNumber, Task

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _parse(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def local_clock() -> datetime:
    """Now, aware, in the machine's local time zone."""
    return datetime.now().astimezone()


@dataclass(frozen=True)
class Followup:
    """One open follow-up as the list shows it."""

    task_id: int
    customer_id: int
    customer_name: str
    phone: str  # first number, as typed ("" when the customer has none)
    title: str
    due_at: datetime  # aware UTC
    overdue: bool


class FollowupService:
    """Read side of follow-ups (completing one goes through CustomerService.complete_task)."""

    def __init__(self, db: Database, *, clock: Clock = local_clock) -> None:
        self._db = db
        self._clock = clock

    def end_of_today(self) -> datetime:
        now = self._clock()
        return datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=now.tzinfo)

    def today(self, limit: int = 500) -> list[Followup]:
        """Open follow-ups due before the end of the local day, overdue (oldest) first."""
        return self._query(None, self.end_of_today(), inclusive=False, limit=limit)

    def next_due_after(self, moment: datetime) -> datetime | None:
        """When the next open follow-up falls due strictly after `moment` (arms the timer)."""
        stmt = (select(func.min(Task.due_at))
                .join(Customer, Task.customer_id == Customer.id)
                .where(Task.done_at.is_(None), Task.deleted_at.is_(None),
                       Customer.deleted_at.is_(None), Task.due_at > _iso(moment)))
        with self._db.session() as s:
            value = s.scalar(stmt)
        return _parse(value) if value else None

    def due_between(self, after: datetime, until: datetime) -> list[Followup]:
        """Open follow-ups with `after < due_at <= until`: what a reminder announces."""
        return self._query(after, until, inclusive=True, limit=500)

    def _query(self, after: datetime | None, until: datetime, *, inclusive: bool,
               limit: int) -> list[Followup]:
        now = self._clock()
        first_phone = (select(PhoneNumber.raw)
                       .where(PhoneNumber.customer_id == Customer.id,
                              PhoneNumber.deleted_at.is_(None))
                       .order_by(PhoneNumber.position).limit(1).scalar_subquery())
        upper = Task.due_at <= _iso(until) if inclusive else Task.due_at < _iso(until)
        stmt = (select(Task.id, Task.customer_id, Customer.name, first_phone, Task.title,
                       Task.due_at)
                .join(Customer, Task.customer_id == Customer.id)
                .where(Task.done_at.is_(None), Task.deleted_at.is_(None),
                       Customer.deleted_at.is_(None), upper)
                .order_by(Task.due_at, Task.id).limit(limit))
        if after is not None:
            stmt = stmt.where(Task.due_at > _iso(after))
        with self._db.session() as s:
            rows = s.execute(stmt).all()
        out = []
        for task_id, cust_id, name, phone, title, due in rows:
            due_dt = _parse(due)
            out.append(Followup(task_id, cust_id, name, phone or "", title, due_dt,
                                due_dt <= now))
        return out
