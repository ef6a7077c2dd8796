"""Storage failures are recognised through SQLAlchemy's wrapping, and nothing else is."""

from __future__ import annotations

import errno
import sqlite3

from sqlalchemy.exc import IntegrityError, OperationalError

from agent_desktop.store.errors import is_disk_full, is_read_only, storage_problem


def _wrapped(message: str) -> OperationalError:
    """What SQLAlchemy raises when sqlite3 fails: the driver error as `.orig`/cause."""
    orig = sqlite3.OperationalError(message)
    try:
        try:
            raise orig
        except sqlite3.OperationalError as e:
            raise OperationalError("INSERT INTO call_logs ...", None, e) from e
    except OperationalError as outer:
        return outer


def test_sqlite_full_through_sqlalchemy_is_disk_full() -> None:
    exc = _wrapped("database or disk is full")
    assert is_disk_full(exc) and not is_read_only(exc)
    assert "disk that holds your data is full" in str(storage_problem(exc))


def test_enospc_and_quota_are_disk_full() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))


def test_read_only_database_is_named() -> None:
    exc = _wrapped("attempt to write a readonly database")
    assert is_read_only(exc) and not is_disk_full(exc)
    assert "read-only" in str(storage_problem(exc))


def test_other_errors_are_not_storage_problems() -> None:
    other = IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert storage_problem(other) is None
    assert storage_problem(OSError(errno.EACCES, "Permission denied")) is None
    assert storage_problem(ValueError("no")) is None


def test_errors_hide_customer_data(tmp_path: object) -> None:
    """Engine errors reach logs and banners; the values bound to the SQL must not."""
    from pathlib import Path

    from sqlalchemy import text

    from agent_desktop.store.db import Database

    db = Database.open(Path(str(tmp_path)) / "a.sqlite3")
    try:
        with db.engine.connect() as conn:
            try:
                conn.execute(text("INSERT INTO no_such_table VALUES (:secret)"),
                             {"secret": "王小明 13800138000"})
            except OperationalError as exc:
                message = str(exc)
            else:
                raise AssertionError("the insert should have failed")
    finally:
        db.close()
    assert "no_such_table" in message
    assert "13800138000" not in message and "hidden" in message.lower()
