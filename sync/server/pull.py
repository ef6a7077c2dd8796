"""`/sync/pull`: pages of changes behind an opaque cursor, and the kept-conflicts list.

A first pull (cursor null) pages through a snapshot of the visible rows by id, then
continues with the change log from a point taken before the snapshot began, so nothing
committed meanwhile is missed (repeats are harmless upserts). On PostgreSQL the log is read
only below the oldest running transaction (`pg_snapshot_xmin`): sequence numbers are
handed out at insert time, not commit time, so a plain `seq > cursor` would skip a row
whose transaction commits after a later one.

Each change carries the row's *current* state, and is sent only if the row is visible to
the puller now: a row that moved away is announced by its later `remove` entry instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    Text,
    and_,
    case,
    cast,
    func,
    literal_column,
    not_,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from sync.server.auth import NO_NUL, Principal
from sync.server.db import ServerDatabase, utcnow
from sync.server.errors import ApiError, foreign_client_id
from sync.server.feed import PG_XMIN, audience_sql, visible_sql
from sync.server.models import ChangeLog, Client, Conflict, Record, ServerState, User
from sync.server.push import bind_client

log = logging.getLogger(__name__)

MAX_SEQ = 2**62


class PullIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    schema_version: int = Field(ge=0, le=2**31)
    cursor: str | None = Field(default=None, max_length=1024, pattern=NO_NUL)
    limit: int | None = Field(default=None, ge=1, le=5000)


class ChangeOut(BaseModel):
    entity: str
    uuid: str
    op: str
    version: int
    updated_at: str
    data: dict[str, Any]


class PullOut(BaseModel):
    changes: list[ChangeOut]
    next_cursor: str | None
    has_more: bool
    reset_required: bool
    last_mutation_id: int
    estimated_remaining: int | None
    server_time: str


class ConflictRow(BaseModel):
    id: int
    entity: str
    entity_uuid: str
    field: str
    winning_value: Any
    losing_value: Any
    winner_user: str | None
    loser_user: str | None
    kind: str
    created_at: str


class ConflictsOut(BaseModel):
    conflicts: list[ConflictRow]
    has_more: bool


@dataclass
class Cursor:
    instance: str
    mode: str  # "snap" | "log"
    t: int  # log position (txid, seq): changes strictly after it
    s: int
    after: int = 0  # snapshot: last record id sent
    total: int = 0  # snapshot: rows in it when it began (progress)
    done: int = 0

    def encode(self) -> str:
        raw = json.dumps({"v": 1, "i": self.instance, "m": self.mode, "t": self.t, "s": self.s,
                          "a": self.after, "n": self.total, "d": self.done},
                         separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if raw.get("v") != 1 or raw["m"] not in ("snap", "log"):
                raise ValueError("unknown cursor version")
            cur = cls(str(raw["i"]), raw["m"], int(raw["t"]), int(raw["s"]), int(raw["a"]),
                      int(raw["n"]), int(raw["d"]))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error,
                UnicodeDecodeError) as exc:
            raise ApiError(400, "invalid_cursor", "The cursor was not issued by this server "
                           "(or is damaged); pull with cursor null to start over.") from exc
        if min(cur.t, cur.s, cur.after, cur.total, cur.done) < 0 or \
                max(cur.t, cur.s, cur.after, cur.total, cur.done) > MAX_SEQ:
            raise ApiError(400, "invalid_cursor", "The cursor is out of range.")
        return cur


def _change_json(entity: str, uuid: str, op: str, version: int, updated_at: str,
                 data: str, audio: bool) -> str:
    """Serialise one change, embedding the stored JSON without re-parsing it."""
    if op == "remove":
        data = "{}"
    elif entity == "recording":
        parsed = json.loads(data)
        parsed["audio_available"] = bool(audio)
        data = json.dumps(parsed, ensure_ascii=False)
    head = json.dumps({"entity": entity, "uuid": uuid, "op": op, "version": version,
                       "updated_at": updated_at}, ensure_ascii=False)
    return head[:-1] + ',"data":' + data + "}"


def change_json_sql(is_postgres: bool) -> ColumnElement[str]:
    """One snapshot change (`_change_json` of an upsert) built by the database as text.

    Why in SQL: a first download sends every visible row once; building 400k small JSON
    objects in Python (row objects, `json.dumps` of each head) was most of the server's
    time per page, while SQLite's `json_object` and PostgreSQL's `json_build_object` do it
    in C, and the stored `data` is embedded as JSON without a Python round trip.
    """
    r = Record
    if is_postgres:
        data: ColumnElement[Any] = case(
            (r.entity == "recording",
             cast(cast(r.data, JSONB).op("||")(
                 func.jsonb_build_object(literal_column("'audio_available'"),
                                         r.audio_available)), JSON)),
            else_=cast(r.data, JSON))
        build = func.json_build_object
    else:
        data = case(
            (r.entity == "recording",
             func.json_set(r.data, literal_column("'$.audio_available'"),
                           func.json(case((r.audio_available, literal_column("'true'")),
                                          else_=literal_column("'false'"))))),
            else_=func.json(r.data))
        build = func.json_object
    doc = build(literal_column("'entity'"), r.entity, literal_column("'uuid'"), r.uuid,
                literal_column("'op'"), literal_column("'upsert'"),
                literal_column("'version'"), r.version,
                literal_column("'updated_at'"), r.updated_at, literal_column("'data'"), data)
    return cast(doc, Text) if is_postgres else doc


def _position(text: str | None) -> tuple[int, int]:
    """A stored log position `"txid:seq"` (the compaction horizon); (0, 0) when unset."""
    t, _, sq = (text or "0:0").partition(":")
    return int(t), int(sq or 0)


class PullService:
    def __init__(self, db: ServerDatabase, default_page: int, max_page: int) -> None:
        self.db = db
        self.default_page = default_page
        self.max_page = max_page
        self._log_sql_cache: dict[str, str] = {}
        self._first_sql_cache: dict[str, tuple[str, str, str]] = {}
        self._state_sql = db.sql(
            "SELECT c.user_id, c.last_mutation_id, "
            "(SELECT value FROM server_state WHERE key = 'instance_id'), "
            "(SELECT value FROM server_state WHERE key = 'horizon') "
            "FROM (SELECT 1 AS one) x LEFT JOIN clients c ON c.client_id = :cid")

    def _position_now(self, s: Session) -> tuple[int, int]:
        """A log position such that every change after it may not be in a snapshot read now."""
        if self.db.is_postgres:
            xmin = int(s.execute(select(literal_column(PG_XMIN))).scalar_one())
            return xmin - 1, MAX_SEQ
        return 0, int(s.execute(select(func.coalesce(func.max(ChangeLog.seq), 0))).scalar_one())

    def pull_now(self, p: Principal, body: PullIn) -> str | None:
        """An incremental page answered on the event loop (SQLite: a few indexed reads,
        cheaper than the hop to a worker thread, see `PushService.push_now`); None: call
        `pull` on a worker thread (PostgreSQL, a first download, a new client)."""
        if self.db.is_postgres or not body.cursor:
            return None
        cursor = Cursor.decode(body.cursor)
        if cursor.mode != "log":
            return None
        return self._log_round(p, body.client_id, cursor,
                               min(body.limit or self.default_page, self.max_page))

    def pull(self, p: Principal, body: PullIn) -> str:
        """The response body as JSON text (built by hand: pages can hold 5000 rows)."""
        limit = min(body.limit or self.default_page, self.max_page)
        cursor = Cursor.decode(body.cursor) if body.cursor else None
        if cursor is not None and cursor.mode == "log":
            page = self._log_round(p, body.client_id, cursor, limit)
            if page is not None:
                return page
        if cursor is None:
            first = self._first_page(p, body.client_id, limit)
            if first is not None:
                return first
        last_mutation_id = self._client(p, body.client_id)
        with self.db.read() as s:
            state = {str(k): str(v) for k, v in s.execute(
                select(ServerState.key, ServerState.value).where(
                    ServerState.key.in_(("instance_id", "horizon"))))}
            instance = state.get("instance_id", "")
            horizon = _position(state.get("horizon"))
            reset = cursor is not None and (
                cursor.instance != instance or (cursor.t, cursor.s) < horizon)
            if reset:
                log.info("client %s is behind the compaction horizon: reset", body.client_id)
                return self._envelope([], None, True, True, last_mutation_id, None)
            if cursor is None:
                t, sq = max(self._position_now(s), horizon)
                total = int(s.execute(select(func.count()).select_from(Record).where(
                    visible_sql(p), Record.deleted_at.is_(None))).scalar_one())
                cursor = Cursor(instance, "snap", t, sq, 0, total, 0)
            if cursor.mode == "snap":
                return self._snapshot_page(s, p, cursor, limit, last_mutation_id)
            return self._log_page(s, p, cursor, limit, last_mutation_id)

    def _client_state(self, c: Any, p: Principal, client_id: str
                      ) -> tuple[int, str | None, str | None] | None:
        """(last mutation id, instance id, horizon) of the principal's known client, read
        with the server state in one statement; None for a new client; 403 for a client
        id bound to another user."""
        c.execute(self._state_sql, {"cid": client_id})
        owner, last_mutation_id, instance, horizon_text = c.fetchone()
        if owner is None:
            return None
        if owner != p.user_id:
            raise foreign_client_id()
        return int(last_mutation_id), instance, horizon_text

    def _log_round(self, p: Principal, client_id: str, cur: Cursor, limit: int) -> str | None:
        """An incremental pull (the call every agent makes every few seconds) on driver-level
        statements: the client and server state in one read, then one indexed change-log
        read, which answers "nothing new since the cursor" from the audience index alone.
        None when the client is new (binding it is a write: the general path does it)."""
        with self.db.driver_read() as c:
            state = self._client_state(c, p, client_id)
            if state is None:
                return None
            last_mutation_id, instance, horizon_text = state
            if cur.instance != (instance or "") or (cur.t, cur.s) < _position(horizon_text):
                log.info("client %s is behind the compaction horizon: reset", client_id)
                return self._envelope([], None, True, True, int(last_mutation_id), None)
            sql, params = self._log_sql(p)
            c.execute(sql, params | {"t": cur.t, "s": cur.s, "n": limit + 1})
            rows = c.fetchall()
        page = rows[:limit]
        first: dict[str, int] = {}
        ops: dict[str, str] = {}
        for i, row in enumerate(page):
            first.setdefault(row[3], i)
            ops[row[3]] = row[2]
        changes = [_change_json(entity, uuid, ops[uuid], version, updated_at, data, audio)
                   for i, (_t, _s, _op, uuid, entity, version, updated_at, data, audio)
                   in enumerate(page) if first[uuid] == i]
        nxt = Cursor(cur.instance, "log", int(page[-1][0]), int(page[-1][1])) if page else cur
        more = len(rows) > limit
        return self._envelope(changes, nxt.encode(), more, False, int(last_mutation_id),
                              None if more else 0)

    def _first_page(self, p: Principal, client_id: str, limit: int) -> str | None:
        """A first pull (cursor null) of a known client on driver-level statements: every
        new install makes one, and 500 agents' first rounds all fall in the same seconds.

        Why: the general path bound the client through the ORM (an ORM read even when the
        push had bound it already), then ran the state, position, count and page reads in
        an ORM session: ~5 ms of server CPU per first round against ~2.6 ms for a whole
        steady round. Here it is one transaction of three statements (client + state,
        position + count, page), the same rows, cursor and authorization as the general
        path (`pull` + `_snapshot_page`). The page keeps `SET LOCAL enable_sort = off`
        (see `snapshot_rows`: the right plan even without table statistics), which is
        why this runs in a transaction rather than in autocommit. None when the client is
        new (binding it is a write: the general path does it).
        """
        shape, params = self._shape(p)
        plan_sql, count_sql, page_sql = self._first_sql(shape)
        with self.db.driver_transaction() as c:
            state = self._client_state(c, p, client_id)
            if state is None:
                return None
            last_mutation_id, instance, horizon_text = state
            if self.db.is_postgres:
                c.execute(plan_sql)
            c.execute(count_sql, params)
            position, total = c.fetchone()
            t, sq = (int(position) - 1, MAX_SEQ) if self.db.is_postgres else (0, int(position))
            t, sq = max((t, sq), _position(horizon_text))
            c.execute(page_sql, params | {"after": 0, "n": limit + 1})
            rows = [(int(i), str(doc)) for i, doc in c.fetchall()]
        cursor = Cursor(instance or "", "snap", t, sq, 0, int(total), 0)
        return self._snapshot_envelope(rows, cursor, limit, int(last_mutation_id))

    def _shape(self, p: Principal) -> tuple[str, dict[str, int | None]]:
        """The principal's visibility shape (one SQL text each) and its parameters."""
        if p.role == "admin":
            return "admin", {}
        if p.role == "team_lead" and p.team_id is not None:
            return "lead", {"uid": p.user_id, "tid": p.team_id}
        return "agent", {"uid": p.user_id}

    def _first_sql(self, shape: str) -> tuple[str, str, str]:
        """`_first_page`'s statements for one shape (cached): the plan setting, the log
        position with the snapshot's row count, and the page (`snapshot_statement`'s
        visibility and document, as driver SQL)."""
        key = "first:" + shape
        cached = self._first_sql_cache.get(key)
        if cached is not None:
            return cached
        # `visible_sql` (the index-friendly form: NULL never matches, as there).
        visible = {"admin": "1 = 1", "agent": "records.owner_user_id = :uid",
                   "lead": "(records.owner_user_id = :uid OR records.team_id = :tid)"}[shape]
        where = f"{visible} AND records.deleted_at IS NULL"
        doc = str(change_json_sql(self.db.is_postgres).compile(
            dialect=self.db.engine.dialect, compile_kwargs={"literal_binds": True}))
        position = PG_XMIN if self.db.is_postgres else \
            "(SELECT coalesce(max(seq), 0) FROM change_log)"
        out = (self.db.sql("SET LOCAL enable_sort = off"),
               self.db.sql(f"SELECT {position}, (SELECT count(*) FROM records WHERE {where})"),
               self.db.sql(f"SELECT records.id, {doc} FROM records WHERE {where} "
                           "AND records.id > :after ORDER BY records.id LIMIT :n"))
        self._first_sql_cache[key] = out
        return out

    def _log_sql(self, p: Principal) -> tuple[str, dict[str, int | None]]:
        """`_log_page`'s statement as driver SQL, one text per role shape (cached)."""
        shape, params = self._shape(p)
        sql = self._log_sql_cache.get(shape)
        if sql is None:
            # Null-safe visibility (never NULL, so NOT of it holds for an unowned row).
            mine = "(r.owner_user_id IS NOT NULL AND r.owner_user_id = :uid)"
            if shape == "admin":
                where = "cl.op <> 'remove'"
            else:
                audience, visible = "cl.audience_user_id = :uid", mine
                if shape == "lead":
                    audience = f"({audience} OR cl.audience_team_id = :tid)"
                    visible = f"({mine} OR (r.team_id IS NOT NULL AND r.team_id = :tid))"
                where = (f"{audience} AND ((cl.op = 'remove' AND NOT {visible}) OR "
                         f"(cl.op <> 'remove' AND {visible}))")
            if self.db.is_postgres:
                where += f" AND cl.txid < {PG_XMIN}"
            sql = self.db.sql(
                "SELECT cl.txid, cl.seq, cl.op, r.uuid, r.entity, r.version, r.updated_at, "
                "r.data, r.audio_available FROM change_log cl JOIN records r ON "
                f"r.id = cl.record_id WHERE (cl.txid, cl.seq) > (:t, :s) AND {where} "
                "ORDER BY cl.txid, cl.seq LIMIT :n")
            self._log_sql_cache[shape] = sql
        return sql, params

    def _client(self, p: Principal, client_id: str) -> int:
        """Bind a new client_id to the user (403 if it is someone else's)."""
        with self.db.read() as s:
            client = s.execute(select(Client).where(Client.client_id == client_id)
                               ).scalar_one_or_none()
        if client is None:
            return self.db.run_write(
                lambda s: bind_client(s, p, client_id, lock=False).last_mutation_id)
        if client.user_id != p.user_id:
            raise foreign_client_id()
        return client.last_mutation_id

    def snapshot_statement(self, p: Principal, after: int, limit: int) -> Select[int, str]:
        """One snapshot page: the next `limit` visible rows after record id `after`."""
        return (select(Record.id, change_json_sql(self.db.is_postgres))
                .where(visible_sql(p), Record.deleted_at.is_(None), Record.id > after)
                .order_by(Record.id).limit(limit))

    def snapshot_rows(self, s: Session, p: Principal, after: int, limit: int
                      ) -> list[tuple[int, str]]:
        """`snapshot_statement`'s rows, read in id order from an index on PostgreSQL.

        Why: right after customers are bulk-loaded or reassigned (the moment a first
        download is likely) the table has no fresh statistics; the planner then expects a
        handful of visible rows and picks a bitmap scan of *every* visible row after the
        cursor plus a sort, so each page costs as much as all the pages after it (measured
        at 100k customers before autovacuum's ANALYZE: 150-380 ms a page instead of ~30 ms,
        and the 80 pages took 43 s). An ordered index scan that stops after `limit` rows is
        the right plan whatever the statistics say. `enable_sort = off` only penalises
        sorts (one still runs if no index gives the order), so the answer never changes;
        `SET LOCAL` ends with the read session's transaction (`ServerDatabase.read`: ORM
        reads run in one), on the session's own connection: a second connection per page
        made every first download hold two of the pool's connections.
        """
        stmt = self.snapshot_statement(p, after, limit)
        if self.db.is_postgres:
            s.execute(text("SET LOCAL enable_sort = off"))
        return [(int(i), str(doc)) for i, doc in s.execute(stmt)]

    def _snapshot_page(self, s: Session, p: Principal, cur: Cursor, limit: int,
                       last_mutation_id: int) -> str:
        rows = self.snapshot_rows(s, p, cur.after, limit + 1)
        return self._snapshot_envelope(rows, cur, limit, last_mutation_id)

    def _snapshot_envelope(self, rows: list[tuple[int, str]], cur: Cursor, limit: int,
                           last_mutation_id: int) -> str:
        """A snapshot page's answer from up to `limit + 1` rows after `cur.after`."""
        page = rows[:limit]
        changes = [doc for _id, doc in page]
        done = cur.done + len(page)
        if len(rows) > limit:
            nxt = Cursor(cur.instance, "snap", cur.t, cur.s, page[-1][0], cur.total, done)
        else:  # snapshot finished: continue with the log from before it began
            nxt = Cursor(cur.instance, "log", cur.t, cur.s)
        remaining = max(cur.total - done, 0)
        return self._envelope(changes, nxt.encode(), True, False, last_mutation_id, remaining)

    def _log_page(self, s: Session, p: Principal, cur: Cursor, limit: int,
                  last_mutation_id: int) -> str:
        r = Record
        visible_now = visible_sql(p, null_safe=True)
        conds = [
            tuple_(ChangeLog.txid, ChangeLog.seq) > tuple_(cur.t, cur.s),
            audience_sql(p),
            or_(and_(ChangeLog.op == "remove", not_(visible_now)),
                and_(ChangeLog.op != "remove", visible_now)),
        ]
        if self.db.is_postgres:
            conds.append(ChangeLog.txid < select(literal_column(PG_XMIN)).scalar_subquery())
        rows = s.execute(
            select(ChangeLog.txid, ChangeLog.seq, ChangeLog.op, r.entity, r.uuid, r.version,
                   r.updated_at, r.data, r.audio_available)
            .join(r, r.id == ChangeLog.record_id).where(*conds)
            .order_by(ChangeLog.txid, ChangeLog.seq).limit(limit + 1)).all()
        page = rows[:limit]
        # One entry per row: at its first position (parents stay before children), with
        # the last op (current state).
        first: dict[str, int] = {}
        ops: dict[str, str] = {}
        for i, row in enumerate(page):
            first.setdefault(row.uuid, i)
            ops[row.uuid] = row.op
        changes = [_change_json(row.entity, row.uuid, ops[row.uuid], row.version,
                                row.updated_at, row.data, row.audio_available)
                   for i, row in enumerate(page) if first[row.uuid] == i]
        nxt = Cursor(cur.instance, "log", int(page[-1].txid), int(page[-1].seq)) if page else cur
        return self._envelope(changes, nxt.encode(), len(rows) > limit, False,
                              last_mutation_id, None if len(rows) > limit else 0)

    def _envelope(self, changes: list[str], next_cursor: str | None, has_more: bool,
                  reset: bool, last_mutation_id: int, remaining: int | None) -> str:
        tail = json.dumps({"next_cursor": next_cursor, "has_more": has_more,
                           "reset_required": reset, "last_mutation_id": last_mutation_id,
                           "estimated_remaining": remaining, "server_time": utcnow()})
        return '{"changes":[' + ",".join(changes) + "]," + tail[1:]

    def conflicts(self, p: Principal, after_id: int, limit: int) -> ConflictsOut:
        with self.db.read() as s:
            rows = s.execute(
                select(Conflict).join(Record, Record.id == Conflict.record_id)
                .where(visible_sql(p), Conflict.id > after_id)
                .order_by(Conflict.id).limit(limit + 1)).scalars().all()
            ids = {u for c in rows for u in (c.winner_user_id, c.loser_user_id) if u}
            names = {int(i): str(n) for i, n in s.execute(
                select(User.id, User.username).where(User.id.in_(ids)))} if ids else {}
        out = [ConflictRow(id=c.id, entity=c.entity, entity_uuid=c.entity_uuid, field=c.field,
                           winning_value=json.loads(c.winning_value),
                           losing_value=json.loads(c.losing_value),
                           winner_user=names.get(c.winner_user_id or 0),
                           loser_user=names.get(c.loser_user_id or 0), kind=c.kind,
                           created_at=c.created_at) for c in rows[:limit]]
        return ConflictsOut(conflicts=out, has_more=len(rows) > limit)
