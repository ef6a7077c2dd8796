"""Server tables (SQLAlchemy 2), portable between SQLite and PostgreSQL.

Synced rows live in one generic `records` table (entity, uuid, JSON data) rather than one
table per entity: the server is a sync hub, not a reporting database, so every entity
shares one code path for versioning, per-field LWW, visibility and the change log. The
columns the server itself filters on (customer scope, author, audience) are real columns.

`change_log` is the ordered feed pulls read. On PostgreSQL each entry also records the
writing transaction's id (`txid`) so pulls can apply the snapshot-xmin rule (§6).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT keys on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ROLES = ("agent", "team_lead", "admin")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[str] = mapped_column(String(32))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[str] = mapped_column(String(32))


class AuthSession(Base):
    """One sign-in; logout revokes it and with it every token it issued."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[str] = mapped_column(String(32))
    ip: Mapped[str] = mapped_column(String(64), default="")
    revoked_at: Mapped[str | None] = mapped_column(String(32), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)


class Token(Base):
    """SHA-256 of an opaque token (never the token itself); kind `access` or `refresh`."""

    __tablename__ = "tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("auth_sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[int] = mapped_column(BigInteger)  # unix seconds
    used_at: Mapped[str | None] = mapped_column(String(32), default=None)  # refresh rotation


class Client(Base):
    """One desktop install of one user; `last_mutation_id` makes push idempotent."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    last_mutation_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[str] = mapped_column(String(32))
    last_seen_at: Mapped[str] = mapped_column(String(32))


class Record(Base):
    """Current state of one synced row of any entity."""

    __tablename__ = "records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(16))
    uuid: Mapped[str] = mapped_column(String(64), unique=True)
    # The customer this row belongs to (its own uuid for a customer; None for a call
    # without a customer): reassignment updates every row of a customer through it.
    customer_uuid: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    call_log_uuid: Mapped[str | None] = mapped_column(String(64), default=None)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Audience: the one agent who sees it, and the team whose lead sees it.
    owner_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    team_id: Mapped[int | None] = mapped_column(Integer, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    data: Mapped[str] = mapped_column(Text)  # JSON of the wire fields
    field_versions: Mapped[str] = mapped_column(Text, default="{}")  # {field: [ver, client, user]}
    deleted_at: Mapped[str | None] = mapped_column(String(32), default=None)
    audio_available: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_records_owner_id", "owner_user_id", "id"),
        Index("ix_records_team_id", "team_id", "id"),
    )


class ChangeLog(Base):
    """Ordered feed: `(txid, seq)` on PostgreSQL, `seq` on SQLite (txid is 0 there)."""

    __tablename__ = "change_log"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    txid: Mapped[int] = mapped_column(BigInteger, default=0)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"))
    op: Mapped[str] = mapped_column(String(8))  # upsert | delete | remove
    audience_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    audience_team_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_change_log_txid_seq", "txid", "seq"),
        Index("ix_change_log_user", "audience_user_id", "txid", "seq"),
        Index("ix_change_log_team", "audience_team_id", "txid", "seq"),
        # SQLite must never reuse a sequence number after compaction (migration 0002).
        {"sqlite_autoincrement": True},
    )


class Conflict(Base):
    """A value that lost under per-field LWW (or to a delete), kept as CouchDB keeps revs."""

    __tablename__ = "conflicts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    entity: Mapped[str] = mapped_column(String(16))
    entity_uuid: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    winning_value: Mapped[str] = mapped_column(Text)  # JSON
    losing_value: Mapped[str] = mapped_column(Text)  # JSON
    winner_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    loser_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    kind: Mapped[str] = mapped_column(String(8))  # field | delete
    created_at: Mapped[str] = mapped_column(String(32))


class Upload(Base):
    """Resumable upload of one recording's audio; the offset is the partial file's size."""

    __tablename__ = "uploads"

    recording_uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    length: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
    # Who may append bytes now (one request, in any worker) and until when (unix time):
    # a lease, so a worker that dies mid-upload does not lock the recording forever.
    lease_owner: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_until: Mapped[float | None] = mapped_column(Float, default=None)


class LoginFailure(Base):
    """One failed sign-in, shared by all worker processes for the rate limit."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))  # lower-cased
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)  # unix time

    __table_args__ = (Index("ix_login_failures_key", "username", "ip", "at"),)


class ServerState(Base):
    """Key/value: instance id (cursors from another database are refused), compaction horizon."""

    __tablename__ = "server_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
