"""The dialer panel on a real PowerDialer: model checked, buttons drive the state machine,
labels follow it, the call list comes from the current list."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from agent_desktop.dialer import (
    CallListStore,
    DialerError,
    DialerMode,
    DialerState,
    EntryStatus,
    PowerDialer,
)
from tests.unit.test_dialer import CN, DE, FakeDial, T
from tests.unit.test_wrapup import FakeClock, make_customer, make_db, make_settings
from ui.dialer_panel import CUSTOMER_ID_ROLE, DialerPanel, DialerQueueModel


def setup(tmp_path: Path) -> tuple[PowerDialer, FakeClock, FakeDial, list[int]]:
    db = make_db(tmp_path)
    ids = [make_customer(db, "甲", (CN,)), make_customer(db, "dnc", (DE,), dnc=True),
           make_customer(db, "乙", (DE,))]
    clock = FakeClock(T)
    dial = FakeDial()
    d = PowerDialer(db, make_settings(tmp_path), dial, clock=clock, preview_seconds=3,
                    local_tz=UTC, tick_interval_ms=0)
    return d, clock, dial, ids


def test_queue_model_passes_the_model_tester(tmp_path: Path, qtmodeltester: object) -> None:
    d, _clock, _dial, ids = setup(tmp_path)
    model = DialerQueueModel(d)
    qtmodeltester.check(model)  # type: ignore[attr-defined]
    d.load(ids)
    qtmodeltester.check(model)  # type: ignore[attr-defined]
    assert model.rowCount() == 3
    assert model.data(model.index(0, 0)) == "甲"
    assert model.data(model.index(2, 0), CUSTOMER_ID_ROLE) == ids[2]
    d.start()
    assert model.data(model.index(0, 2)) == "Now"
    d.skip()  # eligibility is checked as entries come up: the do-not-call one is skipped now
    assert model.data(model.index(1, 2)) == "Skipped"
    assert model.data(model.index(0, 2)) == "Skipped"
    assert model.data(model.index(2, 2)) == "Now"


def test_panel_start_countdown_skip_and_power_mode(tmp_path: Path, qtbot: QtBot) -> None:
    d, clock, dial, ids = setup(tmp_path)
    panel = DialerPanel(d, ids_provider=lambda: ids)
    qtbot.addWidget(panel)
    previewed: list[int] = []
    panel.customer_previewed.connect(previewed.append)
    assert not panel.pause_button.isEnabled()
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert d.state is DialerState.PREVIEW and panel.next_name.text() == "甲"
    assert previewed == [ids[0]]
    assert panel.countdown.text().startswith("Calling in 3 s")
    assert panel.progress.value() == 0 and panel.progress.maximum() == 3
    qtbot.mouseClick(panel.skip_button, Qt.MouseButton.LeftButton)
    assert d.entries[0].status is EntryStatus.SKIPPED and panel.next_name.text() == "乙"
    assert "do-not-call" in panel.message.text()
    assert panel.progress.value() == 2
    clock.advance(seconds=2)
    d.tick()
    assert panel.countdown.text().startswith("Calling in 1 s")
    qtbot.mouseClick(panel.dial_button, Qt.MouseButton.LeftButton)
    assert dial.calls == [(ids[2], DE)] and panel.countdown.text() == "Calling…"
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert panel.pause_button.text() == "&Resume"
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert d.state is DialerState.CALLING
    panel.mode.setCurrentIndex(panel.mode.findData("power"))
    assert d.mode is DialerMode.POWER
    d.on_call_ended(dial.last_log, "answered", "Customer hung up")
    assert panel.countdown.text() == "Wrap up the call to continue."
    d.on_wrapup_saved(dial.last_log, ids[2])
    assert d.state is DialerState.FINISHED and panel.progress.value() == 3
    assert panel.start_button.isEnabled()
    assert "finished" in panel.message.text()


def test_start_without_a_list_says_so(tmp_path: Path, qtbot: QtBot) -> None:
    d, _clock, _dial, _ids = setup(tmp_path)
    panel = DialerPanel(d, ids_provider=lambda: [])
    qtbot.addWidget(panel)
    panel.start()
    assert "call list is empty" in panel.message.text()


def test_no_provider_disables_loading(tmp_path: Path, qtbot: QtBot) -> None:
    d, _clock, _dial, _ids = setup(tmp_path)
    panel = DialerPanel(d)
    qtbot.addWidget(panel)
    assert not panel.load_button.isEnabled()
    assert panel.load_current_list() == 0


def test_saved_call_lists_round_trip_and_bad_input(tmp_path: Path, qtbot: QtBot) -> None:
    d, _clock, _dial, ids = setup(tmp_path)
    store = CallListStore(tmp_path / "call-lists")
    panel = DialerPanel(d, ids_provider=lambda: ids, lists=store)
    qtbot.addWidget(panel)
    assert panel.saved_lists.count() == 0
    assert not panel.save_current_list() and "Give the call list a name" in panel.message.text()
    panel.list_name.setText("华东 leads")
    assert panel.save_current_list()
    assert store.names() == ["华东 leads"] and panel.saved_lists.count() == 1
    assert store.load("华东 leads") == ids
    d.load([ids[2]])
    panel.saved_lists.activated.emit(0)
    assert [e.customer_id for e in d.entries] == ids
    assert "3 customers" in panel.message.text()
    (tmp_path / "call-lists" / "broken.json").write_text("{nope", encoding="utf-8")
    with pytest.raises(DialerError, match="is damaged"):
        store.load("broken")
    with pytest.raises(DialerError, match="no saved call list"):
        store.load("missing")
    with pytest.raises(DialerError, match="call list is empty"):
        store.save("empty", [])
