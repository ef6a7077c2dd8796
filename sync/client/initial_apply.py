"""Initial-download fast path for one pulled page: plain tuples into SQLite, no lookups.

Why: the general `apply_changes` looks every row up (ORM objects by uuid), reads pending
outbox fields, builds a `Change` per row and lets SQLAlchemy turn dicts into parameters.
During a first download almost every row is new, so all of that is wasted work: at 100k
customers (≈400k rows) it was most of the client's time. Here each page is validated and
written with one `executemany` of plain tuples per table, with local ids assigned in
Python (the write transaction serialises writers, so `max(id) + 1…` cannot collide) so
children find their parent's id without a query.

Safety: the page is attempted inside a SAVEPOINT. Anything unusual — a row that already
exists locally (its uuid is UNIQUE: e.g. a customer created here, pushed, and now sent
back by the snapshot), a parent that is neither in the page nor in the database, an op
other than upsert, a value SQLite cannot store, a malformed change — rolls the savepoint
back and returns None; the caller then applies the page through the general path, which
reports problems with detail. So the fast path never changes what a page means, only how
fast the common case is written.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Column
from sqlalchemy.orm import Session

from agent_desktop.phones import reverse_digits
from agent_desktop.search import name_key_of
from agent_desktop.store.outbox import ENTITIES, LOCAL_ONLY
from sync.client.apply import INSERT_ORDER, WIRE_FKS, ApplyResult

log = logging.getLogger(__name__)

_SAVEPOINT = "initial_page"
_CHUNK = 500  # parameters per IN (...) lookup, well under SQLite's variable limit
_MISSING = object()
# Entities whose rows other rows point at (by wire field → local column).
_PARENT_ENTITY = {"customer_uuid": "customer", "call_log_uuid": "call_log"}


@dataclass(frozen=True)
class _Plan:
    """How rows of one entity with one set of wire keys become a parameter tuple."""

    sql: str
    plain: Callable[[dict[str, Any]], tuple[Any, ...]]  # wire values, in column order
    fks: tuple[tuple[str, str], ...]  # (wire field, parent entity)
    defaults: tuple[Any, ...]  # scalar defaults of columns the wire did not send
    calls: tuple[Callable[[], Any], ...]  # callable defaults, called per row


_plans: dict[tuple[str, frozenset[str]], _Plan] = {}


def _default_of(col: Column[Any]) -> tuple[bool, Any]:
    """(is_callable, value) of a column's Python-side default, as Core inserts apply it."""
    default = col.default
    if default is None:
        return False, None
    if getattr(default, "is_scalar", False):
        return False, default.arg  # type: ignore[attr-defined]
    fn = default.arg  # type: ignore[attr-defined]
    return True, (lambda fn=fn: fn(None))


def _getter(keys: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A tuple of `keys`' values, whatever their number (itemgetter gives a bare value
    for one key)."""
    if len(keys) >= 2:
        return itemgetter(*keys)
    if keys:
        key = keys[0]
        return lambda data: (data[key],)
    return lambda _data: ()


def _derive_customer(data: dict[str, Any]) -> tuple[Any, ...]:
    return (name_key_of(data.get("name") or ""),)


def _derive_phone(data: dict[str, Any]) -> tuple[Any, ...]:
    return (reverse_digits(data.get("e164") or data.get("raw") or ""),)


def _derive_recording(data: dict[str, Any]) -> tuple[Any, ...]:
    if data.get("audio_available") is True:  # verified on the server: no upload
        return ("done", data.get("size_bytes", 0))
    return ("pending", 0)


# Local columns computed from the wire values, in the order `_plan` lists them.
_DERIVE: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = {
    "customer": _derive_customer, "phone": _derive_phone, "recording": _derive_recording}


def _plan(entity: str, keys: frozenset[str]) -> _Plan:
    cached = _plans.get((entity, keys))
    if cached is not None:
        return cached
    table = ENTITIES[entity].__table__  # type: ignore[attr-defined]
    columns = {c.key: c for c in table.columns}
    plain = sorted(k for k in keys if k in columns and k not in LOCAL_ONLY
                   and k not in WIRE_FKS)
    fks = tuple(sorted((wire, _PARENT_ENTITY[wire]) for wire in keys & WIRE_FKS.keys()
                       if WIRE_FKS[wire][0] in columns))
    fk_cols = [WIRE_FKS[wire][0] for wire, _ in fks]
    derived = {"customer": ["name_key"], "phone": ["rev_digits"],
               "recording": ["upload_state", "upload_offset"]}.get(entity, [])
    given = {"id", "uuid", "server_version", "updated_at", *plain, *fk_cols, *derived}
    scalar_cols: list[str] = []
    scalars: list[Any] = []
    call_cols: list[str] = []
    calls: list[Callable[[], Any]] = []
    for name, col in columns.items():
        if name in given or col.default is None:
            continue  # no Python default: the column's NULL / server default applies
        is_call, value = _default_of(col)
        (call_cols if is_call else scalar_cols).append(name)
        (calls if is_call else scalars).append(value)
    order = ["id", "uuid", "server_version", "updated_at", *plain, *fk_cols, *derived,
             *scalar_cols, *call_cols]
    sql = (f'INSERT INTO "{table.name}" (' + ", ".join(f'"{c}"' for c in order)
           + ") VALUES (" + ", ".join("?" * len(order)) + ")")
    plan = _Plan(sql, _getter(plain), fks, tuple(scalars), tuple(calls))
    _plans[(entity, keys)] = plan
    return plan


class _NotFresh(Exception):
    """This page needs the general path (see the module docstring)."""


def _bucket(changes: Sequence[Any]) -> dict[str, list[tuple[str, int, dict[str, Any]]]]:
    """Validate the page's shape and group its rows by entity; raises `_NotFresh` for
    anything but well-formed upserts of known entities."""
    groups: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
    for raw in changes:
        if type(raw) is not dict:
            raise _NotFresh
        uid = raw.get("uuid")
        # The same defaults as `parse_change` (the wire names `data`/`version`, older
        # `fields`/`server_version`), without evaluating both spellings for every row.
        data = (raw["fields"] if "fields" in raw else raw.get("data")) or {}
        version = raw["version"] if "version" in raw else raw.get("server_version", 0)
        if (type(uid) is not str or not uid or type(data) is not dict
                or type(version) is not int or raw.get("op", "upsert") != "upsert"):
            raise _NotFresh
        entity = raw.get("entity")
        bucket = groups.get(entity)  # type: ignore[arg-type]
        if bucket is None:
            if entity not in ENTITIES:
                raise _NotFresh
            bucket = groups[entity] = []
        bucket.append((uid, version, data))
    return groups


def _lookup_parents(raw: sqlite3.Connection, entity: str, uuids: set[str],
                    ids: dict[str, int]) -> None:
    table = ENTITIES[entity].__table__.name  # type: ignore[attr-defined]
    todo = list(uuids)
    for i in range(0, len(todo), _CHUNK):
        part = todo[i:i + _CHUNK]
        marks = ", ".join("?" * len(part))
        ids.update(raw.execute(f'SELECT uuid, id FROM "{table}" WHERE uuid IN ({marks})',
                               part).fetchall())


def _rows(entity: str, items: list[tuple[str, int, dict[str, Any]]], first_id: int,
          now: str, parent_ids: dict[str, dict[str, int]]
          ) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, int]]:
    """Parameter tuples by INSERT statement, and the local id given to each uuid."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    given: dict[str, int] = {}
    next_id = first_id
    # Per page, plans by the wire's key order: a tuple of keys hashes faster than the
    # frozenset the global cache is keyed by (rows of one entity share their key order).
    plans: dict[tuple[str, ...], tuple[_Plan, list[tuple[Any, ...]]]] = {}
    derive = _DERIVE.get(entity)
    for uid, version, data in items:
        keys = tuple(data)
        found = plans.get(keys)
        if found is None:
            plan = _plan(entity, frozenset(keys))
            found = plans[keys] = (plan, out.setdefault(plan.sql, []))
        plan, rows = found
        row = (next_id, uid, version, now, *plan.plain(data))
        if plan.fks:
            ids: list[int | None] = []
            for wire, parent in plan.fks:
                value = data[wire]
                if value is None:
                    ids.append(None)
                    continue
                pid = parent_ids[parent].get(value) if type(value) is str else None
                if pid is None:
                    raise _NotFresh
                ids.append(pid)
            row += tuple(ids)
        if derive is not None:
            row += derive(data)
        row += plan.defaults
        if plan.calls:
            row += tuple(call() for call in plan.calls)
        rows.append(row)
        given[uid] = next_id
        next_id += 1
    return out, given


def _insert(raw: sqlite3.Connection, groups: dict[str, list[tuple[str, int, dict[str, Any]]]],
            now: str) -> int:
    parent_ids: dict[str, dict[str, int]] = {"customer": {}, "call_log": {}}
    inserted = 0
    order = sorted(groups, key=INSERT_ORDER.index)
    for entity in order:
        items = groups[entity]
        table = ENTITIES[entity].__table__.name  # type: ignore[attr-defined]
        plan_fks = {(w, p) for keys in {frozenset(d) for _u, _v, d in items}
                    for w, p in _plan(entity, keys).fks}
        for wire, parent in plan_fks:
            known = parent_ids[parent]
            wanted = {d[wire] for _u, _v, d in items
                      if type(d.get(wire)) is str and d[wire] not in known}
            if wanted:
                _lookup_parents(raw, parent, wanted, known)
        top = raw.execute(f'SELECT coalesce(max(id), 0) FROM "{table}"').fetchone()[0]
        statements, given = _rows(entity, items, int(top) + 1, now, parent_ids)
        for sql, rows in statements.items():
            raw.executemany(sql, rows)
        inserted += len(given)
        if entity in parent_ids:
            parent_ids[entity].update(given)
    return inserted


def apply_initial_page(session: Session, changes: Sequence[Any], now: str
                       ) -> ApplyResult | None:
    """Insert a page of new rows in the caller's transaction; None → use `apply_changes`.

    `changes` are the page's raw wire dicts (not yet parsed). The caller commits the page
    together with its cursor, as for the general path.
    """
    if not changes:
        return ApplyResult()
    try:
        groups = _bucket(changes)
    except _NotFresh:
        return None
    raw = session.connection().connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection):
        return None
    # Python's sqlite3 (legacy transaction mode) opens the transaction at the first DML;
    # a SAVEPOINT issued outside one would become the outermost transaction and its
    # RELEASE would commit the page without its cursor. A no-op UPDATE opens it first.
    raw.execute("UPDATE sync_state SET value = value WHERE 0")
    if not raw.in_transaction:
        log.error("initial download: no open transaction; using the general path")
        return None
    raw.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        inserted = _insert(raw, groups, now)
    except (_NotFresh, sqlite3.IntegrityError, sqlite3.InterfaceError,
            sqlite3.ProgrammingError, OverflowError, TypeError, AttributeError) as exc:
        # (the last two: a value of the wrong type reached name_key/rev_digits)
        raw.execute(f"ROLLBACK TO {_SAVEPOINT}")
        raw.execute(f"RELEASE {_SAVEPOINT}")
        log.info("initial download: page of %d needs the general path (%s)", len(changes),
                 type(exc).__name__ if not isinstance(exc, _NotFresh) else "not all new")
        return None
    raw.execute(f"RELEASE {_SAVEPOINT}")
    return ApplyResult(applied=inserted)
