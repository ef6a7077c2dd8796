"""Wrap-up after a call: drafts that survive anything, and one atomic save.

Why drafts live in the database rather than in the dialog: an agent types a wrap-up while
the next call may already be ringing, and the app may crash or be killed. Every change is
written to the local-only `wrapup_drafts` table (debounced by the dialog), so after a crash,
a restart or an incoming call the wrap-up reopens exactly as it was typed.

Saving writes the call's wrap-up fields, the customer's status/stage/do-not-call, new tags,
a Note and the follow-up Task in ONE transaction and deletes the draft in that same
transaction; the outbox rows for sync are added by the ORM hook in the same flush, so the
server either sees the whole wrap-up or none of it.

A customer deleted by sync while its wrap-up is open is not an error that loses work: the
call's own disposition and notes are still saved (the call log belongs to the agent), and
the agent is told that the customer-side changes could not be applied.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import QObject, Signal
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from agent_desktop.customers import STAGES, STATUSES
from agent_desktop.phone import install_emit_refcount_fix
from agent_desktop.settings import Settings
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Customer, Note, Tag, Task, WrapupDraft

log = logging.getLogger(__name__)

# PySide6 6.12 drops a reference to True on each emit(); this module emits a lot.
install_emit_refcount_fix()

Clock = Callable[[], datetime]

# How far back an answered call without a wrap-up still counts as "pending": older ones
# are history an agent can no longer usefully wrap up, and must not block dialling forever.
PENDING_WINDOW = timedelta(days=7)
MAX_FIELD = 32  # status/stage column width


def utc_clock() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """Aware datetime → the store's UTC ISO text (sortable as a string)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times must carry a time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class WrapupError(ValueError):
    """A wrap-up cannot be saved as it is; `str()` is a sentence for the agent."""


@dataclass
class WrapupData:
    """What the agent has entered so far. `None` means "leave unchanged"."""

    disposition: str | None = None
    tags: list[str] = field(default_factory=list)  # tags to add to the customer
    notes: str = ""
    status: str | None = None
    stage: str | None = None
    follow_up_at: str | None = None  # UTC ISO text
    follow_up_title: str = ""
    do_not_call: bool | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WrapupData:
        """Tolerant reader: a draft written by an older version must still open."""
        try:
            raw = json.loads(text or "{}")
        except json.JSONDecodeError:
            log.error("unreadable wrap-up draft kept as a note: %r", text[:200])
            return cls(notes=text)
        if not isinstance(raw, dict):
            return cls(notes=str(raw))
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        data = cls(**known)
        data.tags = [str(t) for t in (data.tags or [])]
        return data


@dataclass(frozen=True)
class PendingWrapup:
    """A call that still needs its wrap-up, with what the dialog shows about it."""

    call_log_id: int
    customer_id: int | None
    customer_name: str
    customer_status: str
    customer_stage: str
    customer_do_not_call: bool
    customer_deleted: bool
    number: str
    direction: str
    outcome: str | None
    started_at: str
    talk_seconds: float
    data: WrapupData
    has_draft: bool


@dataclass(frozen=True)
class SaveResult:
    call_log_id: int
    task_id: int | None
    note_id: int | None
    warnings: tuple[str, ...] = ()


class WrapupService(QObject):
    """Drafts, validation and the atomic save of wrap-ups (no widgets: the dialog calls this).

    Signals:
        wrapup_saved(call_log_id, customer_id): committed; customer_id is 0 when none.
            The customer pane, Today list, agent stats and the power dialer listen.
        pending_changed(): the set of open wrap-ups changed (can_dial() may differ now).
    """

    wrapup_saved = Signal(int, int)
    pending_changed = Signal()

    def __init__(self, db: Database, settings: Settings, *, clock: Clock = utc_clock,
                 agent: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self._settings = settings
        self._clock = clock
        self._agent = agent

    # ----------------------------------------------------------------- choices
    def dispositions(self) -> list[str]:
        """The configured list (hotkeys 1–9 in this order); empty is a configuration error."""
        raw = str(self._settings.get("wrapup.dispositions"))
        items: list[str] = []
        for part in raw.split(","):
            name = part.strip()
            if name and name.casefold() not in {i.casefold() for i in items}:
                items.append(name)
        if not items:
            raise WrapupError(
                "No dispositions are configured, so a call cannot be wrapped up. Add a "
                "comma-separated list under Settings → Wrap-up → Dispositions "
                "(for example: Interested, Not interested, Call back)."
            )
        return items

    def status_choices(self) -> list[str]:
        return self._distinct(Customer.status, STATUSES)

    def stage_choices(self) -> list[str]:
        return self._distinct(Customer.stage, STAGES)

    def _distinct(self, column: Any, defaults: tuple[str, ...]) -> list[str]:
        with self._db.session() as s:
            used = [v for v in s.scalars(select(column).distinct().limit(200)) if v]
        out = list(defaults)
        out += sorted(v for v in used if v not in out)
        return out

    def known_tags(self, prefix: str = "", limit: int = 50) -> list[str]:
        """Tag names in use, most used first: the autocomplete list."""
        stmt = (select(Tag.name).where(Tag.deleted_at.is_(None)).group_by(Tag.name)
                .order_by(func.count().desc(), Tag.name).limit(limit))
        if prefix:
            stmt = stmt.where(Tag.name.like(f"{prefix.replace('%', '')}%"))
        with self._db.session() as s:
            return list(s.scalars(stmt))

    # ----------------------------------------------------------------- drafts
    def open(self, call_log_id: int) -> PendingWrapup:
        """The call's wrap-up as it stands; creates the draft row so it survives a crash.

        Core SQL, not the ORM: this runs between hang-up and the dialog being on screen
        (budget 100 ms), and drafts are local-only rows the outbox never sees.
        """
        now = to_iso(self._clock())
        with self._db.engine.begin() as conn:
            row = conn.execute(_pending_query().where(CallLog.id == call_log_id)).one_or_none()
            if row is None:
                raise WrapupError(f"Call {call_log_id} no longer exists; nothing to wrap up.")
            created = row.draft is None and row.wrapped_up_at is None
            if created:
                conn.execute(sqlite_insert(WrapupDraft).values(
                    call_log_id=call_log_id, data=WrapupData().to_json(), updated_at=now,
                ).on_conflict_do_nothing())
        if created:
            self.pending_changed.emit()
        return _to_pending(row, has_draft=created or row.draft is not None)

    def save_draft(self, call_log_id: int, data: WrapupData) -> None:
        """Persist what was typed (local only, no outbox): called on every debounced change."""
        text = data.to_json()
        now = to_iso(self._clock())
        try:
            with self._db.engine.begin() as conn:
                conn.execute(sqlite_insert(WrapupDraft).values(
                    call_log_id=call_log_id, data=text, updated_at=now,
                ).on_conflict_do_update(index_elements=[WrapupDraft.call_log_id],
                                        set_={"data": text, "updated_at": now}))
        except IntegrityError as exc:  # the call log is gone (foreign key)
            log.error("draft for missing call %s not saved: %s", call_log_id, text)
            raise WrapupError(f"Call {call_log_id} no longer exists; draft not saved.") from exc

    def pending_drafts(self) -> list[PendingWrapup]:
        """Every wrap-up still open: saved drafts, and answered calls never wrapped up.

        The second kind covers a crash between hang-up and the draft's first write: the
        call log (written at call start) is on disk, so its wrap-up must reopen too.
        """
        since = to_iso(self._clock() - PENDING_WINDOW)
        stmt = (_pending_query()
                .where(CallLog.wrapped_up_at.is_(None), CallLog.deleted_at.is_(None))
                .where(or_(WrapupDraft.call_log_id.is_not(None),
                           and_(CallLog.answered_at.is_not(None), CallLog.started_at >= since)))
                .order_by(CallLog.started_at, CallLog.id))
        with self._db.engine.connect() as conn:
            return [_to_pending(r, has_draft=r.draft is not None)
                    for r in conn.execute(stmt).all()]

    def can_dial(self, live_call_ids: Iterable[int] = ()) -> tuple[bool, str]:
        """Whether the next call may start (setting `wrapup.required_before_next_call`).

        `live_call_ids` (CallService.active_log_ids()) are calls still in progress: they
        are answered but cannot be wrapped up yet, so they do not block.
        """
        if not self._settings.get("wrapup.required_before_next_call"):
            return True, ""
        live = set(live_call_ids)
        pending = [p for p in self.pending_drafts() if p.call_log_id not in live]
        if not pending:
            return True, ""
        first = pending[0]
        who = first.customer_name or first.number
        more = f" (and {len(pending) - 1} more)" if len(pending) > 1 else ""
        return False, (f"Wrap up the call with {who}{more} before dialling the next one: "
                       "your settings require a wrap-up for every call.")

    # ----------------------------------------------------------------- saving
    def validate(self, data: WrapupData) -> list[str]:
        """Every problem, each in plain words (empty list = can be saved)."""
        problems: list[str] = []
        try:
            choices = self.dispositions()
        except WrapupError as exc:
            return [str(exc)]
        if not data.disposition:
            problems.append("Choose a disposition (keys 1–9) before saving.")
        elif data.disposition not in choices:
            problems.append(f"“{data.disposition}” is not one of the configured dispositions.")
        if data.follow_up_at:
            try:
                due = from_iso(data.follow_up_at)
            except ValueError:
                problems.append(f"The follow-up time “{data.follow_up_at}” is not a date/time.")
            else:
                if due <= self._clock():
                    local = due.astimezone().strftime("%Y-%m-%d %H:%M")
                    problems.append(f"The follow-up time {local} is in the past; choose a "
                                    "later time or clear the follow-up.")
        for label, value in (("status", data.status), ("stage", data.stage)):
            if value is not None and (not value.strip() or len(value) > MAX_FIELD):
                problems.append(f"The {label} must be 1–{MAX_FIELD} characters.")
        for tag in data.tags:
            if not tag.strip():
                problems.append("A tag is empty; remove it or type a name.")
                break
        return problems

    def save(self, call_log_id: int, data: WrapupData) -> SaveResult:
        """Validate, then write everything in one transaction (the draft goes with it)."""
        problems = self.validate(data)
        if problems:
            self.save_draft(call_log_id, data)  # what was typed is never lost
            raise WrapupError(" ".join(problems))
        now = self._clock()
        now_iso = to_iso(now)
        warnings: list[str] = []
        with self._db.transaction() as s:
            call = s.get(CallLog, call_log_id)
            if call is None:
                raise WrapupError(f"Call {call_log_id} no longer exists; nothing to save.")
            if call.wrapped_up_at is not None:
                s.execute(delete(WrapupDraft).where(WrapupDraft.call_log_id == call_log_id))
                raise WrapupError("This call was already wrapped up; nothing was changed.")
            customer_id = call.customer_id
            call.disposition = data.disposition
            call.wrapup_notes = data.notes.strip()
            call.wrapped_up_at = now_iso
            customer = s.get(Customer, call.customer_id) if call.customer_id else None
            note_id: int | None = None
            task_id: int | None = None
            if customer is None or customer.deleted_at is not None:
                lost = _customer_side(data)
                if call.customer_id is not None or lost:
                    name = customer.name if customer is not None else "this call's customer"
                    warnings.append(self._deleted_warning(name, lost))
                    log.warning("wrap-up of call %s saved without customer changes %s "
                                "(customer %s deleted)", call_log_id, lost, call.customer_id)
            else:
                note_id, task_id = self._apply_customer(s, call, customer, data, now_iso)
            s.execute(delete(WrapupDraft).where(WrapupDraft.call_log_id == call_log_id))
            s.flush()
        log.info("wrap-up saved: call %s disposition=%r task=%s", call_log_id,
                 data.disposition, task_id)
        self.wrapup_saved.emit(call_log_id, customer_id or 0)
        self.pending_changed.emit()
        return SaveResult(call_log_id, task_id, note_id, tuple(warnings))

    def _apply_customer(self, s: Any, call: CallLog, customer: Customer, data: WrapupData,
                        now_iso: str) -> tuple[int | None, int | None]:
        if data.status is not None and data.status.strip() != customer.status:
            customer.status = data.status.strip()
        if data.stage is not None and data.stage.strip() != customer.stage:
            customer.stage = data.stage.strip()
        if data.do_not_call is not None and data.do_not_call != customer.do_not_call:
            customer.do_not_call = data.do_not_call
        have = {t.name.casefold() for t in customer.tags if t.deleted_at is None}
        for name in dict.fromkeys(t.strip() for t in data.tags):
            if name.casefold() not in have:
                s.add(Tag(customer_id=customer.id, name=name))
                have.add(name.casefold())
        note_id = task_id = None
        if data.notes.strip():
            note = Note(customer_id=customer.id, call_log_id=call.id, body=data.notes.strip(),
                        author=self._agent, created_at=now_iso)
            s.add(note)
            s.flush()
            note_id = note.id
        if call.answered_at is not None:
            # A reached customer's due follow-ups are done: this call was the follow-up.
            # ORM objects, not a bulk UPDATE: only unit-of-work changes reach the outbox.
            for task in s.scalars(select(Task).where(
                    Task.customer_id == customer.id, Task.done_at.is_(None),
                    Task.deleted_at.is_(None), Task.due_at <= now_iso)):
                task.done_at = now_iso
        if data.follow_up_at:
            title = data.follow_up_title.strip() or f"Call back {customer.name}"
            task = Task(customer_id=customer.id, call_log_id=call.id, title=title,
                        due_at=to_iso(from_iso(data.follow_up_at)), created_at=now_iso)
            s.add(task)
            s.flush()
            task_id = task.id
        return note_id, task_id

    @staticmethod
    def _deleted_warning(name: str, lost: list[str]) -> str:
        what = ", ".join(lost) if lost else "no customer changes"
        return (f"{name} was deleted on the server while you were wrapping up. The call's "
                f"disposition and notes were saved on the call log; {what} could not be "
                "applied to a deleted customer.")


def _pending_query() -> Any:
    """One row per call with its customer and draft: everything the dialog shows."""
    return (select(CallLog.id, CallLog.customer_id, CallLog.number, CallLog.direction,
                   CallLog.outcome, CallLog.started_at, CallLog.talk_seconds,
                   CallLog.wrapped_up_at, Customer.name, Customer.status, Customer.stage,
                   Customer.do_not_call, Customer.deleted_at.label("customer_deleted_at"),
                   Customer.id.label("customer_row"), WrapupDraft.data.label("draft"))
            .select_from(CallLog)
            .outerjoin(Customer, Customer.id == CallLog.customer_id)
            .outerjoin(WrapupDraft, WrapupDraft.call_log_id == CallLog.id))


def _to_pending(r: Any, *, has_draft: bool) -> PendingWrapup:
    live = r.customer_row is not None
    return PendingWrapup(
        call_log_id=r.id,
        customer_id=r.customer_id,
        customer_name=r.name or "" if live else "",
        customer_status=r.status or "" if live else "",
        customer_stage=r.stage or "" if live else "",
        customer_do_not_call=bool(r.do_not_call) if live else False,
        customer_deleted=r.customer_id is not None and (
            not live or r.customer_deleted_at is not None),
        number=r.number,
        direction=r.direction,
        outcome=r.outcome,
        started_at=r.started_at,
        talk_seconds=r.talk_seconds or 0.0,
        data=WrapupData.from_json(r.draft) if r.draft is not None else WrapupData(),
        has_draft=has_draft,
    )


def _customer_side(data: WrapupData) -> list[str]:
    """Names of the parts of a wrap-up that need a live customer."""
    parts = []
    if data.status is not None:
        parts.append("the status change")
    if data.stage is not None:
        parts.append("the stage change")
    if data.tags:
        parts.append("the tags")
    if data.follow_up_at:
        parts.append("the follow-up")
    if data.do_not_call is not None:
        parts.append("the do-not-call flag")
    if data.notes.strip():
        parts.append("the customer note")
    return parts
