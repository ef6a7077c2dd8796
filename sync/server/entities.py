"""What each entity looks like on the wire (docs/sync-protocol.md §3) and value checks.

Mirrors the local models minus LOCAL_ONLY; kept as an explicit table rather than imported
from the desktop's ORM so the server validates exactly the published contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldSpec:
    kind: type  # str | int | float | bool
    nullable: bool = False
    default: Any = None
    max_len: int = 10_000


@dataclass(frozen=True)
class EntitySpec:
    name: str
    fields: dict[str, FieldSpec]
    required: tuple[str, ...]
    insert_only: bool  # one author, never conflicts (call logs, recordings)
    parent: str | None  # "customer_uuid" / "call_log_uuid" / None


def _s(default: str | None = "", nullable: bool = False, max_len: int = 10_000) -> FieldSpec:
    return FieldSpec(str, nullable, default, max_len)


def _ts(nullable: bool = True) -> FieldSpec:
    return FieldSpec(str, nullable, None, 40)


_DELETED = {"deleted_at": _ts()}

ENTITY_SPECS: dict[str, EntitySpec] = {
    "customer": EntitySpec("customer", {
        "name": _s(), "company": _s(), "city": _s(), "country": _s(max_len=2),
        "email": _s(), "status": _s("new", max_len=32), "stage": _s("lead", max_len=32),
        "do_not_call": FieldSpec(bool, False, False), "owner": _s(max_len=64),
        "created_at": _ts(), **_DELETED}, ("name",), False, None),
    "phone": EntitySpec("phone", {
        "customer_uuid": _s(max_len=64), "label": _s("mobile", max_len=32), "raw": _s(),
        "e164": _s(None, True, 20), "valid": FieldSpec(bool, False, False),
        "position": FieldSpec(int, False, 0), **_DELETED},
        ("customer_uuid", "raw"), False, "customer_uuid"),
    "tag": EntitySpec("tag", {"customer_uuid": _s(max_len=64), "name": _s(), **_DELETED},
                      ("customer_uuid", "name"), False, "customer_uuid"),
    "note": EntitySpec("note", {
        "customer_uuid": _s(max_len=64), "call_log_uuid": _s(None, True, 64), "body": _s(),
        "author": _s(max_len=64), "created_at": _ts(), **_DELETED},
        ("customer_uuid", "body"), False, "customer_uuid"),
    "task": EntitySpec("task", {
        "customer_uuid": _s(max_len=64), "call_log_uuid": _s(None, True, 64), "title": _s(),
        "due_at": _ts(False), "done_at": _ts(), "created_at": _ts(), **_DELETED},
        ("customer_uuid", "due_at"), False, "customer_uuid"),
    "call_log": EntitySpec("call_log", {
        "customer_uuid": _s(None, True, 64), "direction": _s(max_len=8), "number": _s(),
        "e164": _s(None, True, 20), "state": _s("dialing", max_len=16), "started_at": _ts(),
        "answered_at": _ts(), "ended_at": _ts(), "sip_code": FieldSpec(int, True, None),
        "sip_reason": _s(), "talk_seconds": FieldSpec(float, False, 0.0),
        "outcome": _s(None, True, 16), "agent": _s(max_len=64),
        "disposition": _s(None, True), "wrapup_notes": _s(), "wrapped_up_at": _ts(),
        **_DELETED}, ("direction", "number"), True, None),
    "recording": EntitySpec("recording", {
        "call_log_uuid": _s(max_len=64), "path": _s(), "state": _s("recording", max_len=16),
        "sha256": _s(None, True, 64), "duration_s": FieldSpec(float, False, 0.0),
        "size_bytes": FieldSpec(int, False, 0), "paused_spans": _s("[]"),
        "started_at": _ts(), **_DELETED}, ("call_log_uuid",), True, "call_log_uuid"),
}

# Parents before children when a page or cascade lists several entities.
ENTITY_RANK = {"customer": 0, "call_log": 1, "phone": 2, "tag": 3, "note": 4, "task": 5,
               "recording": 6}


class FieldError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_value(entity: str, name: str, spec: FieldSpec, value: Any) -> Any:
    """Return the value to store, or raise FieldError with a plain reason."""
    if value is None:
        if spec.nullable:
            return None
        raise FieldError("bad_value", f"{entity}.{name} cannot be null.")
    if spec.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):  # SQLite booleans from old clients
            return bool(value)
    elif spec.kind is int:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
            return value
    elif spec.kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and \
                math.isfinite(value):
            return float(value)
    elif spec.kind is str and isinstance(value, str):
        if len(value) > spec.max_len:
            raise FieldError("bad_value", f"{entity}.{name} is longer than {spec.max_len} "
                             "characters.")
        if "\x00" in value:
            raise FieldError("bad_value", f"{entity}.{name} contains a NUL character.")
        return value
    raise FieldError("bad_value", f"{entity}.{name} must be a {spec.kind.__name__}"
                     f"{' or null' if spec.nullable else ''}, not {type(value).__name__}.")


def check_fields(spec: EntitySpec, changed: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in changed.items():
        fs = spec.fields.get(name)
        if fs is None:
            raise FieldError("unknown_field", f"{spec.name} has no field {name!r}.")
        out[name] = check_value(spec.name, name, fs, value)
    return out


def defaults(spec: EntitySpec) -> dict[str, Any]:
    return {name: fs.default for name, fs in spec.fields.items()}
