"""Server session tokens, kept only in the keyring (through `CredentialStore`).

The access token is short-lived and the refresh token revocable (server side), so both are
secrets: neither is ever written to settings, the database or the log. The password is
stored only when the agent ticks "remember me", and then in the keyring too.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_desktop.credentials import CredentialStore


def password_key(username: str, scope: str = "") -> str:
    return f"server:{scope}:password:{username}" if scope else f"server:password:{username}"


@dataclass
class Tokens:
    access: str
    refresh: str


class TokenStore:
    """Reads and writes the token pair; `clear()` on sign-out or revoked session.

    `scope` (the server URL) keeps the secrets of different servers apart, so pointing the
    app at another server never sends it the first server's tokens.
    """

    def __init__(self, credentials: CredentialStore, scope: str = "") -> None:
        self._creds = credentials
        self._prefix = f"server:{scope.rstrip('/')}:" if scope else "server:"
        self._scope = scope.rstrip("/")

    def load(self) -> Tokens | None:
        access = self._creds.get(self._prefix + "access")
        refresh = self._creds.get(self._prefix + "refresh")
        if not refresh:
            return None
        return Tokens(access or "", refresh)

    def save(self, tokens: Tokens) -> None:
        self._creds.set(self._prefix + "access", tokens.access)
        self._creds.set(self._prefix + "refresh", tokens.refresh)

    def clear(self) -> None:
        self._creds.delete(self._prefix + "access")
        self._creds.delete(self._prefix + "refresh")

    def remember_password(self, username: str, password: str) -> None:
        self._creds.set(password_key(username, self._scope), password)

    def remembered_password(self, username: str) -> str | None:
        return self._creds.get(password_key(username, self._scope))

    def forget_password(self, username: str) -> None:
        self._creds.delete(password_key(username, self._scope))

    @property
    def persistent(self) -> bool:
        """False when no system keyring exists and tokens live only for this run."""
        return self._creds.persistent

    @property
    def problem(self) -> str:
        return self._creds.problem
