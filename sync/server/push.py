"""`POST /sync/push`: apply a client's outbox idempotently, field by field.

Everything for one request happens in one transaction, including the client's new
`last_mutation_id`, so a retried request after a lost response is a no-op. A permanently
invalid mutation is reported as `rejected` and still counts as processed, so it can never
block the queue behind it.

Invariant that makes this safe without a savepoint per mutation (which cost half the
push time): every check that can reject a mutation runs before it writes anything.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.server.auth import NO_NUL, Principal
from sync.server.db import ServerDatabase, WriterBusy, utcnow
from sync.server.entities import ENTITY_SPECS, EntitySpec, FieldError, check_fields, defaults
from sync.server.errors import ApiError, foreign_client_id
from sync.server.feed import PG_TXID, Feed, can_see
from sync.server.models import Client, Conflict, Record, User

log = logging.getLogger(__name__)

CASCADE_ON_CUSTOMER_DELETE = ("phone", "tag", "note", "task")
# A push of at most this many mutations that only creates rows goes the driver-level way
# (`PushService._push_new_rows`); bigger batches use the general path's bulk statements.
NEW_ROWS_MAX = 50
# Entities that path creates: a recording needs its call's author and audio bookkeeping.
NEW_ROW_ENTITIES = frozenset({"customer", "phone", "tag", "note", "task", "call_log"})


class MutationIn(BaseModel):
    mutation_id: int = Field(ge=1, le=2**62)
    entity: str = Field(max_length=32, pattern=NO_NUL)
    entity_uuid: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    op: str = Field(max_length=16, pattern=NO_NUL)
    changed_fields: dict[str, Any] = Field(default_factory=dict)
    base_version: int = Field(default=0, ge=0, le=2**62)
    schema_version: int = Field(ge=0, le=2**31)


class PushIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    schema_version: int = Field(ge=0, le=2**31)
    mutations: list[MutationIn]  # the limit (413) is checked by PushService


class ConflictOut(BaseModel):
    field: str
    your_value: Any
    other_value: Any
    winner: str
    conflict_id: int | None = None


class ErrorOut(BaseModel):
    code: str
    message: str


class ResultOut(BaseModel):
    mutation_id: int
    status: str  # applied | duplicate | rejected | conflict
    version: int | None = None
    error: ErrorOut | None = None
    conflicts: list[ConflictOut] = Field(default_factory=list)


class PushOut(BaseModel):
    last_mutation_id: int
    server_time: str
    results: list[ResultOut]


class _Known(NamedTuple):
    """What the new-rows path needs of a row it creates or of a parent it checks."""

    uuid: str
    entity: str
    owner_user_id: int | None
    team_id: int | None
    deleted_at: str | None


# (mutation, checked fields, the new row's data with defaults)
_Plan = list[tuple[MutationIn, dict[str, Any], dict[str, Any]]]


class Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Ctx:
    s: Session
    p: Principal
    client_id: str
    # Rows of this push by uuid (prefetched in one query, plus rows created here): a batch
    # of 1000 creates costs one lookup, not 1000.
    rows: dict[str, Record | None]
    users: dict[str, User | None]


def bind_client(s: Session, p: Principal, client_id: str, lock: bool) -> Client:
    """The client row, created on first use; 403 if it belongs to another user."""
    stmt = select(Client).where(Client.client_id == client_id)
    client = s.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if client is None:
        now = utcnow()
        client = Client(client_id=client_id, user_id=p.user_id, last_mutation_id=0,
                        created_at=now, last_seen_at=now)
        s.add(client)
        s.flush()  # a concurrent first use raises IntegrityError → run_write retries
    if client.user_id != p.user_id:
        log.warning("user %s used client_id %s of another user", p.username, client_id)
        raise foreign_client_id()
    return client


class PushService:
    def __init__(self, db: ServerDatabase, feed: Feed, schema_versions: tuple[int, int],
                 max_mutations: int) -> None:
        self.db = db
        self.feed = feed
        self.schema_versions = schema_versions
        self.max_mutations = max_mutations
        sql = db.sql
        self._client_sql = sql("SELECT user_id, last_mutation_id FROM clients "
                               "WHERE client_id = :cid")
        self._lock_client_sql = self._client_sql + (" FOR UPDATE" if db.is_postgres else "")
        self._bind_client_sql = sql(
            "INSERT INTO clients (client_id, user_id, last_mutation_id, created_at, "
            "last_seen_at) VALUES (:cid, :uid, 0, :now, :now) ON CONFLICT (client_id) "
            "DO NOTHING")
        self._insert_record_sql = sql(
            "INSERT INTO records (entity, uuid, customer_uuid, call_log_uuid, author_id, "
            "owner_user_id, team_id, version, data, field_versions, deleted_at, "
            "audio_available, created_at, updated_at) VALUES (:entity, :uuid, :customer_uuid, "
            ":call_log_uuid, :author_id, :owner_user_id, :team_id, 1, :data, "
            ":field_versions, NULL, :audio, :now, :now) RETURNING id")
        txid = PG_TXID if db.is_postgres else "0"
        self._insert_log_sql = sql(
            "INSERT INTO change_log (txid, record_id, op, audience_user_id, "
            f"audience_team_id, created_at) VALUES ({txid}, :rid, 'upsert', :user, :team, "
            ":now)")
        self._client_done_sql = sql("UPDATE clients SET last_mutation_id = :last, "
                                    "last_seen_at = :now WHERE client_id = :cid")

    def push_now(self, p: Principal, body: PushIn) -> PushOut | None:
        """The answer if it can be given on the event loop without waiting: SQLite, and an
        empty push or a push of new rows while no other writer holds the database. None:
        call `push` on a worker thread. Why: the hop to a thread and back costs ~0.3 ms
        of CPU and two more wake-ups per request, which under a loaded CPU become most
        of a request's latency, while this work takes ~0.2 ms."""
        if self.db.is_postgres:  # every statement is a network round trip: not here
            return None
        self._check_batch(body)
        try:
            return self._quick(p, body, wait=False)
        except WriterBusy:
            return None

    def _check_batch(self, body: PushIn) -> None:
        if len(body.mutations) > self.max_mutations:
            raise ApiError(413, "too_large", f"At most {self.max_mutations} mutations per "
                           "push; send the rest in the next request.",
                           limit_mutations=self.max_mutations)
        ids = [m.mutation_id for m in body.mutations]
        if any(b <= a for a, b in itertools.pairwise(ids)):
            raise ApiError(422, "invalid_request", "mutation_id values must be strictly "
                           "increasing (send the outbox oldest first).")

    def _quick(self, p: Principal, body: PushIn, wait: bool) -> PushOut | None:
        """An empty push (a read, no write lock) or a push of new rows on the driver;
        None when the general path must run."""
        if not body.mutations:
            with self.db.driver_read() as c:
                c.execute(self._client_sql, {"cid": body.client_id})
                known = c.fetchone()
            if known is None:
                return None  # binding the new client is a write
            if known[0] != p.user_id:
                raise foreign_client_id()
            return PushOut(last_mutation_id=int(known[1]), server_time=utcnow(), results=[])
        if len(body.mutations) > NEW_ROWS_MAX:
            return None
        plan = self._plan_new_rows(p, body)
        if plan is None:
            return None
        if wait:
            return self.db.run_driver_write(
                lambda c: self._push_new_rows(c, p, body.client_id, plan))
        with self.db.driver_write(wait=False) as c:  # no retries: SQLite only
            return self._push_new_rows(c, p, body.client_id, plan)

    def push(self, p: Principal, body: PushIn) -> PushOut:
        self._check_batch(body)
        done = self._quick(p, body, wait=True)
        if done is not None:
            return done

        def txn(s: Session) -> PushOut:
            client = bind_client(s, p, body.client_id, lock=True)
            last = client.last_mutation_id
            results: list[ResultOut] = []
            uuids = [m.entity_uuid for m in body.mutations if m.mutation_id > last]
            # The pusher is the usual owner: known from authentication (active, team), so
            # no user lookup per push. A detached User, never added to the session.
            me = User(id=p.user_id, username=p.username, role=p.role, team_id=p.team_id,
                      active=True)
            ctx = _Ctx(s, p, body.client_id, {u: None for u in uuids}, {p.username: me})
            for i in range(0, len(uuids), 500):
                for rec in s.execute(select(Record).where(Record.uuid.in_(uuids[i:i + 500]))
                                     .order_by(Record.id).with_for_update()).scalars():
                    ctx.rows[rec.uuid] = rec
            for m in body.mutations:
                if m.mutation_id <= last:
                    results.append(ResultOut(mutation_id=m.mutation_id, status="duplicate"))
                    continue
                try:
                    results.append(self._apply(ctx, m))
                except Rejected as exc:
                    log.info("rejected mutation %d of client %s (%s): %s", m.mutation_id,
                             body.client_id, exc.code, exc.message)
                    results.append(ResultOut(mutation_id=m.mutation_id, status="rejected",
                                             error=ErrorOut(code=exc.code,
                                                            message=exc.message)))
                last = m.mutation_id
            self.feed.drain(s)
            client.last_mutation_id = last
            client.last_seen_at = utcnow()
            return PushOut(last_mutation_id=last, server_time=utcnow(), results=results)

        return self.db.run_write(txn)

    # -- new rows on the driver ---------------------------------------------------------------
    def _plan_new_rows(self, p: Principal, body: PushIn) -> _Plan | None:
        """The batch's rows if every mutation creates a row of a plain entity, owned by the
        pusher or by its customer's owner, and passes the same field checks as `_create`;
        None when anything needs the general path (an update, a delete, a tombstone, an
        owner other than the pusher, a recording, a field that would be rejected)."""
        lo, hi = self.schema_versions
        plan: _Plan = []
        for m in body.mutations:
            spec = ENTITY_SPECS.get(m.entity)
            if (spec is None or m.entity not in NEW_ROW_ENTITIES or m.op != "upsert"
                    or not lo <= m.schema_version <= hi):
                return None
            try:
                fields = check_fields(spec, m.changed_fields)
            except FieldError:
                return None
            if any(fields.get(f) in (None, "") for f in spec.required):
                return None
            data = defaults(spec) | fields
            if data.get("deleted_at"):
                return None
            if m.entity == "customer":
                if data["owner"] not in ("", p.username):
                    return None
                data["owner"] = p.username
            plan.append((m, fields, data))
        return plan

    def _push_new_rows(self, c: Any, p: Principal, client_id: str,
                       plan: _Plan) -> PushOut | None:
        """`push` for a batch of new rows on driver-level statements, with the same rows,
        change-log entries, visibility checks and idempotency as the general path (a test
        compares the two). None, with nothing written but the client's binding, when a row
        already exists or a parent is missing, hidden or deleted: the general path then
        applies the batch (updates, rejections and conflicts are its business)."""
        last = self._lock_client(c, p, client_id)
        todo = [(m, f, d) for m, f, d in plan if m.mutation_id > last]
        uuids = [m.entity_uuid for m, _f, _d in todo]
        wanted = set(uuids) | {d[k] for _m, _f, d in todo
                               for k in ("customer_uuid", "call_log_uuid") if d.get(k)}
        known = self._known_rows(c, sorted(wanted))
        if len(set(uuids)) != len(uuids) or any(u in known for u in uuids):
            return None
        now = utcnow()
        new_rows: list[dict[str, Any]] = []
        for m, fields, data in todo:
            customer_uuid: str | None = None
            owner: int | None
            team: int | None
            if m.entity == "customer":
                owner, team, customer_uuid = p.user_id, p.team_id, m.entity_uuid
            elif data.get("customer_uuid"):
                cust = known.get(data["customer_uuid"])
                if (cust is None or cust.entity != "customer" or not can_see(p, cust)
                        or cust.deleted_at is not None):
                    return None
                owner, team, customer_uuid = cust.owner_user_id, cust.team_id, cust.uuid
            else:  # a call with no customer: its author's
                owner, team = p.user_id, p.team_id
            if m.entity in ("note", "task") and data.get("call_log_uuid"):
                call = known.get(data["call_log_uuid"])
                if call is None or call.entity != "call_log" or not can_see(p, call):
                    return None
            known[m.entity_uuid] = _Known(m.entity_uuid, m.entity, owner, team, None)
            stamp = [1, client_id, p.user_id]
            new_rows.append({
                "entity": m.entity, "uuid": m.entity_uuid, "customer_uuid": customer_uuid,
                "call_log_uuid": data.get("call_log_uuid"), "author_id": p.user_id,
                "owner_user_id": owner, "team_id": team, "audio": False, "now": now,
                "data": json.dumps(data, ensure_ascii=False),
                "field_versions": json.dumps({f: stamp for f in fields})})
        log_rows = []
        for row in new_rows:  # one at a time: RETURNING with executemany is not portable
            c.execute(self._insert_record_sql, row)
            log_rows.append({"rid": c.fetchone()[0], "user": row["owner_user_id"],
                             "team": row["team_id"], "now": now})
        if log_rows:
            c.executemany(self._insert_log_sql, log_rows)
        new_last = todo[-1][0].mutation_id if todo else last
        c.execute(self._client_done_sql, {"last": new_last, "now": now, "cid": client_id})
        return PushOut(last_mutation_id=new_last, server_time=now, results=[
            ResultOut(mutation_id=m.mutation_id, status="applied", version=1)
            if m.mutation_id > last else ResultOut(mutation_id=m.mutation_id,
                                                   status="duplicate")
            for m, _f, _d in plan])

    def _lock_client(self, c: Any, p: Principal, client_id: str) -> int:
        """`bind_client` on the driver: the client's last_mutation_id, its row locked
        (PostgreSQL; SQLite's writer holds the database), created on first use."""
        c.execute(self._lock_client_sql, {"cid": client_id})
        row = c.fetchone()
        if row is None:
            now = utcnow()
            c.execute(self._bind_client_sql, {"cid": client_id, "uid": p.user_id, "now": now})
            c.execute(self._lock_client_sql, {"cid": client_id})
            row = c.fetchone()
        if row[0] != p.user_id:
            log.warning("user %s used client_id %s of another user", p.username, client_id)
            raise foreign_client_id()
        return int(row[1])

    def _known_rows(self, c: Any, uuids: list[str]) -> dict[str, _Known]:
        out: dict[str, _Known] = {}
        for i in range(0, len(uuids), 100):
            part = uuids[i:i + 100]
            marks = ", ".join(f":u{j}" for j in range(len(part)))
            c.execute(self.db.sql("SELECT uuid, entity, owner_user_id, team_id, deleted_at "
                                  f"FROM records WHERE uuid IN ({marks})"),
                      {f"u{j}": u for j, u in enumerate(part)})
            out.update((r[0], _Known(*r)) for r in c.fetchall())
        return out

    # -- one mutation -----------------------------------------------------------------------
    def _apply(self, c: _Ctx, m: MutationIn) -> ResultOut:
        spec = ENTITY_SPECS.get(m.entity)
        if spec is None:
            raise Rejected("unknown_entity", f"Unknown entity {m.entity!r}.")
        if m.op not in ("upsert", "delete"):
            raise Rejected("bad_op", f"Unknown op {m.op!r}; use upsert or delete.")
        lo, hi = self.schema_versions
        if not lo <= m.schema_version <= hi:
            raise Rejected("schema_mismatch", f"Mutation schema_version {m.schema_version} is "
                           f"not supported (server accepts {lo}..{hi}).")
        try:
            fields = check_fields(spec, m.changed_fields)
        except FieldError as exc:
            raise Rejected(exc.code, exc.message) from exc
        rec = c.rows.get(m.entity_uuid)
        if rec is None:
            if m.op == "delete":
                raise Rejected("unknown_row", f"Cannot delete {m.entity} {m.entity_uuid}: "
                               "the server never received it.")
            return self._create(c, m, spec, fields)
        if rec.entity != m.entity:
            raise Rejected("entity_mismatch", f"{m.entity_uuid} is a {rec.entity}, not a "
                           f"{m.entity}.")
        if not can_see(c.p, rec):
            raise Rejected("forbidden", f"You may not change this {m.entity}.")
        if spec.insert_only and rec.author_id != c.p.user_id and c.p.role != "admin":
            raise Rejected("forbidden", f"Only the author may change a {m.entity}.")
        data = json.loads(rec.data)
        if spec.parent:
            for parent_field in ("customer_uuid", "call_log_uuid"):
                if parent_field in fields and fields[parent_field] != data.get(parent_field):
                    raise Rejected("parent_changed", f"{m.entity}.{parent_field} cannot "
                                   "change after creation.")
        if m.op == "delete" or fields.get("deleted_at"):
            return self._delete(c, m, rec, data, fields.get("deleted_at"))
        if rec.deleted_at is not None:
            return self._lost_to_delete(c, m, rec, fields)
        return self._update(c, m, spec, rec, data, fields)

    def _user_for_owner(self, c: _Ctx, owner: str, current: int | None) -> User:
        """Check who may assign a customer to `owner` ('' means the pusher)."""
        target = owner or c.p.username
        if target not in c.users:
            c.users[target] = c.s.execute(select(User).where(User.username == target)
                                          ).scalar_one_or_none()
        user = c.users[target]
        if user is None or not user.active:
            raise Rejected("bad_value", f"customer.owner: there is no active user {target!r}.")
        if user.id == current or c.p.role == "admin":
            return user
        if c.p.role == "agent":
            if current is None and user.id == c.p.user_id:
                return user
            raise Rejected("forbidden", "Agents cannot assign customers to someone else.")
        if user.id == c.p.user_id or (user.team_id is not None and user.team_id == c.p.team_id):
            return user
        raise Rejected("forbidden", f"{target!r} is not in your team.")

    def _create(self, c: _Ctx, m: MutationIn, spec: EntitySpec,
                fields: dict[str, Any]) -> ResultOut:
        missing = [f for f in spec.required if fields.get(f) in (None, "")]
        if missing:
            raise Rejected("missing_field", f"A new {m.entity} needs {', '.join(missing)}.")
        data = defaults(spec) | fields
        customer_uuid: str | None = None
        owner_id: int | None
        team_id: int | None
        if m.entity == "customer":
            owner = self._user_for_owner(c, data["owner"], None)
            data["owner"] = owner.username
            owner_id, team_id, customer_uuid = owner.id, owner.team_id, m.entity_uuid
        elif m.entity == "recording":
            call = self._parent(c, "call_log", data["call_log_uuid"])
            if call.author_id != c.p.user_id and c.p.role != "admin":
                raise Rejected("forbidden", "Only the call's author may add its recording.")
            customer_uuid = call.customer_uuid
            owner_id = call.owner_user_id if call.owner_user_id == c.p.user_id else None
            team_id = call.team_id
        elif data.get("customer_uuid"):
            cust = self._parent(c, "customer", data["customer_uuid"])
            if cust.deleted_at is not None:
                return self._lost_to_delete(c, m, cust, fields, child=True)
            owner_id, team_id, customer_uuid = cust.owner_user_id, cust.team_id, cust.uuid
        else:  # a call with no customer: its author's
            owner_id, team_id = c.p.user_id, c.p.team_id
        if m.entity in ("note", "task") and data.get("call_log_uuid"):
            self._parent(c, "call_log", data["call_log_uuid"])
        now = utcnow()
        stamp = [1, c.client_id, c.p.user_id]
        rec = Record(entity=m.entity, uuid=m.entity_uuid, customer_uuid=customer_uuid,
                     call_log_uuid=data.get("call_log_uuid"), author_id=c.p.user_id,
                     owner_user_id=owner_id, team_id=team_id, version=1,
                     data=json.dumps(data, ensure_ascii=False),
                     field_versions=json.dumps({f: stamp for f in fields}),
                     deleted_at=data.get("deleted_at"), audio_available=False,
                     created_at=now, updated_at=now)
        c.s.add(rec)
        c.rows[rec.uuid] = rec
        self.feed.emit(c.s, rec, "delete" if rec.deleted_at else "upsert")
        return ResultOut(mutation_id=m.mutation_id, status="applied", version=1)

    def _parent(self, c: _Ctx, entity: str, uuid: str) -> Record:
        rec = c.rows.get(uuid)
        if rec is None:
            rec = c.s.execute(select(Record).where(Record.uuid == uuid)).scalar_one_or_none()
            if rec is not None:
                c.rows[uuid] = rec
        if rec is None or rec.entity != entity:
            raise Rejected("unknown_parent", f"There is no {entity} {uuid} on the server "
                           "(push it first).")
        if not can_see(c.p, rec):
            raise Rejected("forbidden", f"You may not add rows to this {entity}.")
        return rec

    def _update(self, c: _Ctx, m: MutationIn, spec: EntitySpec, rec: Record,
                data: dict[str, Any], fields: dict[str, Any]) -> ResultOut:
        new_owner: User | None = None
        if m.entity == "customer" and "owner" in fields and fields["owner"] != data["owner"]:
            new_owner = self._user_for_owner(c, fields["owner"], rec.owner_user_id)
            fields["owner"] = new_owner.username
        changed = {f: v for f, v in fields.items() if data.get(f) != v}
        if not changed:
            return ResultOut(mutation_id=m.mutation_id, status="applied", version=rec.version)
        fv: dict[str, list[Any]] = json.loads(rec.field_versions)
        clashes: list[tuple[str, Any, Any, int | None]] = []
        if not spec.insert_only:
            for f, v in changed.items():
                stamp = fv.get(f)
                if stamp and stamp[0] > m.base_version and stamp[1] != c.client_id:
                    clashes.append((f, v, data.get(f), stamp[2]))
        rec.version += 1
        for f, v in changed.items():
            data[f] = v
            fv[f] = [rec.version, c.client_id, c.p.user_id]
        rec.data = json.dumps(data, ensure_ascii=False)
        rec.field_versions = json.dumps(fv)
        rec.updated_at = utcnow()
        out = [self._keep(c, rec, f, winning=v, losing=old, loser=u, kind="field",
                          your=v, other=old, winner="yours")
               for f, v, old, u in clashes]
        if new_owner is not None:
            self.feed.reassign(c.s, rec, new_owner)
        else:
            self.feed.emit(c.s, rec, "upsert")
        return ResultOut(mutation_id=m.mutation_id, status="applied", version=rec.version,
                         conflicts=out)

    def _delete(self, c: _Ctx, m: MutationIn, rec: Record, data: dict[str, Any],
                deleted_at: str | None) -> ResultOut:
        if rec.deleted_at is not None:
            return ResultOut(mutation_id=m.mutation_id, status="applied", version=rec.version)
        fv: dict[str, list[Any]] = json.loads(rec.field_versions)
        out = [self._keep(c, rec, f, winning=None, losing=data.get(f), loser=stamp[2],
                          kind="delete", your=None, other=data.get(f), winner="yours")
               for f, stamp in fv.items()
               if f != "deleted_at" and stamp[0] > m.base_version and stamp[1] != c.client_id]
        when = deleted_at or utcnow()
        self._tombstone(c, rec, data, fv, when)
        if rec.entity == "customer":
            children = c.s.execute(
                select(Record).where(Record.customer_uuid == rec.uuid, Record.id != rec.id,
                                     Record.entity.in_(CASCADE_ON_CUSTOMER_DELETE),
                                     Record.deleted_at.is_(None)).order_by(Record.id)
            ).scalars().all()
            for child in children:
                self._tombstone(c, child, json.loads(child.data),
                                json.loads(child.field_versions), when)
        return ResultOut(mutation_id=m.mutation_id, status="applied", version=rec.version,
                         conflicts=out)

    def _tombstone(self, c: _Ctx, rec: Record, data: dict[str, Any],
                   fv: dict[str, list[Any]], when: str) -> None:
        rec.version += 1
        data["deleted_at"] = when
        fv["deleted_at"] = [rec.version, c.client_id, c.p.user_id]
        rec.data = json.dumps(data, ensure_ascii=False)
        rec.field_versions = json.dumps(fv)
        rec.deleted_at = when
        rec.updated_at = utcnow()
        self.feed.emit(c.s, rec, "delete")

    def _lost_to_delete(self, c: _Ctx, m: MutationIn, rec: Record, fields: dict[str, Any],
                        child: bool = False) -> ResultOut:
        """An edit (or a new child) reaching a deleted row: delete wins, the edit is kept."""
        deleter = json.loads(rec.field_versions).get("deleted_at", [0, "", None])[2]
        out = [self._keep(c, rec, f, winning=None, losing=v, loser=c.p.user_id, kind="delete",
                          your=v, other=None, winner="theirs", winner_user=deleter,
                          entity=m.entity if child else None, uuid=m.entity_uuid)
               for f, v in fields.items() if f != "deleted_at"]
        return ResultOut(mutation_id=m.mutation_id, status="conflict", version=None
                         if child else rec.version, conflicts=out)

    def _keep(self, c: _Ctx, rec: Record, field: str, *, winning: Any, losing: Any,
              loser: int | None, kind: str, your: Any, other: Any, winner: str,
              winner_user: int | None = None, entity: str | None = None,
              uuid: str | None = None) -> ConflictOut:
        row = Conflict(record_id=rec.id, entity=entity or rec.entity,
                       entity_uuid=uuid or rec.uuid, field=field,
                       winning_value=json.dumps(winning, ensure_ascii=False),
                       losing_value=json.dumps(losing, ensure_ascii=False),
                       winner_user_id=winner_user if winner == "theirs" else c.p.user_id,
                       loser_user_id=loser, kind=kind, created_at=utcnow())
        c.s.add(row)
        c.s.flush()
        return ConflictOut(field=field, your_value=your, other_value=other, winner=winner,
                           conflict_id=row.id)


