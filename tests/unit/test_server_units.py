"""Fast checks of the server's pure parts; the behaviour end to end is in
tests/integration/server (real process, SQLite and PostgreSQL)."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import inspect

from agent_desktop.store.outbox import ENTITIES, LOCAL_ONLY, PARENT_FKS
from sync.server.accounts import hash_password, verify_password
from sync.server.db import normalise_url
from sync.server.entities import ENTITY_SPECS, FieldError, check_fields, check_value
from sync.server.errors import ApiError
from sync.server.pull import Cursor
from sync.server.uploads import _parse_range


def test_wire_entities_match_the_desktop_models() -> None:
    """The server validates exactly what the client's outbox sends (protocol §3)."""
    assert set(ENTITY_SPECS) == set(ENTITIES)
    for name, model in ENTITIES.items():
        columns = {c.key for c in inspect(model).column_attrs} - LOCAL_ONLY
        wire = {PARENT_FKS[c][0] if c in PARENT_FKS else c for c in columns}
        assert wire == set(ENTITY_SPECS[name].fields), name


def test_cursor_round_trip_and_garbage() -> None:
    cur = Cursor("abc", "snap", 41, 7, after=99, total=1000, done=500)
    assert Cursor.decode(cur.encode()) == cur
    for bad in ("", "!!!", "bm90IGpzb24", "eyJ2IjoyfQ", "eyJ2IjoxLCJtIjoibG9nIn0"):
        with pytest.raises(ApiError) as info:
            Cursor.decode(bad)
        assert info.value.status == 400 and info.value.code == "invalid_cursor"
    negative = Cursor("abc", "log", -1, 0).encode()
    with pytest.raises(ApiError):
        Cursor.decode(negative)


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-9", (0, 9)), ("bytes=10-", (10, 99)), ("bytes=-5", (95, 99)),
    ("bytes=90-200", (90, 99)), ("bytes=-500", (0, 99)), ("bytes=1-2,5-6", None),
    ("items=0-1", None), ("bytes=-", None)])
def test_range_header(header: str, expected: tuple[int, int] | None) -> None:
    assert _parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-2", "bytes=-0"])
def test_unsatisfiable_range(header: str) -> None:
    with pytest.raises(ApiError) as info:
        _parse_range(header, 100)
    assert info.value.status == 416
    assert info.value.headers["Content-Range"] == "bytes */100"


def test_value_checks() -> None:
    spec = ENTITY_SPECS["call_log"]
    assert check_value("call_log", "talk_seconds", spec.fields["talk_seconds"], 3) == 3.0
    assert check_value("call_log", "sip_code", spec.fields["sip_code"], None) is None
    bad = [("talk_seconds", math.nan), ("talk_seconds", True), ("sip_code", 1.5),
           ("sip_code", 2**60), ("number", None), ("number", 5), ("number", "a\x00b"),
           ("direction", "x" * 9), ("number", ["list"])]
    for field, value in bad:
        with pytest.raises(FieldError) as info:
            check_value("call_log", field, spec.fields[field], value)
        assert info.value.code == "bad_value" and field in info.value.message
    assert check_value("phone", "valid", ENTITY_SPECS["phone"].fields["valid"], 1) is True
    with pytest.raises(FieldError) as info:
        check_fields(ENTITY_SPECS["tag"], {"colour": "red"})
    assert info.value.code == "unknown_field"


def test_passwords_are_argon2_and_verify() -> None:
    h = hash_password("s3cret pass")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "s3cret pass")
    assert not verify_password(h, "wrong")
    assert not verify_password(None, "anything")
    assert not verify_password("not a hash", "x")


def test_database_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
