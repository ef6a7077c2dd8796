"""pytest-qt tests of the sync widgets: status indicator, sign-in dialog, conflicts view
(with the real ConflictStore over a real local database)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, SyncConflict
from sync.client.conflicts import ConflictStore
from ui.sync_conflicts_view import ConflictsModel, ConflictsView
from ui.sync_signin_dialog import SignInDialog
from ui.sync_status import SyncStatusWidget, format_synced_at

# The offscreen platform plugin warns about window-manager hints it cannot honour.
pytestmark = pytest.mark.qt_log_ignore(
    r"This plugin does not support (raise|propagateSizeHints)\(\)")


def test_status_widget_shows_each_state_and_last_sync(qtbot: QtBot) -> None:
    w = SyncStatusWidget()
    qtbot.addWidget(w)
    w.set_status("offline")
    assert w.label.text() == "Offline"
    w.set_last_synced("2026-11-22T06:00:00.000+00:00")
    w.set_status("online")
    assert w.label.text().startswith("Online · last synced ")
    assert format_synced_at("2026-11-22T06:00:00.000+00:00") in w.label.text()
    w.set_status("syncing")
    assert not w.action_button.isEnabled()
    w.set_error("Cannot reach the sync server at http://x.")
    w.set_status("error")
    assert w.toolTip() == "Cannot reach the sync server at http://x."
    with pytest.raises(ValueError):
        w.set_status("confused")


def test_status_widget_buttons_emit_the_right_request(qtbot: QtBot) -> None:
    w = SyncStatusWidget()
    qtbot.addWidget(w)
    w.set_status("signed_out")
    assert w.action_button.text() == "Sign in…"
    with qtbot.waitSignal(w.sign_in_requested):
        qtbot.mouseClick(w.action_button, Qt.MouseButton.LeftButton)
    w.set_status("online")
    with qtbot.waitSignal(w.sync_requested):
        qtbot.mouseClick(w.action_button, Qt.MouseButton.LeftButton)
    w.set_conflicts(0)
    assert w.conflicts_button.isHidden()
    w.set_conflicts(3)
    assert not w.conflicts_button.isHidden() and "3" in w.conflicts_button.text()
    with qtbot.waitSignal(w.conflicts_requested):
        qtbot.mouseClick(w.conflicts_button, Qt.MouseButton.LeftButton)


def test_status_widget_initial_progress(qtbot: QtBot) -> None:
    w = SyncStatusWidget()
    qtbot.addWidget(w)
    w.show()
    w.set_status("syncing")
    w.set_initial_progress(500, 2000)
    assert w.progress.isVisible() and w.progress.value() == 500
    assert w.progress.maximum() == 2000
    w.set_initial_progress(2000, 2000)
    assert not w.progress.isVisible()


def test_format_synced_at_today_and_other_day() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert ":" in format_synced_at("2026-11-22T11:00:00+00:00", now)
    assert format_synced_at("garbage") == ""
    older = format_synced_at("2026-01-02T11:00:00+00:00", now)
    assert "Jan" in older


def test_sign_in_dialog_validates_then_emits_and_closes(qtbot: QtBot) -> None:
    d = SignInDialog("http://127.0.0.1:9", username="")
    qtbot.addWidget(d)
    d.open()
    with qtbot.assertNotEmitted(d.sign_in_requested):
        d.submit()
    assert d.message.text() == "Enter your user name."
    qtbot.keyClicks(d.username, "agent")
    with qtbot.assertNotEmitted(d.sign_in_requested):
        d.submit()
    assert d.message.text() == "Enter your password."
    qtbot.keyClicks(d.password, "s3cret")
    d.remember.setChecked(True)
    with qtbot.waitSignal(d.sign_in_requested) as sig:
        qtbot.keyClick(d.password, Qt.Key.Key_Return)
    assert sig.args == ["agent", "s3cret", True]
    assert d.password.text() == "" and not d.username.isEnabled()  # busy, password dropped
    d.on_sign_in_failed("Wrong user name or password.")
    assert d.message.text() == "Wrong user name or password." and d.username.isEnabled()
    qtbot.keyClicks(d.password, "right")
    with qtbot.waitSignal(d.finished) as done:
        d.submit()
        d.on_signed_in("agent")
    assert done.args == [QDialog.DialogCode.Accepted.value]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "a.sqlite3")
    with d.transaction(applying_remote=True) as s:
        s.add(Customer(uuid="u1", name="李雷", city="Paris"))
        s.add(SyncConflict(entity="customer", entity_uuid="u1", field="city",
                           local_value="Lyon", server_value="Paris"))
        s.add(SyncConflict(entity="tag", entity_uuid="t1", field="*",
                           local_value='{"name": "vip"}', server_value="rejected: forbidden"))
    yield d
    d.close()


def test_conflicts_model_passes_modeltester(qtbot: QtBot, qtmodeltester: ModelTester,
                                            db: Database) -> None:
    model = ConflictsModel(ConflictStore(db))
    model.reload()
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    texts = {model.data(model.index(r, 2)) for r in range(2)}
    assert "Lyon" in texts


def test_conflicts_view_restore_and_dismiss(qtbot: QtBot, db: Database) -> None:
    view = ConflictsView(ConflictStore(db))
    qtbot.addWidget(view)
    view.show()
    rows = {view.model.item(r).field: r for r in range(view.model.rowCount())}
    view.select_row(rows["*"])
    assert not view.restore_button.isEnabled() and view.dismiss_button.isEnabled()
    view.select_row(rows["city"])
    assert view.restore_button.isEnabled()
    with qtbot.waitSignal(view.changed):
        qtbot.mouseClick(view.restore_button, Qt.MouseButton.LeftButton)
    with db.transaction() as s:
        assert s.scalars(select(Customer)).one().city == "Lyon"
    assert view.model.rowCount() == 1
    view.select_row(0)
    with qtbot.waitSignal(view.changed):
        qtbot.mouseClick(view.dismiss_button, Qt.MouseButton.LeftButton)
    assert view.model.rowCount() == 0 and view.empty.isVisible()


def test_conflicts_view_shows_a_refused_restore(qtbot: QtBot, db: Database) -> None:
    with db.transaction(applying_remote=True) as s:
        s.scalars(select(Customer)).one().deleted_at = "2026-01-01T00:00:00Z"
    view = ConflictsView(ConflictStore(db))
    qtbot.addWidget(view)
    rows = {view.model.item(r).field: r for r in range(view.model.rowCount())}
    view.select_row(rows["city"])
    with qtbot.assertNotEmitted(view.changed):
        view.restore_selected()
    assert "deleted" in view.message.text()
