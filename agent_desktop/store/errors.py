"""Recognise storage failures so the agent is told what to do, not an SQL error.

SQLite reports a full disk as ``OperationalError: database or disk is full`` (SQLITE_FULL)
and a file we cannot write as ``attempt to write a readonly database``; plain file writes
raise ``OSError`` with ENOSPC/EDQUOT/EROFS. Callers keep logging the full exception; this
module only picks the plain-words sentence to show.
"""

from __future__ import annotations

import errno

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_FULL_TEXT = ("database or disk is full", "no space left on device", "disk quota exceeded")
_READONLY_TEXT = ("attempt to write a readonly database", "read-only file system")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from (SQLAlchemy wraps sqlite3's)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def is_disk_full(exc: BaseException) -> bool:
    """True when the write failed because the disk (or the user's quota) is full."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        text = str(e).lower()
        if any(t in text for t in _FULL_TEXT):
            return True
    return False


def is_read_only(exc: BaseException) -> bool:
    """True when the data folder or database file cannot be written at all."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno == errno.EROFS:
            return True
        text = str(e).lower()
        if any(t in text for t in _READONLY_TEXT):
            return True
    return False


def storage_problem(exc: BaseException) -> str | None:
    """A sentence for the agent when `exc` is a storage failure they can fix, else None."""
    if is_disk_full(exc):
        return ("The disk that holds your data is full. Free some space (or ask IT), "
                "then try again; nothing already saved was lost.")
    if is_read_only(exc):
        return ("Your data folder cannot be written to (read-only). Ask IT to check its "
                "permissions; nothing already saved was lost.")
    return None
