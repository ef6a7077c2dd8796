"""Operator actions shared by the CLI and tests: assign customers, compact the change log,
revoke a user's sessions, seed demo data."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, literal_column, select, tuple_, update
from sqlalchemy.orm import Session

from sync.server.accounts import AccountError, create_team, create_user, find_user
from sync.server.db import ServerDatabase, utcnow
from sync.server.feed import PG_XMIN, Feed
from sync.server.models import AuthSession, ChangeLog, Record, ServerState, Team, User

log = logging.getLogger(__name__)


def assign_customer(db: ServerDatabase, customer_uuid: str, username: str) -> None:
    """Reassign a customer (and its rows) to `username`, as an admin would."""
    feed = Feed(db.is_postgres)

    def txn(s: Session) -> None:
        rec = s.execute(select(Record).where(Record.uuid == customer_uuid,
                                             Record.entity == "customer").with_for_update()
                        ).scalar_one_or_none()
        if rec is None:
            raise AccountError(f"There is no customer {customer_uuid}.")
        user = find_user(s, username)
        data = json.loads(rec.data)
        if rec.owner_user_id == user.id:
            return
        rec.version += 1
        data["owner"] = user.username
        fv = json.loads(rec.field_versions)
        fv["owner"] = [rec.version, "admin", None]
        rec.data, rec.field_versions = json.dumps(data, ensure_ascii=False), json.dumps(fv)
        rec.updated_at = utcnow()
        feed.reassign(s, rec, user)

    db.run_write(txn)


def compact(db: ServerDatabase, keep_last: int = 0) -> tuple[int, int]:
    """Delete old change-log entries (all but the newest `keep_last` settled ones).

    Clients whose cursor is older than the new horizon get `reset_required`. Returns the
    horizon (txid, seq).
    """
    def txn(s: Session) -> tuple[int, int]:
        q = select(ChangeLog.txid, ChangeLog.seq)
        if db.is_postgres:
            xmin = int(s.execute(select(literal_column(PG_XMIN))).scalar_one())
            q = q.where(ChangeLog.txid < xmin)
        row = s.execute(q.order_by(ChangeLog.txid.desc(), ChangeLog.seq.desc())
                        .offset(keep_last).limit(1)).first()
        if row is None:
            return _horizon(s)
        horizon = (int(row[0]), int(row[1]))
        s.execute(delete(ChangeLog).where(tuple_(ChangeLog.txid, ChangeLog.seq)
                                          <= tuple_(*horizon)))
        state = s.get(ServerState, "horizon")
        value = f"{horizon[0]}:{horizon[1]}"
        if state is None:
            s.add(ServerState(key="horizon", value=value))
        else:
            state.value = value
        log.info("compacted change log up to %s", value)
        return horizon

    return db.run_write(txn)


def _horizon(s: Session) -> tuple[int, int]:
    state = s.get(ServerState, "horizon")
    if state is None:
        return (0, 0)
    t, q = state.value.split(":")
    return int(t), int(q)


def revoke_sessions(db: ServerDatabase, username: str) -> int:
    def txn(s: Session) -> int:
        user = find_user(s, username)
        res = s.execute(update(AuthSession).where(AuthSession.user_id == user.id,
                                                  AuthSession.revoked_at.is_(None))
                        .values(revoked_at=utcnow(), revoked_reason="admin"))
        return int(getattr(res, "rowcount", 0) or 0)

    return db.run_write(txn)


@dataclass
class DemoAccounts:
    team: str
    passwords: dict[str, str]
    customers: int


def demo_seed(db: ServerDatabase, agent_password: str, lead_password: str,
              customers: list[dict[str, Any]] | None = None, team: str = "demo") -> DemoAccounts:
    """One team with an agent and a team lead; optional customers owned by the agent.

    Idempotent: existing users keep their passwords and customers are not duplicated.
    """
    feed = Feed(db.is_postgres)

    def txn(s: Session) -> int:
        if s.execute(select(Team).where(Team.name == team)).scalar_one_or_none() is None:
            create_team(s, team)
        made: dict[str, User] = {}
        for name, role, pw in (("agent", "agent", agent_password),
                               ("lead", "team_lead", lead_password)):
            user = s.execute(select(User).where(User.username == name)).scalar_one_or_none()
            made[name] = user or create_user(s, name, pw, role, team)
        agent = made["agent"]
        added = 0
        now = utcnow()
        for c in customers or []:
            uuid = str(c["uuid"])
            if s.execute(select(Record.id).where(Record.uuid == uuid)).first():
                continue
            data = {k: v for k, v in c.items() if k != "uuid"}
            data["owner"] = agent.username
            rec = Record(entity=str(c.get("entity", "customer")), uuid=uuid,
                         customer_uuid=str(c.get("customer_uuid", uuid)), call_log_uuid=None,
                         author_id=agent.id, owner_user_id=agent.id, team_id=agent.team_id,
                         version=1, data=json.dumps(data, ensure_ascii=False),
                         field_versions="{}", deleted_at=None, audio_available=False,
                         created_at=now, updated_at=now)
            s.add(rec)
            feed.emit(s, rec, "upsert")
            added += 1
        feed.drain(s)
        return added

    added = db.run_write(txn)
    return DemoAccounts(team, {"agent": agent_password, "lead": lead_password}, added)
