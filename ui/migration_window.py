"""The "Updating your database (one-time)…" window shown while a migration runs.

Why: a schema migration on a big database takes minutes (covering indexes at 1M customers:
~2 min). Without a window the agent sees nothing and kills the app, or waits in doubt. This
window says what is happening (the step and how many there are), how long it has been
running, and that it happens once; it stays responsive because the migration runs on a
worker thread (`agent_desktop.store_upgrade.StoreUpgrade`) and reports by signal.

Closing it asks first; stopping is safe (the running step is rolled back, the next start
resumes) and closes Agent Desktop, since the workspace cannot open an old-schema file.

When the disk has too little room for the copy kept before the update, it says how much is
needed and where, and lets the agent choose: update without a copy, or quit (and free up
space first). Nothing has been written when the question is asked.

Signals:
    stop_requested(): the agent confirmed stopping the update (or chose to quit).
    skip_backup_requested(): the agent chose to update without keeping a copy.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QLabel, QMessageBox, QProgressBar, QVBoxLayout, QWidget

from agent_desktop.store.space import format_size


def format_elapsed(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


class MigrationWindow(QWidget):
    stop_requested = Signal()
    skip_backup_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Agent Desktop"))
        self.setMinimumWidth(440)
        self._started = time.monotonic()
        self._finished = False
        self._stopping = False
        self._confirm: QMessageBox | None = None
        self._space_box: QMessageBox | None = None

        heading = QLabel(self.tr("Updating your database (one-time)…"), self)
        heading.setObjectName("migrationHeading")
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        heading.setFont(font)
        explain = QLabel(self.tr(
            "This version of Agent Desktop stores your customers in a faster way. On a large "
            "database this takes a few minutes, once. Your data is kept safe meanwhile."), self)
        explain.setWordWrap(True)
        self.step_label = QLabel(self.tr("Preparing…"), self)
        self.step_label.setObjectName("migrationStep")
        self.step_label.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("migrationProgress")
        self.progress.setRange(0, 0)  # busy: a step's own duration is not known
        self.progress.setTextVisible(False)  # the elapsed time below says more
        self.elapsed_label = QLabel(self)
        self.elapsed_label.setObjectName("migrationElapsed")
        self.elapsed_label.setAlignment(Qt.AlignmentFlag.AlignRight)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(24, 20, 24, 20)
        lay.setSpacing(10)
        for w in (heading, explain, self.step_label, self.progress, self.elapsed_label):
            lay.addWidget(w)

        self._tick = QTimer(self)
        self._tick.setInterval(500)
        self._tick.timeout.connect(self._update_elapsed)
        self._tick.start()
        self._update_elapsed()

    # -- driven by StoreUpgrade ---------------------------------------------------------------

    def show_step(self, text: str, number: int, count: int) -> None:
        """The step now running (1-based `number` of `count`)."""
        if self._stopping:
            return
        self.step_label.setText(self.tr("Step %1 of %2: %3").replace("%1", str(number))
                                .replace("%2", str(count)).replace("%3", text))
        self.progress.setRange(0, 0)  # busy until the step says how far it is

    def show_progress(self, done: int, total: int) -> None:
        """How far the current step is, when it knows (the copy of the file does)."""
        if total > 0 and not self._stopping:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))

    def ask_about_space(self, folder: str, needed: int, free: int) -> None:
        """Too little free disk for the copy: update without it, or quit (see module)."""
        if self._stopping or self._space_box is not None:
            return
        self.step_label.setText(self.tr("Not enough free disk space for a copy of your data."))
        text = self.tr(
            "Before the update, Agent Desktop keeps a copy of your data, and there is not "
            "enough free disk space for it: the copy needs %1 in %2, and only %3 is free.\n\n"
            "You can quit, free up space and start Agent Desktop again (recommended), or "
            "update now without a copy.")
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Not enough disk space"),
                          text.replace("%1", format_size(needed)).replace("%2", folder)
                          .replace("%3", format_size(free)),
                          QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("backupSpaceBox")
        quit_button = box.addButton(self.tr("Quit"), QMessageBox.ButtonRole.RejectRole)
        box.addButton(self.tr("Update without a copy"), QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(quit_button)
        box.finished.connect(lambda _r: self._space_answered(box.clickedButton() is not None
                                                             and box.clickedButton()
                                                             is not quit_button))
        self._space_box = box
        box.open()

    def _space_answered(self, without_copy: bool) -> None:
        self._space_box = None
        if self._finished or self._stopping:
            return
        if without_copy:
            self.step_label.setText(self.tr("Updating without a copy…"))
            self.skip_backup_requested.emit()
        else:
            self.request_stop()

    def center_on_screen(self) -> None:
        """Shown before the main window exists: centred where the agent looks."""
        self.adjustSize()
        screen = self.screen()
        if screen is not None:
            area = screen.availableGeometry()
            self.move(area.center().x() - self.width() // 2,
                      area.center().y() - self.height() // 2)

    def done(self) -> None:
        """The update ended (finished or stopped): close without asking."""
        self._finished = True
        self._tick.stop()
        for box in (self._confirm, self._space_box):
            if box is not None:
                box.close()
        self.close()

    # -- the agent closes the window ---------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._finished:
            event.accept()
            return
        event.ignore()
        if self._stopping or self._confirm is not None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Stop the update?"),
                          self.tr("Agent Desktop will close. Nothing is lost: the step "
                                  "in progress is undone and the update starts again the "
                                  "next time you open Agent Desktop."),
                          QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("stopMigrationBox")
        stop = box.addButton(self.tr("Stop and close"), QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(self.tr("Keep updating"), QMessageBox.ButtonRole.RejectRole)
        box.finished.connect(lambda _r: self._answered(box.clickedButton() is stop))
        self._confirm = box
        box.open()

    def _answered(self, stop: bool) -> None:
        self._confirm = None
        if stop and not self._finished:
            self.request_stop()

    def request_stop(self) -> None:
        """Stop the update (after the agent confirmed)."""
        if self._stopping:
            return
        self._stopping = True
        self.step_label.setText(self.tr("Stopping safely…"))
        self.stop_requested.emit()

    def _update_elapsed(self) -> None:
        self.elapsed_label.setText(self.tr("%1 elapsed").replace(
            "%1", format_elapsed(time.monotonic() - self._started)))
