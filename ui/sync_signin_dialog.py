"""Sign-in to the central server: user name, password, "remember me".

The dialog never performs the sign-in itself (that is network I/O, done on the sync
worker's thread): it validates the input, emits `sign_in_requested`, shows a busy state,
and closes on `on_signed_in` or shows the server's plain answer on `on_sign_in_failed`.
The password is not kept by the dialog after it is sent; with "remember me" the worker
stores it in the system keyring (never in settings or a file).

Signals:
    sign_in_requested(str, str, bool): user name, password, remember.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)


class SignInDialog(QDialog):
    sign_in_requested = Signal(str, str, bool)

    def __init__(self, server_url: str = "", username: str = "",
                 keyring_note: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Sign in to the sync server"))
        layout = QVBoxLayout(self)
        if server_url:
            layout.addWidget(QLabel(self.tr("Server: %1").replace("%1", server_url), self))
        form = QFormLayout()
        self.username = QLineEdit(username, self)
        self.username.setObjectName("username")
        self.password = QLineEdit(self)
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.remember = QCheckBox(self.tr("Remember my password (stored in the system "
                                          "keyring)"), self)
        form.addRow(self.tr("User name"), self.username)
        form.addRow(self.tr("Password"), self.password)
        layout.addLayout(form)
        layout.addWidget(self.remember)
        if keyring_note:
            note = QLabel(keyring_note, self)
            note.setWordWrap(True)
            layout.addWidget(note)
        self.message = QLabel(self)
        self.message.setObjectName("message")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c62828;")
        layout.addWidget(self.message)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText(self.tr("Sign in"))
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        if username:
            self.password.setFocus()

    @Slot()
    def submit(self) -> None:
        user = self.username.text().strip()
        password = self.password.text()
        if not user:
            self.message.setText(self.tr("Enter your user name."))
            self.username.setFocus()
            return
        if not password:
            self.message.setText(self.tr("Enter your password."))
            self.password.setFocus()
            return
        self.message.setText(self.tr("Signing in…"))
        self._set_busy(True)
        self.password.clear()
        self.sign_in_requested.emit(user, password, self.remember.isChecked())

    @Slot(str)
    def on_signed_in(self, _username: str) -> None:
        self._set_busy(False)
        self.message.clear()
        self.accept()

    @Slot(str)
    def on_sign_in_failed(self, reason: str) -> None:
        self._set_busy(False)
        self.message.setText(reason)
        self.password.setFocus()

    def _set_busy(self, busy: bool) -> None:
        for w in (self.username, self.password, self.remember):
            w.setEnabled(not busy)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not busy)
