"""SyncWorker's state machine with a scripted transport (run on the test thread): which
status, message and retry schedule each kind of failure leads to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from agent_desktop.credentials import CredentialStore
from agent_desktop.store.db import Database
from sync.client.backoff import Backoff
from sync.client.errors import AuthError, SchemaMismatch, SyncError, TransientError
from sync.client.tokens import TokenStore
from sync.client.worker import SyncWorker


class ScriptedTransport:
    def __init__(self) -> None:
        self.fail: SyncError | None = None
        self.logins: list[tuple[str, str]] = []

    def signed_in(self) -> bool:
        return True

    def login(self, username: str, password: str) -> None:
        if password != "right":
            raise AuthError("Wrong user name or password.")
        self.logins.append((username, password))

    def logout(self) -> None:
        pass

    def json_request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        return {"changes": [], "next_cursor": "c", "has_more": False,
                "reset_required": False, "estimated_remaining": 0}


Worker = tuple[SyncWorker, ScriptedTransport]


@pytest.fixture
def worker(tmp_path: Path, qtbot: QtBot) -> Iterator[Worker]:
    db = Database.open(tmp_path / "w.sqlite3")
    t = ScriptedTransport()
    w = SyncWorker(db, t, TokenStore(CredentialStore("agent-desktop-wtest")),  # type: ignore[arg-type]
                   interval_s=30, backoff=Backoff(1.0, 8.0, rand=lambda: 1.0))
    yield w, t
    w.shutdown()
    db.close()


def statuses(w: SyncWorker) -> list[str]:
    out: list[str] = []
    w.status_changed.connect(out.append)
    return out


def test_success_goes_online_and_schedules_the_interval(worker: Worker, qtbot: QtBot) -> None:
    w, _t = worker
    seen = statuses(w)
    with qtbot.waitSignal(w.last_synced):
        w.start()
    assert seen == ["syncing", "online"]
    assert w._timer is not None and w._timer.isActive() and w._timer.interval() == 30_000


def test_transient_failure_is_offline_with_growing_backoff(worker: Worker, qtbot: QtBot) -> None:
    w, t = worker
    t.fail = TransientError("Cannot reach the sync server at http://x.")
    errors: list[str] = []
    w.error.connect(errors.append)
    seen = statuses(w)
    w.start()
    assert seen[-1] == "offline" and errors[-1].startswith("Cannot reach")
    first = w._timer.interval() if w._timer else -1
    w.sync_now()
    second = w._timer.interval() if w._timer else -1
    assert (first, second) == (1000, 2000)  # rand=1.0: the full exponential ceiling
    w.local_change()  # offline: a local edit does not hammer a dead server
    assert w._debounce is not None and not w._debounce.isActive()
    t.fail = None
    w.network_reachable(True)
    assert seen[-1] == "online" and errors[-1] == ""


def test_schema_mismatch_stops_with_a_plain_error(worker: Worker, qtbot: QtBot) -> None:
    w, t = worker
    t.fail = SchemaMismatch("Please update the app; your local changes are kept.")
    errors: list[str] = []
    w.error.connect(errors.append)
    seen = statuses(w)
    w.start()
    assert seen[-1] == "error" and "update the app" in errors[-1]
    assert w._timer is not None and w._timer.interval() > 250_000  # rarely retried


def test_auth_failure_waits_for_sign_in(worker: Worker, qtbot: QtBot) -> None:
    w, t = worker
    t.fail = AuthError("Your session with the sync server has ended. Please sign in again.")
    seen = statuses(w)
    w.start()
    assert seen[-1] == "signed_out"
    assert w._timer is not None and not w._timer.isActive()
    with qtbot.waitSignal(w.sign_in_failed) as failed:
        w.sign_in("agent", "wrong", False)
    assert failed.args == ["Wrong user name or password."]
    t.fail = None
    with qtbot.waitSignal(w.signed_in):
        w.sign_in("agent", "right", False)
    assert seen[-1] == "online" and t.logins == [("agent", "right")]


def test_factory_builds_a_service_from_settings(tmp_path: Path, qtbot: QtBot) -> None:
    from agent_desktop.settings import Settings
    from sync.client.conflicts import ConflictStore
    from sync.client.factory import build_sync_service

    settings = Settings.load(tmp_path / "settings.toml")
    settings.set("server.sync_interval_s", 12)
    settings.set("server.ca_file", "/etc/ssl/company.pem")
    db = Database.open(tmp_path / "f.sqlite3")
    try:
        service = build_sync_service(db, settings, CredentialStore("agent-desktop-f"),
                                     tmp_path / "rec", "https://sync.example:8443")
        assert service.sync.interval_s == 12
        assert service.transport is not None
        assert service.transport.config.verify == "/etc/ssl/company.pem"
        assert isinstance(service.conflicts, ConflictStore)
        service.stop()  # never started: returns at once
    finally:
        db.close()


def test_changes_that_cannot_be_applied_are_reported(worker: Worker, qtbot: QtBot) -> None:
    w, t = worker
    t.json_request = lambda method, path, **_: {  # type: ignore[method-assign]
        "changes": [{"entity": "invoice", "uuid": "i1", "op": "upsert", "version": 1,
                     "data": {}}],
        "next_cursor": "c", "has_more": False, "reset_required": False}
    errors: list[str] = []
    w.error.connect(errors.append)
    w.start()
    assert errors and "could not be applied" in errors[-1] and "invoice" in errors[-1]


def test_a_full_disk_is_named_and_sql_never_reaches_the_status_bar(worker: Worker,
                                                                  qtbot: QtBot) -> None:
    """An unexpected failure's own text can be SQL (with customer data); the agent reads
    what happened and that it will be retried."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    w, t = worker
    cause = sqlite3.OperationalError("database or disk is full")
    t.fail = OperationalError("INSERT INTO customers (name) VALUES (?)", ("王小明",),  # type: ignore[assignment]
                              cause)
    errors: list[str] = []
    w.error.connect(errors.append)
    seen = statuses(w)
    w.start()
    assert seen[-1] == "error"
    assert "disk that holds your data is full" in errors[-1]
    assert "INSERT" not in errors[-1] and "王小明" not in errors[-1]
    assert w._timer is not None and w._timer.isActive()  # retried later

    t.fail = RuntimeError("SELECT secret FROM x")  # type: ignore[assignment]
    w.sync_now()
    assert errors[-1] == ("Sync failed (RuntimeError); details are in the log. "
                          "It will try again.")
