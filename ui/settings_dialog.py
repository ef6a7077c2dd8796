"""Settings dialog generated from the declared schema (`agent_desktop.settings.SCHEMA`).

Why generated: settings are declared once (key, type, default, description); a hand-made
form would drift from the schema. Each section becomes a tab; the description is the label,
the key is the tooltip (what support asks for). Values are validated by `Settings.set`, whose
sentence is shown if one is refused; nothing is written until every value is accepted.

Signals:
    saved(list): keys whose value changed and were saved.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from agent_desktop.settings import SCHEMA, Settings, SettingsError
from ui.dialogs import error_label

log = logging.getLogger(__name__)


class SettingsDialog(QDialog):
    saved = Signal(list)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle(self.tr("Settings"))
        self.setMinimumWidth(560)
        self._settings = settings
        self.editors: dict[str, QWidget] = {}
        tabs = QTabWidget(self)
        forms: dict[str, QFormLayout] = {}
        section_titles = {"general": self.tr("General"), "server": self.tr("Server"),
                          "sip": self.tr("Phone line"), "dialplan": self.tr("Dial plan"),
                          "audio": self.tr("Audio"), "recording": self.tr("Recording"),
                          "wrapup": self.tr("Wrap-up"), "dialer": self.tr("Dialer")}
        for spec in SCHEMA:
            section = spec.key.split(".", 1)[0]
            if section not in forms:
                page = QWidget(tabs)
                forms[section] = QFormLayout(page)
                tabs.addTab(page, section_titles.get(section, section))
            editor = self._editor(spec.type, spec.choices, settings.get(spec.key))
            editor.setObjectName(f"setting_{spec.key}")
            editor.setToolTip(spec.key)
            self.editors[spec.key] = editor
            label = QLabel(QCoreApplication.translate("SettingsSchema", spec.description), self)
            label.setWordWrap(True)
            forms[section].addRow(label, editor)
        self.error = error_label(self)
        note = QLabel(self.tr("Some changes (language, phone line) apply after a restart."),
                      self)
        note.setEnabled(False)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(note)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    @staticmethod
    def _editor(kind: type, choices: tuple[str, ...], value: Any) -> QWidget:
        if kind is bool:
            box = QCheckBox()
            box.setChecked(bool(value))
            return box
        if kind is int:
            spin = QSpinBox()
            spin.setRange(0, 1_000_000)
            spin.setValue(int(value))
            return spin
        if choices:
            combo = QComboBox()
            combo.addItems(list(choices))
            combo.setCurrentText(str(value))
            return combo
        return QLineEdit(str(value))

    def value_of(self, key: str) -> Any:
        w = self.editors[key]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return w.value()
        if isinstance(w, QComboBox):
            return w.currentText()
        assert isinstance(w, QLineEdit)
        return w.text().strip()

    def _save(self) -> None:
        new = {key: self.value_of(key) for key in self.editors}
        changed = [k for k, v in new.items() if v != self._settings.get(k)]
        old = {k: self._settings.get(k) for k in changed}
        try:
            for key in changed:
                self._settings.set(key, new[key])
            self._settings.save()
        except (SettingsError, OSError) as exc:
            for key, value in old.items():  # all or nothing
                self._settings.values[key] = value
            log.warning("settings not saved: %s", exc)
            self.error.setText(self.tr("Not saved: %1").replace("%1", str(exc)))
            self.error.show()
            return
        log.info("settings saved: %s", ", ".join(changed) or "no changes")
        self.saved.emit(changed)
        self.accept()

