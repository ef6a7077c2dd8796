"""Follow-up reminders at their due time, with one click to call.

Why one single-shot QTimer armed to the next due task (not polling): it costs nothing
between reminders and fires on the minute. After each firing, or whenever tasks change
(a wrap-up set a follow-up, one was completed), it is re-armed from the database. Long
waits are cut into chunks of at most 10 minutes so a suspended laptop or a changed system
clock cannot make a reminder late by hours.

Signals (FollowupReminder):
    reminder(list): `Followup`s that have just fallen due (connect to ReminderPopup).
Signals (ReminderPopup):
    call_requested(int): the agent clicked "Call <name>" on a reminder (customer id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QVBoxLayout, QWidget

from agent_desktop.followups import Followup, FollowupService, local_clock

log = logging.getLogger(__name__)

MAX_WAIT_MS = 10 * 60 * 1000
Notify = Callable[[str, str], None]  # (title, text): tray balloon / status bar


class FollowupReminder(QObject):
    reminder = Signal(list)

    def __init__(self, service: FollowupService, *, clock: Callable[[], datetime] = local_clock,
                 notify: Notify | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._clock = clock
        self._notify = notify
        self._last_checked = clock()
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setTimerType(Qt.TimerType.CoarseTimer)
        self.timer.timeout.connect(self.check)
        self.next_due: datetime | None = None

    def start(self) -> int:
        """Arm the timer; returns how many follow-ups are already overdue (said once)."""
        self._last_checked = self._clock()
        overdue = [f for f in self._service.today() if f.overdue]
        if overdue and self._notify is not None:
            self._notify(self.tr("Follow-ups"), self.tr("%n follow-up(s) overdue.", "",
                                                        len(overdue)).replace(
                "%n", str(len(overdue))))
        self.rearm()
        return len(overdue)

    def rearm(self) -> None:
        """Re-read the next due time (call after any task change)."""
        now = self._clock()
        self.next_due = self._service.next_due_after(self._last_checked)
        if self.next_due is None:
            self.timer.stop()
            return
        wait_ms = int((self.next_due - now).total_seconds() * 1000)
        self.timer.start(max(0, min(wait_ms, MAX_WAIT_MS)))

    def check(self) -> list[Followup]:
        """Announce what fell due since the last check, then re-arm."""
        now = self._clock()
        due = self._service.due_between(self._last_checked, now)
        self._last_checked = now
        if due:
            log.info("follow-up reminder: %d due", len(due))
            self.reminder.emit(due)
            if self._notify is not None:
                first = due[0]
                text = self.tr("Call %1 now: %2").replace("%1", first.customer_name).replace(
                    "%2", first.title)
                if len(due) > 1:
                    text += " " + self.tr("(+%1 more)").replace("%1", str(len(due) - 1))
                self._notify(self.tr("Follow-up due"), text)
        self.rearm()
        return due


class ReminderPopup(QFrame):
    """A small always-on-top card: one "Call <name>" button per due follow-up.

    Signals:
        call_requested(int): a Call button was clicked (customer id).
    """

    call_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Tool | Qt.WindowType.WindowStaysOnTopHint)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setWindowTitle(self.tr("Follow-ups due"))
        self._layout = QVBoxLayout(self)
        self.title = QLabel(self.tr("Follow-ups due now"))
        self.title.setStyleSheet("font-weight: 600;")
        self._layout.addWidget(self.title)
        self.buttons: list[QPushButton] = []
        self.dismiss = QPushButton(self.tr("Dismiss"))
        self.dismiss.clicked.connect(self.hide)
        self._layout.addWidget(self.dismiss)

    def show_followups(self, due: list[Followup]) -> None:
        for b in self.buttons:
            self._layout.removeWidget(b)
            b.deleteLater()
        self.buttons = []
        for i, f in enumerate(due[:8]):
            text = self.tr("Call %1 — %2").replace("%1", f.customer_name).replace(
                "%2", f.title or f.phone)
            b = QPushButton(text)
            b.setToolTip(f.phone)
            b.clicked.connect(lambda _=False, cid=f.customer_id: self._call(cid))
            self._layout.insertWidget(1 + i, b)
            self.buttons.append(b)
        if self.buttons:
            self.show()
            self.buttons[0].setFocus()

    def _call(self, customer_id: int) -> None:
        self.hide()
        self.call_requested.emit(customer_id)
