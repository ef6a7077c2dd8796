"""Errors of the sync client, split by what the caller should do about them.

`str()` of every error is a sentence an agent can read in the status bar; details for
support go to the log. The split drives the retry policy: transient → back off and retry,
auth → ask the agent to sign in again, permanent → stop retrying until something changes
(settings, app update), reset → re-download while keeping the outbox.
"""

from __future__ import annotations


class SyncError(RuntimeError):
    """Base class: a sync problem with a plain-words message."""


class TransientError(SyncError):
    """Network down, timeout, 5xx, 429, garbage response: retrying later can help."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(SyncError):
    """Bad request, wrong schema version, forbidden client id: retrying will not help."""


class AuthError(SyncError):
    """No valid session (never signed in, refresh token expired or revoked)."""


class ResetRequired(SyncError):
    """The server compacted past our cursor: local copy must be re-downloaded."""


class TooLarge(PermanentError):
    """The request body was over the server's limit: send smaller batches."""


class SchemaMismatch(PermanentError):
    """The server does not speak this app's schema version: the app must be updated."""


class Forbidden(PermanentError):
    """The token is fine but the action is not allowed (e.g. client id of another user)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason
