"""Secrets (SIP password, server tokens) through `keyring` only.

On a machine with no Secret Service, keyring raises `NoKeyringError`; we then keep the secret
in memory for this run and say so (`persistent` is False) — never a plaintext file.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

SERVICE = "agent-desktop"


def _keyring() -> Any:
    """keyring loads its back ends through entry points (~60 ms): not before first paint."""
    import keyring

    return keyring


class CredentialStore:
    """Get/set/delete secrets by name, e.g. `sip:1001@pbx` or `server:refresh`."""

    def __init__(self, service: str = SERVICE) -> None:
        self._service = service
        self._memory: dict[str, str] = {}
        self.persistent = True
        self.problem = ""

    def _fallback(self, exc: Exception) -> None:
        if self.persistent:
            self.persistent = False
            self.problem = (
                "No system keyring is available, so passwords are kept only until the app "
                "closes."
            )
            log.warning("keyring unavailable (%s); secrets kept in memory only", type(exc).__name__)

    def get(self, name: str) -> str | None:
        if name in self._memory:
            return self._memory[name]
        from keyring.errors import KeyringError

        try:
            return _keyring().get_password(self._service, name)
        except KeyringError as exc:
            self._fallback(exc)
            return None

    def set(self, name: str, secret: str) -> None:
        from keyring.errors import KeyringError

        try:
            _keyring().set_password(self._service, name, secret)
            self._memory.pop(name, None)
        except KeyringError as exc:
            self._fallback(exc)
            self._memory[name] = secret

    def delete(self, name: str) -> None:
        from keyring.errors import KeyringError, PasswordDeleteError

        self._memory.pop(name, None)
        try:
            _keyring().delete_password(self._service, name)
        except PasswordDeleteError:
            pass
        except KeyringError as exc:
            self._fallback(exc)
