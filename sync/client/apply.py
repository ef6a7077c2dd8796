"""Apply pulled server changes to the local store (inside the caller's transaction).

Rules (ARCHITECTURE.md §6):
- Rows are found by `uuid`; parent foreign keys travel as `customer_uuid`/`call_log_uuid`
  and are mapped back to local integer ids here.
- A field with a local change still waiting in the outbox is not overwritten: that local
  value reaches the server later and, the server being last-writer-wins in arrival order,
  becomes everyone's value. Overwriting it here would flicker the agent's edit away.
- `delete` is a tombstone (row hidden via `deleted_at`); `remove` means the row is no
  longer visible to this agent (reassigned away) and is deleted locally with its children.
- Every touched row gets `updated_at = now`, which lets a reset find rows the server no
  longer sent (see `SyncClient._finish_reset`).
Unknown entities or rows whose parent is missing are not applied; they are counted and
logged with detail, never silently dropped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from agent_desktop.phones import reverse_digits
from agent_desktop.search import name_key_of
from agent_desktop.store.models import (
    Customer,
    Outbox,
    PhoneNumber,
    Recording,
    SyncedMixin,
    utcnow,
)
from agent_desktop.store.outbox import ENTITIES, LOCAL_ONLY, PARENT_FKS

log = logging.getLogger(__name__)

WIRE_FKS: dict[str, tuple[str, type[SyncedMixin]]] = {
    wire: (column, model) for column, (wire, model) in PARENT_FKS.items()
}
OPS = ("upsert", "delete", "remove")


class ChangeFormatError(ValueError):
    """A change from the server that does not have the documented shape."""


@dataclass(frozen=True)
class Change:
    entity: str
    uuid: str
    op: str
    version: int
    fields: dict[str, Any]


@dataclass
class ApplyResult:
    applied: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)


def parse_change(raw: Any) -> Change:
    """Validate one wire change (see docs/sync-protocol.md) into a `Change`."""
    if not isinstance(raw, dict):
        raise ChangeFormatError(f"change is not an object: {raw!r:.80}")
    entity, uid, op = raw.get("entity"), raw.get("uuid"), raw.get("op", "upsert")
    version = raw.get("version", raw.get("server_version", 0))
    fields = raw.get("fields", raw.get("data", {})) or {}
    if not isinstance(entity, str) or not isinstance(uid, str) or not uid:
        raise ChangeFormatError(f"change without entity/uuid: {raw!r:.120}")
    if op not in OPS:
        raise ChangeFormatError(f"change with unknown op {op!r} for {entity} {uid}")
    if not isinstance(version, int) or not isinstance(fields, dict):
        raise ChangeFormatError(f"change with bad version/fields for {entity} {uid}")
    return Change(entity, uid, op, version, fields)


def pending_fields(session: Session, uuids: set[str]) -> dict[str, set[str]]:
    """Wire field names with a local change not yet acknowledged, by entity uuid."""
    out: dict[str, set[str]] = {}
    if not uuids:
        return out
    ids = list(uuids)
    for i in range(0, len(ids), 500):
        rows = session.execute(
            select(Outbox.entity_uuid, Outbox.op, Outbox.changed_fields)
            .where(Outbox.entity_uuid.in_(ids[i:i + 500]))
        )
        for uid, op, changed in rows:
            names = out.setdefault(uid, set())
            try:
                names.update(json.loads(changed or "{}").keys())
            except ValueError:
                log.error("outbox row for %s has unreadable changed_fields", uid)
            if op == "delete":
                names.add("deleted_at")
    return out


def _name_key(name: str | None) -> str:
    """The search index's key (its triggers also maintain it; both must agree)."""
    return name_key_of(name or "")


def _derive(obj: SyncedMixin) -> None:
    """Recompute local-only derived columns the server does not send."""
    if isinstance(obj, Customer):
        obj.name_key = _name_key(obj.name)
    elif isinstance(obj, PhoneNumber):
        obj.rev_digits = reverse_digits(obj.e164 or obj.raw or "")


def _local_values(session: Session, model: type[SyncedMixin], change: Change,
                  keep: set[str], parents: dict[str, SyncedMixin]
                  ) -> tuple[dict[str, Any], str | None]:
    """Wire fields → column values; returns (values, problem).

    `parents` holds rows of this page by uuid, so a child can point at a parent that
    arrived earlier in the same page (flushed only when its id is needed).
    """
    columns = {a.key for a in model.__mapper__.column_attrs}  # type: ignore[attr-defined]
    values: dict[str, Any] = {}
    for name, value in change.fields.items():
        if name in keep:
            continue
        if name in WIRE_FKS:
            column, parent_model = WIRE_FKS[name]
            if column not in columns:
                continue
            if value is None:
                values[column] = None
                continue
            parent = parents.get(value)
            if parent is not None and isinstance(parent, parent_model):
                if parent.id is None:  # type: ignore[attr-defined]
                    session.flush()
                parent_id = parent.id  # type: ignore[attr-defined]
            else:
                parent_id = session.scalar(select(parent_model.id)  # type: ignore[attr-defined]
                                           .where(parent_model.uuid == value))
            if parent_id is None:
                return {}, f"{change.entity} {change.uuid}: parent {name}={value} not present"
            values[column] = parent_id
        elif name in columns and name not in LOCAL_ONLY:
            values[name] = value
    return values, None


# Parents before children, so a child's parent id is known when it is inserted.
INSERT_ORDER = ("customer", "call_log", "phone", "tag", "note", "task", "recording")


def _parent_ids(session: Session, needed: dict[type[SyncedMixin], set[str]],
                ids: dict[str, int]) -> None:
    for parent_model, uuids in needed.items():
        todo = [u for u in uuids if u not in ids]
        for i in range(0, len(todo), 500):
            rows = session.execute(select(parent_model.id,  # type: ignore[attr-defined]
                                          parent_model.uuid)
                                   .where(parent_model.uuid.in_(todo[i:i + 500])))
            ids.update({u: pid for pid, u in rows})


def _insert_new(session: Session, new: list[Change], result: ApplyResult, now: str) -> None:
    """Rows not yet in the local store, inserted with Core executemany, parents first.

    Why not the ORM: its unit of work costs ~0.7 ms per row here, so a first download of
    100k customers would spend over a minute just building objects.
    """
    groups: dict[str, list[Change]] = {}
    for c in new:
        groups.setdefault(c.entity, []).append(c)
    ids: dict[str, int] = {}
    for entity in sorted(groups, key=lambda e: INSERT_ORDER.index(e)
                         if e in INSERT_ORDER else len(INSERT_ORDER)):
        model = ENTITIES[entity]
        table = model.__table__  # type: ignore[attr-defined]
        columns = {c.key for c in table.columns}
        needed: dict[type[SyncedMixin], set[str]] = {}
        for c in groups[entity]:
            for wire, (column, parent_model) in WIRE_FKS.items():
                if column in columns and isinstance(c.fields.get(wire), str):
                    needed.setdefault(parent_model, set()).add(c.fields[wire])
        _parent_ids(session, needed, ids)
        batches: dict[frozenset[str], list[dict[str, Any]]] = {}
        for c in groups[entity]:
            row: dict[str, Any] = {}
            problem = None
            for name, value in c.fields.items():
                if name in WIRE_FKS:
                    column = WIRE_FKS[name][0]
                    if column not in columns:
                        continue
                    if value is None:
                        row[column] = None
                    elif value in ids:
                        row[column] = ids[value]
                    else:
                        problem = f"{entity} {c.uuid}: parent {name}={value} not present"
                        break
                elif name in columns and name not in LOCAL_ONLY:
                    row[name] = value
            if problem is not None:
                log.error("pull: %s; not applied", problem)
                result.skipped.append(problem)
                continue
            row.update(uuid=c.uuid, server_version=c.version, updated_at=now)
            if entity == "customer":
                row["name_key"] = _name_key(row.get("name"))
            elif entity == "phone":
                row["rev_digits"] = reverse_digits(row.get("e164") or row.get("raw") or "")
            elif entity == "recording" and c.fields.get("audio_available") is True:
                row["upload_state"] = "done"
                row["upload_offset"] = row.get("size_bytes", 0)
            batches.setdefault(frozenset(row), []).append(row)
        inserted: list[str] = []
        for rows in batches.values():
            session.execute(insert(table), rows)
            inserted.extend(r["uuid"] for r in rows)
            result.applied += len(rows)
        if entity in ("customer", "call_log"):
            _parent_ids(session, {model: set(inserted)}, ids)


def apply_changes(session: Session, changes: list[Change]) -> ApplyResult:
    """Apply one page; the caller commits it together with the page's cursor.

    New rows go in first (bulk, parents before children), then updates, tombstones and
    removals of existing rows in server order through the ORM.
    """
    result = ApplyResult()
    pending = pending_fields(session, {c.uuid for c in changes})
    now = utcnow()
    by_uuid: dict[str, SyncedMixin] = {}
    wanted: dict[str, list[str]] = {}
    for c in changes:
        wanted.setdefault(c.entity, []).append(c.uuid)
    for entity, uuids in wanted.items():
        model = ENTITIES.get(entity)
        if model is None:
            continue
        for i in range(0, len(uuids), 500):
            for found in session.scalars(select(model).where(model.uuid.in_(uuids[i:i + 500]))):
                by_uuid[found.uuid] = found
    new = [c for c in changes if c.op == "upsert" and c.entity in ENTITIES
           and not isinstance(by_uuid.get(c.uuid), ENTITIES[c.entity])]
    with session.no_autoflush:
        _insert_new(session, new, result, now)
        fresh = {c.uuid for c in new}
        for change in changes:
            if change.uuid in fresh:
                continue
            model = ENTITIES.get(change.entity)
            if model is None:
                msg = f"unknown entity {change.entity!r} ({change.uuid})"
                log.error("pull: %s not applied", msg)
                result.skipped.append(msg)
                continue
            obj = by_uuid.get(change.uuid)
            if obj is not None and not isinstance(obj, model):
                obj = None
            if change.op == "remove":
                if obj is not None:
                    session.delete(obj)
                    session.flush()
                    del by_uuid[change.uuid]
                    result.removed += 1
                continue
            keep = pending.get(change.uuid, set())
            if change.op == "delete":
                if obj is not None:
                    if "deleted_at" not in keep:
                        obj.deleted_at = change.fields.get("deleted_at") or now
                    obj.server_version = change.version
                    obj.updated_at = now
                    result.applied += 1
                continue
            values, problem = _local_values(session, model, change, keep, by_uuid)
            if problem is not None:
                log.error("pull: %s; not applied", problem)
                result.skipped.append(problem)
                continue
            if obj is None:
                obj = model(uuid=change.uuid, **values)  # type: ignore[call-arg]
                session.add(obj)
                by_uuid[change.uuid] = obj
            else:
                for name, value in values.items():
                    setattr(obj, name, value)
            obj.server_version = change.version
            obj.updated_at = now
            _derive(obj)
            if isinstance(obj, Recording) and change.fields.get("audio_available") is True:
                # The server verified the whole file's sha256: nothing left to upload.
                obj.upload_state = "done"
                obj.upload_offset = obj.size_bytes
            result.applied += 1
        session.flush()
    return result
