"""Inserting a batch of brand-new customers with Core `executemany`, outbox rows included.

Why not the ORM: a flush of 1,000 customers with two numbers, two tags and a note each is
~6,000 objects whose attribute events, identity-map bookkeeping and per-object outbox
inspection cost ~0.8 ms of CPU per imported row (profiled, 5,000 rows: 23 s of 48 s in
`Session.flush`, 9 s of it in the outbox hook). Plain dictionaries through one
`executemany` per table cost a tenth of that.

The outbox rows are what `agent_desktop.store.outbox` writes for an ORM insert, built from
the same table defaults and the same `LOCAL_ONLY` / `PARENT_FKS` rules, in the same order
(customers first, then their numbers, tags and notes), so sync cannot tell the difference;
`tests/unit/test_import_core.py` compares the two paths field by field.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.orm import Session

from agent_desktop.store.models import (
    SCHEMA_VERSION,
    Base,
    Customer,
    Note,
    PhoneNumber,
    Tag,
    utcnow,
)
from agent_desktop.store.outbox import ENTITY_OF, LOCAL_ONLY, PARENT_FKS, REMOTE

# `json.dumps(fields, ensure_ascii=False, default=str)` as the hook writes it, without
# building an encoder per row.
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode
# Every column but the autoincrement key, each row given in full (as the hook's insert).
_OUTBOX_SQL = ("INSERT INTO outbox (entity, entity_uuid, op, changed_fields, base_version,"
               " schema_version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")


def _defaults(table: Table) -> dict[str, Any | Callable[[], Any]]:
    """Each column's Python-side default: a value, or a zero-argument callable."""
    out: dict[str, Any] = {}
    for col in table.columns:
        default = col.default
        if default is None:
            continue
        if getattr(default, "is_callable", False):
            fn = default.arg  # type: ignore[attr-defined]
            out[col.key] = lambda fn=fn: fn(None)  # SQLAlchemy wraps f() as f(ctx)
        elif getattr(default, "is_scalar", False):
            out[col.key] = default.arg  # type: ignore[attr-defined]
    return out


# Hex digit of the variant nibble: RFC 4122 sets its top two bits to 10.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


class _Uuids:
    """Random (version 4) UUIDs as text, like `models.new_uuid`, from one `os.urandom`
    call per 1,024 instead of one per row (measured: the per-row call cost more than the
    row's INSERT on this VM), formatted from one hex string per block: the same text as
    `str(uuid.UUID(bytes=b, version=4))` (version nibble 4, variant bits 10) at a quarter
    of its cost (3.7 → 1.0 µs)."""

    _BLOCK = 1024

    def __init__(self) -> None:
        self._texts: list[str] = []

    @staticmethod
    def block(raw: bytes) -> list[str]:
        h = raw.hex()
        return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-{_VARIANT[h[i + 16]]}"
                f"{h[i + 17:i + 20]}-{h[i + 20:i + 32]}" for i in range(0, len(h), 32)]

    def take(self) -> str:
        if not self._texts:
            self._texts = self.block(os.urandom(16 * self._BLOCK))
            self._texts.reverse()
        return self._texts.pop()


class _TableRows:
    """Rows for one table, completed with defaults, plus their wire (outbox) fields."""

    # One batch is one instant: its rows share the creation time (one clock read a batch
    # instead of three a row).
    _STAMPS = ("created_at", "updated_at")

    def __init__(self, model: type[Base], uuids: _Uuids) -> None:
        table = model.__table__
        assert isinstance(table, Table)
        self.table = table
        self.entity = ENTITY_OF[model]
        self._uuids = uuids
        self._columns = [c.key for c in table.columns]
        self._stamps = [k for k in self._STAMPS if k in self._columns]
        defaults = _defaults(table)
        # Every column present (None where the model has no default), so that each row
        # binds the same parameters; callables other than uuid and the stamps are
        # evaluated per row.
        self._blank: dict[str, Any] = {k: None for k in self._columns}
        self._blank.update({k: v for k, v in defaults.items() if not callable(v)})
        self._calls = {k: v for k, v in defaults.items()
                       if callable(v) and k not in self._stamps and k != "uuid"}
        # The hook walks `mapper.column_attrs`: the same order, the same exclusions;
        # a parent key travels as the parent's uuid under its wire name.
        self._wire = [(k, *PARENT_FKS.get(k, (k, None))) for k in self._columns
                      if k not in LOCAL_ONLY]
        self._sql = (f"INSERT INTO {table.name} ({', '.join(self._columns)}) VALUES"
                     f" ({', '.join('?' for _ in self._columns)})")
        self._values = operator.itemgetter(*self._columns)
        self.rows: list[dict[str, Any]] = []
        self._now = ""
        self._template = self._blank

    def add(self, values: dict[str, Any], now: str) -> None:
        """One row: the given values over a fresh uuid over the batch's template (blank
        row with the batch's time stamps), so a row costs one dict build."""
        if now != self._now:
            self._now = now
            self._template = {**self._blank, **{k: now for k in self._stamps}}
        row = {**self._template, "uuid": self._uuids.take(), **values}
        for key, default in self._calls.items():
            if key not in values:
                row[key] = default()
        self.rows.append(row)

    def insert(self, conn: Connection) -> None:
        """One executemany on the driver: SQLAlchemy's per-row parameter processing cost
        more than SQLite's insert itself."""
        conn.exec_driver_sql(self._sql, [self._values(r) for r in self.rows])

    def outbox(self, uuid_of: dict[tuple[type, int], str],
               now: str) -> list[tuple[str, str, str, str, int, int, str]]:
        """The hook's rows as `_OUTBOX_SQL` parameters, its JSON text byte for byte."""
        entity, wire, encode = self.entity, self._wire, _ENCODE
        out = []
        for row in self.rows:
            fields: dict[str, Any] = {}
            for key, name, parent in wire:
                value = row[key]
                if parent is not None and value is not None:
                    value = uuid_of[(parent, value)]
                fields[name] = value
            out.append((entity, row["uuid"], "upsert", encode(fields), 0, SCHEMA_VERSION,
                        now))
        return out


class CoreBatch:
    """New customers and their children, written by `flush(session)` in four statements
    (plus the outbox). Ids are given by the caller (the import's id block)."""

    def __init__(self) -> None:
        uuids = _Uuids()
        self.customers = _TableRows(Customer, uuids)
        self.phones = _TableRows(PhoneNumber, uuids)
        self.tags = _TableRows(Tag, uuids)
        self.notes = _TableRows(Note, uuids)
        self.now = utcnow()

    def __len__(self) -> int:
        return len(self.customers.rows)

    def flush(self, s: Session) -> None:
        parts = (self.customers, self.phones, self.tags, self.notes)
        uuid_of: dict[tuple[type, int], str] = {(Customer, r["id"]): r["uuid"]
                                                for r in self.customers.rows}
        conn = s.connection()
        outbox: list[tuple[str, str, str, str, int, int, str]] = []
        for part in parts:
            if part.rows:
                part.insert(conn)
                outbox += part.outbox(uuid_of, self.now)
        if outbox and not s.info.get(REMOTE):
            conn.exec_driver_sql(_OUTBOX_SQL, outbox)
        for part in parts:
            part.rows.clear()
        self.now = utcnow()
