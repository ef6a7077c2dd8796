"""Visibility rules and the change log: who sees a row, and how changes are announced.

A row's audience is (owner_user_id, team_id): the one agent who sees it and the team whose
lead sees it; admins see everything. The same rule is written twice on purpose — as a
Python check for pushed mutations and as SQL for pulls — and both live here.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    false,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from sync.server.auth import Principal
from sync.server.db import utcnow
from sync.server.models import ChangeLog, Record, User

# Transaction id of the writer, for the snapshot-xmin pull rule on PostgreSQL (§6).
PG_TXID = "pg_current_xact_id()::text::bigint"
PG_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
PENDING = "pending_changes"  # Session.info key of queued change-log entries


class Audience(Protocol):
    """What `can_see` reads of a row: a `Record`, or a driver-level row of the push path."""

    @property
    def owner_user_id(self) -> int | None: ...

    @property
    def team_id(self) -> int | None: ...


def can_see(p: Principal, rec: Audience) -> bool:
    if p.role == "admin":
        return True
    if rec.owner_user_id is not None and rec.owner_user_id == p.user_id:
        return True
    return p.role == "team_lead" and p.team_id is not None and rec.team_id == p.team_id


def visible_sql(p: Principal, null_safe: bool = False) -> ColumnElement[bool]:
    """SQL form of `can_see` over `Record`.

    `null_safe` gives a predicate that is never NULL (so `NOT` of it is true for a row
    with no owner); the plain form keeps `owner_user_id = ?` index-friendly.
    """
    if p.role == "admin":
        return true()
    if null_safe:
        mine = Record.owner_user_id.is_not_distinct_from(p.user_id)
    else:
        mine = Record.owner_user_id == p.user_id
    if p.role == "team_lead" and p.team_id is not None:
        team = (Record.team_id.is_not_distinct_from(p.team_id) if null_safe
                else Record.team_id == p.team_id)
        return or_(mine, team)
    return mine


def audience_sql(p: Principal) -> ColumnElement[bool]:
    """Change-log entries addressed to this principal (removals are not for admins)."""
    if p.role == "admin":
        return ChangeLog.op != "remove"
    mine = ChangeLog.audience_user_id == p.user_id
    if p.role == "team_lead" and p.team_id is not None:
        return or_(mine, ChangeLog.audience_team_id == p.team_id)
    return mine if p.user_id is not None else false()


class Feed:
    """Writes change-log entries; knows the dialect's transaction-id expression."""

    def __init__(self, is_postgres: bool) -> None:
        self.is_postgres = is_postgres

    def txid(self) -> Any:
        return literal_column(PG_TXID) if self.is_postgres else literal(0)

    def emit(self, s: Session, rec: Record, op: str, audience_user: int | None = None,
             audience_team: int | None = None, *, explicit: bool = False) -> None:
        """Queue an entry; `drain` writes the queue in one statement (after a flush gives
        new rows their ids). Order of entries is the order of `emit` calls."""
        if not explicit:
            audience_user, audience_team = rec.owner_user_id, rec.team_id
        s.info.setdefault(PENDING, []).append((rec, op, audience_user, audience_team))

    def drain(self, s: Session) -> None:
        pending = s.info.pop(PENDING, [])
        if not pending:
            return
        s.flush()
        now = utcnow()
        s.execute(insert(ChangeLog).values(txid=self.txid()), [
            {"record_id": rec.id, "op": op, "audience_user_id": user,
             "audience_team_id": team, "created_at": now}
            for rec, op, user, team in pending])

    def reassign(self, s: Session, customer: Record, new_owner: User) -> None:
        """Move a customer and every row under it to `new_owner` (and their team).

        The previous audience gets a `remove`; the new one gets every row again, because
        their earlier change-log entries were addressed to someone else.
        """
        self.drain(s)  # earlier entries of this transaction stay ahead of the ones below
        old_user, old_team = customer.owner_user_id, customer.team_id
        customer.owner_user_id, customer.team_id = new_owner.id, new_owner.team_id
        s.flush()
        s.execute(update(Record)
                  .where(Record.customer_uuid == customer.uuid, Record.id != customer.id,
                         Record.entity != "recording")
                  .values(owner_user_id=new_owner.id, team_id=new_owner.team_id))
        # Recordings stay visible to their author only: a new owner who did not make the
        # call does not get the audio (team leads still do, through team_id).
        for rec in s.execute(select(Record).where(Record.customer_uuid == customer.uuid,
                                                  Record.entity == "recording")).scalars():
            rec.owner_user_id = new_owner.id if rec.author_id == new_owner.id else None
            rec.team_id = new_owner.team_id
        s.flush()
        now = utcnow()
        if old_user != new_owner.id or old_team != new_owner.team_id:
            # Every row gets its own removal, children first, so a client need not know
            # which of its local foreign keys cascade.
            gone_user = old_user if old_user != new_owner.id else None
            gone_team = old_team if old_team != new_owner.team_id else None
            s.execute(insert(ChangeLog).from_select(
                ["txid", "record_id", "op", "audience_user_id", "audience_team_id",
                 "created_at"],
                select(self.txid(), Record.id, literal("remove"), literal(gone_user),
                       literal(gone_team), literal(now))
                .where(Record.customer_uuid == customer.uuid, Record.id != customer.id)
                .order_by(Record.id.desc())))
            self.emit(s, customer, "remove", gone_user, gone_team, explicit=True)
        self.emit(s, customer, "delete" if customer.deleted_at else "upsert")
        self.drain(s)
        children = (select(self.txid(), Record.id, _op_of_record(), Record.owner_user_id,
                           Record.team_id, literal(now))
                    .where(Record.customer_uuid == customer.uuid, Record.id != customer.id)
                    .order_by(Record.id))
        s.execute(insert(ChangeLog).from_select(
            ["txid", "record_id", "op", "audience_user_id", "audience_team_id", "created_at"],
            children))


def _op_of_record() -> Any:
    from sqlalchemy import case

    return case((Record.deleted_at.is_(None), literal("upsert")), else_=literal("delete"))
