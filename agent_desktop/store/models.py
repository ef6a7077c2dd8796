"""SQLAlchemy 2 models of the local store.

Every synced row has a local integer key (fast joins, FTS rowid, keyset paging) and a
client-generated `uuid` that is its identity on the server (ARCHITECTURE.md §4). Sync
bookkeeping: `server_version` (0 = never seen by the server) and `deleted_at` (tombstone).
Times are stored as UTC ISO-8601 text so that SQLite, PostgreSQL and JSON agree.
"""

from __future__ import annotations

import uuid as uuid_mod
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 1

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> str:
    """UTC now as ISO text with milliseconds, sortable as a string."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_uuid() -> str:
    return str(uuid_mod.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SyncedMixin:
    """Columns every synced entity carries."""

    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid,
                                      insert_sentinel=True)
    server_version: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[str | None] = mapped_column(String(32), default=None)
    updated_at: Mapped[str] = mapped_column(String(32), default=utcnow, onupdate=utcnow)


class Customer(SyncedMixin, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    # Case-folded name: the index behind alphabetical keyset paging and prefix search.
    name_key: Mapped[str] = mapped_column(Text, default="")
    company: Mapped[str] = mapped_column(Text, default="")
    city: Mapped[str] = mapped_column(Text, default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    email: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), default="new")
    stage: Mapped[str] = mapped_column(String(32), default="lead")
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[str] = mapped_column(String(32), default=utcnow)

    phones: Mapped[list[PhoneNumber]] = relationship(
        back_populates="customer", order_by="PhoneNumber.position", cascade="all"
    )
    tags: Mapped[list[Tag]] = relationship(back_populates="customer", cascade="all")
    notes: Mapped[list[Note]] = relationship(
        back_populates="customer", order_by="Note.created_at", cascade="all"
    )
    tasks: Mapped[list[Task]] = relationship(
        back_populates="customer", order_by="Task.due_at", cascade="all"
    )

    # ix_*_list (migration 0003): covering indexes, so a list page is read from indexes
    # alone (search.py's display query); declared here so autogenerate keeps them.
    __table_args__ = (
        Index("ix_customers_name_key_id", "name_key", "id"),
        Index("ix_customers_list", "name_key", "id", "deleted_at", "name", "company", "city",
              "status"),
    )


class PhoneNumber(SyncedMixin, Base):
    """A customer's number: as typed, E.164 when parsable, reversed digits for caller ID."""

    __tablename__ = "phone_numbers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(32), default="mobile")
    raw: Mapped[str] = mapped_column(Text)
    e164: Mapped[str | None] = mapped_column(String(20), default=None)
    # Digits of the number reversed (E.164 when valid, else the typed digits): caller-ID
    # lookup is a range scan `rev >= ? AND rev < ? || ':'` on this index (§4).
    rev_digits: Mapped[str] = mapped_column(String(32), default="")
    valid: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)

    customer: Mapped[Customer] = relationship(back_populates="phones")

    __table_args__ = (
        Index("ix_phone_numbers_rev_digits", "rev_digits"),
        Index("ix_phone_numbers_customer_id", "customer_id"),
        Index("ix_phone_numbers_e164", "e164"),
        Index("ix_phone_numbers_list", "customer_id", "deleted_at", "position", "id", "raw"),
    )


class Tag(SyncedMixin, Base):
    """A tag on a customer; removing it is a tombstone so the removal syncs."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)

    customer: Mapped[Customer] = relationship(back_populates="tags")

    __table_args__ = (
        Index("ix_tags_customer_id", "customer_id"),
        Index("ix_tags_name", "name"),
        Index("ix_tags_list", "customer_id", "deleted_at", "id", "name"),
    )


class Note(SyncedMixin, Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    call_log_id: Mapped[int | None] = mapped_column(ForeignKey("call_logs.id"), default=None)
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[str] = mapped_column(String(32), default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="notes")

    __table_args__ = (Index("ix_notes_customer_id", "customer_id"),)


class Task(SyncedMixin, Base):
    """A follow-up: call this customer at `due_at` (UTC ISO)."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    call_log_id: Mapped[int | None] = mapped_column(ForeignKey("call_logs.id"), default=None)
    title: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[str] = mapped_column(String(32))
    done_at: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[str] = mapped_column(String(32), default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="tasks")

    __table_args__ = (
        Index("ix_tasks_due_open", "done_at", "due_at"),
        Index("ix_tasks_customer_id", "customer_id"),
    )


class CallLog(SyncedMixin, Base):
    """One call, created when it starts and finalised when it ends (insert-only on sync)."""

    __tablename__ = "call_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), default=None
    )
    direction: Mapped[str] = mapped_column(String(8))  # "out" | "in"
    number: Mapped[str] = mapped_column(Text)  # as dialled / as presented
    e164: Mapped[str | None] = mapped_column(String(20), default=None)
    # dialing | ringing | connected | ended
    state: Mapped[str] = mapped_column(String(16), default="dialing")
    started_at: Mapped[str] = mapped_column(String(32), default=utcnow)
    answered_at: Mapped[str | None] = mapped_column(String(32), default=None)
    ended_at: Mapped[str | None] = mapped_column(String(32), default=None)
    sip_code: Mapped[int | None] = mapped_column(Integer, default=None)
    sip_reason: Mapped[str] = mapped_column(Text, default="")
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # answered|busy|no_answer|rejected|failed|cancelled|missed
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    agent: Mapped[str] = mapped_column(String(64), default="")
    disposition: Mapped[str | None] = mapped_column(Text, default=None)
    wrapup_notes: Mapped[str] = mapped_column(Text, default="")
    wrapped_up_at: Mapped[str | None] = mapped_column(String(32), default=None)

    recordings: Mapped[list[Recording]] = relationship(back_populates="call_log")

    __table_args__ = (
        Index("ix_call_logs_customer_started", "customer_id", "started_at"),
        Index("ix_call_logs_started_at", "started_at"),
    )


class Recording(SyncedMixin, Base):
    """A stereo WAV (agent left, customer right) of one call."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_log_id: Mapped[int] = mapped_column(ForeignKey("call_logs.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)  # relative to the recordings dir
    # recording | complete | repaired
    state: Mapped[str] = mapped_column(String(16), default="recording")
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    paused_spans: Mapped[str] = mapped_column(Text, default="[]")  # JSON [[start_s, end_s], ...]
    started_at: Mapped[str] = mapped_column(String(32), default=utcnow)
    # pending | uploading | done
    upload_state: Mapped[str] = mapped_column(String(16), default="pending")
    upload_offset: Mapped[int] = mapped_column(Integer, default=0)

    call_log: Mapped[CallLog] = relationship(back_populates="recordings")

    __table_args__ = (Index("ix_recordings_call_log_id", "call_log_id"),)


class WrapupDraft(Base):
    """Local-only: what the agent has typed in a wrap-up so far (JSON), saved as they type."""

    __tablename__ = "wrapup_drafts"

    call_log_id: Mapped[int] = mapped_column(
        ForeignKey("call_logs.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[str] = mapped_column(String(32), default=utcnow, onupdate=utcnow)


class Outbox(Base):
    """Local mutations waiting for the server, written in the same transaction as the change."""

    __tablename__ = "outbox"

    mutation_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_uuid: Mapped[str] = mapped_column(String(36))
    op: Mapped[str] = mapped_column(String(8))  # upsert | delete
    changed_fields: Mapped[str] = mapped_column(Text)  # JSON {field: new value}
    base_version: Mapped[int] = mapped_column(Integer, default=0)
    schema_version: Mapped[int] = mapped_column(Integer, default=SCHEMA_VERSION)
    created_at: Mapped[str] = mapped_column(String(32), default=utcnow)


class SyncState(Base):
    """Local-only key/value: client_id, pull cursor, last sync time."""

    __tablename__ = "sync_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SyncConflict(Base):
    """A local value that lost to a concurrent server value, kept and shown to the agent."""

    __tablename__ = "sync_conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_uuid: Mapped[str] = mapped_column(String(36))
    field: Mapped[str] = mapped_column(String(64))
    local_value: Mapped[str | None] = mapped_column(Text)
    server_value: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32), default=utcnow)
    resolved_at: Mapped[str | None] = mapped_column(String(32), default=None)


__all__ = [
    "SCHEMA_VERSION",
    "Base",
    "CallLog",
    "Customer",
    "Note",
    "Outbox",
    "PhoneNumber",
    "Recording",
    "SyncConflict",
    "SyncState",
    "Tag",
    "Task",
    "WrapupDraft",
    "new_uuid",
    "utcnow",
]
