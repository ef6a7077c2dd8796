"""Local sync bookkeeping in the `sync_state` key/value table.

Kept in the same database as the data so that a pulled page and its cursor commit in one
transaction (a crash between the two can neither skip nor double-apply a page).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_desktop.store.models import SyncState

CLIENT_ID = "client_id"
CURSOR = "pull_cursor"
LAST_SYNCED_AT = "last_synced_at"
INITIAL_DONE = "initial_sync_done"
RESET_STARTED_AT = "reset_started_at"
MUTATION_OFFSET = "mutation_id_offset"
PULLED_COUNT = "pulled_count"
USERNAME = "username"
CONFLICTS_AFTER = "conflicts_after_id"


def get(session: Session, key: str) -> str | None:
    return session.scalar(select(SyncState.value).where(SyncState.key == key))


def put(session: Session, key: str, value: str) -> None:
    row = session.get(SyncState, key)
    if row is None:
        session.add(SyncState(key=key, value=value))
    else:
        row.value = value


def drop(session: Session, key: str) -> None:
    row = session.get(SyncState, key)
    if row is not None:
        session.delete(row)


def get_int(session: Session, key: str, default: int = 0) -> int:
    value = get(session, key)
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def ensure_client_id(session: Session) -> str:
    """This install's persistent id; created on first use and never changed."""
    value = get(session, CLIENT_ID)
    if value is None:
        value = str(uuid.uuid4())
        put(session, CLIENT_ID, value)
    return value
