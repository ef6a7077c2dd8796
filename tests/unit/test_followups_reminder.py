"""Follow-up reminders: the timer is armed to the next due task, fires at due time,
announces through the notifier, and one click on the popup asks to call the customer."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from agent_desktop.followups import FollowupService
from tests.unit.test_followups import NOW, add_task
from tests.unit.test_wrapup import FakeClock, make_customer, make_db
from ui.followups_reminder import MAX_WAIT_MS, FollowupReminder, ReminderPopup

pytestmark = pytest.mark.qt_log_ignore(
    r"This plugin does not support (raise|propagateSizeHints|grabbing the keyboard)")


def test_timer_armed_to_next_due_and_check_announces(tmp_path: Path, qtbot: QtBot) -> None:
    db = make_db(tmp_path)
    cid = make_customer(db, "张伟")
    clock = FakeClock(NOW)
    notes: list[tuple[str, str]] = []
    rem = FollowupReminder(FollowupService(db, clock=clock), clock=clock,
                           notify=lambda t, m: notes.append((t, m)))
    add_task(db, cid, "old", NOW - timedelta(hours=2))
    assert rem.start() == 1
    assert notes == [("Follow-ups", "1 follow-up(s) overdue.")]
    assert not rem.timer.isActive()
    add_task(db, cid, "报价", NOW + timedelta(minutes=5))
    add_task(db, cid, "second", NOW + timedelta(minutes=5))
    add_task(db, cid, "far", NOW + timedelta(hours=3))
    rem.rearm()
    assert rem.timer.isActive() and rem.timer.interval() == 5 * 60 * 1000
    clock.advance(minutes=5)
    with qtbot.waitSignal(rem.reminder) as blocker:
        due = rem.check()
    assert [f.title for f in blocker.args[0]] == ["报价", "second"] == [f.title for f in due]
    assert notes[-1] == ("Follow-up due", "Call 张伟 now: 报价 (+1 more)")
    assert rem.next_due == NOW + timedelta(hours=3)
    assert rem.timer.interval() == MAX_WAIT_MS  # long waits are cut into chunks
    clock.advance(minutes=10)
    assert rem.check() == [] and len(notes) == 2


def test_reminder_fires_at_the_real_due_time(tmp_path: Path, qtbot: QtBot) -> None:
    db = make_db(tmp_path)
    cid = make_customer(db, "real time")
    rem = FollowupReminder(FollowupService(db))
    rem.start()
    add_task(db, cid, "in a moment", datetime.now().astimezone() + timedelta(milliseconds=300))
    rem.rearm()
    with qtbot.waitSignal(rem.reminder, timeout=10_000) as blocker:
        pass
    assert blocker.args[0][0].title == "in a moment"


def test_popup_one_click_call(tmp_path: Path, qtbot: QtBot) -> None:
    db = make_db(tmp_path)
    cid = make_customer(db, "王芳", ("+8613700137000",))
    add_task(db, cid, "回访", NOW - timedelta(minutes=1))
    due = FollowupService(db, clock=FakeClock(NOW)).today()
    popup = ReminderPopup()
    qtbot.addWidget(popup)
    popup.show_followups(due)
    assert popup.isVisible() and popup.buttons[0].text() == "Call 王芳 — 回访"
    with qtbot.waitSignal(popup.call_requested) as blocker:
        qtbot.mouseClick(popup.buttons[0], Qt.MouseButton.LeftButton)
    assert blocker.args == [cid] and not popup.isVisible()
    popup.show_followups(due)
    popup.show_followups(due)  # refreshing replaces the buttons
    assert len(popup.buttons) == 1
