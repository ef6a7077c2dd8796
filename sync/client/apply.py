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

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_desktop.phones import reverse_digits
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


def _derive(obj: SyncedMixin) -> None:
    """Recompute local-only derived columns the server does not send."""
    if isinstance(obj, Customer):
        obj.name_key = (obj.name or "").casefold()
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


def apply_changes(session: Session, changes: list[Change]) -> ApplyResult:
    """Apply one page in order; the caller commits it together with the page's cursor."""
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
    with session.no_autoflush:
        for change in changes:
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
