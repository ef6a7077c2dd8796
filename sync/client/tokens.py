"""Server session tokens, kept only in the keyring (through `CredentialStore`).

The access token is short-lived and the refresh token revocable (server side), so both are
secrets: neither is ever written to settings, the database or the log. The password is
stored only when the agent ticks "remember me", and then in the keyring too.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_desktop.credentials import CredentialStore

ACCESS = "server:access"
REFRESH = "server:refresh"


def password_key(username: str) -> str:
    return f"server:password:{username}"


@dataclass
class Tokens:
    access: str
    refresh: str


class TokenStore:
    """Reads and writes the token pair; `clear()` on sign-out or revoked session."""

    def __init__(self, credentials: CredentialStore) -> None:
        self._creds = credentials

    def load(self) -> Tokens | None:
        access = self._creds.get(ACCESS)
        refresh = self._creds.get(REFRESH)
        if not refresh:
            return None
        return Tokens(access or "", refresh)

    def save(self, tokens: Tokens) -> None:
        self._creds.set(ACCESS, tokens.access)
        self._creds.set(REFRESH, tokens.refresh)

    def clear(self) -> None:
        self._creds.delete(ACCESS)
        self._creds.delete(REFRESH)

    def remember_password(self, username: str, password: str) -> None:
        self._creds.set(password_key(username), password)

    def remembered_password(self, username: str) -> str | None:
        return self._creds.get(password_key(username))

    def forget_password(self, username: str) -> None:
        self._creds.delete(password_key(username))

    @property
    def persistent(self) -> bool:
        """False when no system keyring exists and tokens live only for this run."""
        return self._creds.persistent

    @property
    def problem(self) -> str:
        return self._creds.problem
