"""Status-bar indicator for sync: online / offline / syncing / signed out, last sync time,
a progress bar during the first download, and the number of unresolved conflicts.

It only displays what the sync worker reports (typed signals, connected by app.py) and
emits what the agent asks for; it never talks to the network or the database.

Signals:
    sign_in_requested(): the agent clicked while signed out.
    conflicts_requested(): the agent clicked the conflicts counter.
    sync_requested(): the agent clicked "sync now".
"""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

STATUSES = ("online", "offline", "syncing", "signed_out", "error")
_DOTS = {"online": "#2e7d32", "offline": "#9e9e9e", "syncing": "#1565c0",
         "signed_out": "#ef6c00", "error": "#c62828"}


def format_synced_at(iso: str, now: datetime | None = None) -> str:
    """Local time "14:03" today, "Nov 21 14:03" on other days; "" if unparsable."""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    local = when.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%b %d %H:%M")


class SyncStatusWidget(QWidget):
    sign_in_requested = Signal()
    conflicts_requested = Signal()
    sync_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = "offline"
        self.last_synced_iso = ""
        self.error_text = ""
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        self.dot = QLabel("●", self)
        self.label = QLabel(self)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.conflicts_button = QToolButton(self)
        self.conflicts_button.setAutoRaise(True)
        self.conflicts_button.hide()
        self.conflicts_button.clicked.connect(self.conflicts_requested)
        self.action_button = QToolButton(self)
        self.action_button.setAutoRaise(True)
        self.action_button.clicked.connect(self._on_action)
        for w in (self.dot, self.label, self.progress, self.conflicts_button,
                  self.action_button):
            layout.addWidget(w)
        self._render()

    @Slot(str)
    def set_status(self, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown sync status {status!r}")
        self.status = status
        if status != "syncing":
            self.progress.hide()
        self._render()

    @Slot(str)
    def set_last_synced(self, iso: str) -> None:
        self.last_synced_iso = iso
        self._render()

    @Slot(str)
    def set_error(self, message: str) -> None:
        self.error_text = message
        self._render()

    @Slot(int, int)
    def set_initial_progress(self, done: int, total: int) -> None:
        """First download: a bar with rows so far; hidden again when done == total."""
        if total <= 0 or done >= total:
            self.progress.hide()
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(self.tr("First download %p%"))
        self.progress.show()

    @Slot(int)
    def set_conflicts(self, count: int) -> None:
        self.conflicts_button.setVisible(count > 0)
        self.conflicts_button.setText(self.tr("%n conflict(s)", "", count))

    def _on_action(self) -> None:
        if self.status == "signed_out":
            self.sign_in_requested.emit()
        else:
            self.sync_requested.emit()

    def _render(self) -> None:
        texts = {
            "online": self.tr("Online"),
            "offline": self.tr("Offline"),
            "syncing": self.tr("Syncing…"),
            "signed_out": self.tr("Not signed in"),
            "error": self.tr("Sync problem"),
        }
        text = texts[self.status]
        when = format_synced_at(self.last_synced_iso) if self.last_synced_iso else ""
        if when:
            text += " · " + self.tr("last synced %1").replace("%1", when)
        self.label.setText(text)
        self.dot.setStyleSheet(f"color: {_DOTS[self.status]};")
        self.action_button.setText(self.tr("Sign in…") if self.status == "signed_out"
                                   else self.tr("Sync now"))
        self.action_button.setEnabled(self.status != "syncing")
        tip = self.error_text or text
        self.setToolTip(tip)
        self.label.setToolTip(tip)
