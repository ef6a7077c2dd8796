"""The kept conflicts, as plain rows for the "Sync conflicts" view, and their resolution.

Nothing is silently overwritten: when the server's per-field last-writer-wins drops a
value, the dropped value lands here (fetched from the server's kept list, which includes
values *this* agent lost), as do pushed changes the server refused. The agent can dismiss
an entry or put the lost value back, which is an ordinary local edit (so it syncs).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, select

from agent_desktop.search import name_key_of
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, SyncConflict, utcnow
from agent_desktop.store.outbox import ENTITIES, LOCAL_ONLY

log = logging.getLogger(__name__)


class ConflictError(ValueError):
    """The conflict cannot be restored (row gone, field not editable, value unreadable)."""


@dataclass(frozen=True)
class ConflictItem:
    id: int
    entity: str
    entity_uuid: str
    record: str  # human label: the customer's name when known
    field: str  # "*" = the whole change (refused or lost to a delete)
    lost_value: str
    current_value: str
    created_at: str
    restorable: bool


class ConflictStore:
    """`ConflictSource` for ui/sync_conflicts_view.py, backed by the local store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list_conflicts(self, include_resolved: bool = False) -> list[ConflictItem]:
        with self._db.transaction() as s:
            q = select(SyncConflict).order_by(SyncConflict.id.desc())
            if not include_resolved:
                q = q.where(SyncConflict.resolved_at.is_(None))
            rows = list(s.scalars(q.limit(1000)))
            names: dict[str, str] = {
                u: n for u, n in s.execute(select(Customer.uuid, Customer.name).where(
                    Customer.uuid.in_({r.entity_uuid for r in rows
                                       if r.entity == "customer"})))}
            return [ConflictItem(
                id=r.id, entity=r.entity, entity_uuid=r.entity_uuid,
                record=names.get(r.entity_uuid, r.entity_uuid[:8]), field=r.field,
                lost_value=r.local_value or "", current_value=r.server_value or "",
                created_at=r.created_at,
                restorable=self._restorable(r)) for r in rows]

    @staticmethod
    def _restorable(r: SyncConflict) -> bool:
        model = ENTITIES.get(r.entity)
        if model is None or r.field in ("", "*") or r.field in LOCAL_ONLY:
            return False
        return r.field in {a.key for a in model.__mapper__.column_attrs}  # type: ignore[attr-defined]

    def dismiss(self, conflict_id: int) -> None:
        with self._db.transaction(applying_remote=True) as s:
            row = s.get(SyncConflict, conflict_id)
            if row is None:
                raise ConflictError(f"Conflict {conflict_id} no longer exists.")
            row.resolved_at = utcnow()

    def restore(self, conflict_id: int) -> None:
        """Put the lost value back as a normal local edit (it goes through the outbox)."""
        with self._db.transaction() as s:
            row = s.get(SyncConflict, conflict_id)
            if row is None:
                raise ConflictError(f"Conflict {conflict_id} no longer exists.")
            if row.resolved_at is not None:
                raise ConflictError("This conflict was already resolved.")
            if not self._restorable(row):
                raise ConflictError("This conflict cannot be restored automatically; "
                                    "edit the record by hand.")
            model = ENTITIES[row.entity]
            obj = s.scalar(select(model).where(model.uuid == row.entity_uuid))
            if obj is None or obj.deleted_at is not None:
                raise ConflictError("The record was deleted, so the value cannot be put "
                                    "back.")
            column = model.__mapper__.columns[row.field]  # type: ignore[attr-defined]
            value: Any = row.local_value
            if value is not None and not isinstance(column.type, String):
                try:
                    value = json.loads(value)
                except ValueError as exc:
                    raise ConflictError(f"The lost value {value!r} cannot be read.") from exc
            setattr(obj, row.field, value)
            if row.entity == "customer" and row.field == "name":
                obj.name_key = name_key_of(value or "")  # type: ignore[attr-defined]
            row.resolved_at = utcnow()
        log.info("conflict %s restored (%s.%s)", conflict_id, row.entity, row.field)
