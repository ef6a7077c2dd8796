"""Outbox capture: every local ORM change to a synced row appends an Outbox row in the same
flush, hence the same transaction (ARCHITECTURE.md §6). Doing it in an `after_flush` hook
means no write path (UI edit, import, wrap-up) can forget it.

Rows applied from the server are written with `session.info[REMOTE] = True` and produce
no outbox entries.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session

from agent_desktop.store.models import (
    SCHEMA_VERSION,
    CallLog,
    Customer,
    Note,
    Outbox,
    PhoneNumber,
    Recording,
    SyncedMixin,
    Tag,
    Task,
    utcnow,
)

REMOTE = "applying_remote"

# entity name on the wire → model; foreign keys travel as the parent's uuid.
ENTITIES: dict[str, type[SyncedMixin]] = {
    "customer": Customer,
    "phone": PhoneNumber,
    "tag": Tag,
    "note": Note,
    "task": Task,
    "call_log": CallLog,
    "recording": Recording,
}
ENTITY_OF: dict[type, str] = {v: k for k, v in ENTITIES.items()}

# Columns that never travel: local keys, sync bookkeeping, local-only upload progress.
LOCAL_ONLY = {"id", "uuid", "server_version", "updated_at", "upload_state", "upload_offset",
              "name_key", "rev_digits"}
PARENT_FKS: dict[str, tuple[str, type[SyncedMixin]]] = {
    "customer_id": ("customer_uuid", Customer),
    "call_log_id": ("call_log_uuid", CallLog),
}


def _wire_value(
    session: Session, column: str, value: Any, pending: dict[tuple[type, Any], Any]
) -> tuple[str, Any]:
    """Translate a local column/value to its wire name/value (FK id → parent uuid).

    Parents inserted in the same flush are not in the identity map yet during
    `after_flush`, so they are looked up in `pending` first; only a parent that is neither
    pending nor loaded costs a SELECT.
    """
    if column in PARENT_FKS:
        wire, model = PARENT_FKS[column]
        if value is None:
            return wire, None
        parent = pending.get((model, value)) or session.get(model, value)
        return wire, parent.uuid if parent is not None else None
    return column, value


def _changes(
    session: Session, obj: SyncedMixin, is_new: bool, pending: dict[tuple[type, Any], Any]
) -> dict[str, Any]:
    state = inspect(obj)
    out: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in LOCAL_ONLY:
            continue
        if is_new or state.attrs[key].history.has_changes():
            wire, value = _wire_value(session, key, getattr(obj, key), pending)
            out[wire] = value
    return out


def _after_flush(session: Session, _ctx: object) -> None:
    """Runs inside the flush's transaction, after INSERT defaults and FKs are populated."""
    if session.info.get(REMOTE):
        return
    rows: list[dict[str, Any]] = []

    def add(entity: str, obj: SyncedMixin, op: str, fields: dict[str, Any], base: int) -> None:
        rows.append({"entity": entity, "entity_uuid": obj.uuid, "op": op,
                     "changed_fields": json.dumps(fields, ensure_ascii=False, default=str),
                     "base_version": base, "schema_version": SCHEMA_VERSION,
                     "created_at": utcnow()})

    pending = {(type(o), getattr(o, "id", None)): o for o in session.new}
    with session.no_autoflush:
        for obj in session.new:
            entity = ENTITY_OF.get(type(obj))
            if entity is not None:
                add(entity, obj, "upsert", _changes(session, obj, True, pending), 0)
        for obj in session.dirty:
            entity = ENTITY_OF.get(type(obj))
            if entity is None or not session.is_modified(obj, include_collections=False):
                continue
            changed = _changes(session, obj, False, pending)
            if changed:
                op = "delete" if changed.get("deleted_at") else "upsert"
                add(entity, obj, op, changed, obj.server_version)
        for obj in session.deleted:
            entity = ENTITY_OF.get(type(obj))
            if entity is not None:
                add(entity, obj, "delete", {}, obj.server_version)
    if rows:
        session.connection().execute(insert(Outbox), rows)


def install_outbox_capture(session_class: type[Session] | Any) -> None:
    """Attach the capture hook to a sessionmaker (or Session subclass)."""
    event.listen(session_class, "after_flush", _after_flush)
