"""Shared test set-up: offscreen Qt, an in-memory keyring, an isolated data dir.

Nothing here talks to the network or the user's real config: every test gets its own
`--data-dir` style root under tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# PySide6 6.12.0 on Python 3.11 leaks references to None/True on void calls and emits;
# pin them before any test creates Qt objects (see agent_desktop.phone).
from agent_desktop.phone import install_emit_refcount_fix

install_emit_refcount_fix()


class MemoryKeyring(KeyringBackend):
    """In-memory keyring for tests: secrets never touch disk."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if (service, username) not in self.store:
            raise PasswordDeleteError(username)
        del self.store[(service, username)]


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    """A private root for AppPaths.from_root()."""
    root = tmp_path / "agent-root"
    root.mkdir()
    return root
