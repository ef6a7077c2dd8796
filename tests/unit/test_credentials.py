"""Secrets go through keyring; with no keyring they stay in memory, never on disk."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import NoKeyringError

from agent_desktop.credentials import CredentialStore


class _NoKeyring(KeyringBackend):
    priority = 1

    def get_password(self, service: str, username: str) -> str | None:
        raise NoKeyringError("no backend")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NoKeyringError("no backend")

    def delete_password(self, service: str, username: str) -> None:
        raise NoKeyringError("no backend")


def test_secret_round_trip_through_keyring(memory_keyring: KeyringBackend) -> None:
    store = CredentialStore()
    store.set("sip:1001@pbx", "s3cret")
    assert store.get("sip:1001@pbx") == "s3cret"
    assert memory_keyring.get_password("agent-desktop", "sip:1001@pbx") == "s3cret"
    store.delete("sip:1001@pbx")
    assert store.get("sip:1001@pbx") is None
    store.delete("sip:1001@pbx")  # deleting twice is harmless


def test_no_keyring_keeps_secret_in_memory_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    keyring.set_keyring(_NoKeyring())
    store = CredentialStore()
    store.set("server:refresh", "tok-123")
    assert store.get("server:refresh") == "tok-123"
    assert store.persistent is False
    assert "only until the app closes" in store.problem
    assert "tok-123" not in caplog.text
    assert not any(tmp_path.rglob("*")), "nothing may be written to disk"
