"""Settings dialog generated from the schema: every setting editable, saved atomically."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDialogButtonBox, QLineEdit, QSpinBox

from agent_desktop.settings import SCHEMA, Settings
from ui.settings_dialog import SettingsDialog

pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")


def _save(dialog: SettingsDialog) -> None:
    box = dialog.findChild(QDialogButtonBox)
    assert box is not None
    box.button(QDialogButtonBox.StandardButton.Save).click()


def test_every_setting_has_an_editor_of_its_type(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = SettingsDialog(Settings.load(tmp_path / "s.toml"))
    qtbot.addWidget(dialog)
    assert set(dialog.editors) == {s.key for s in SCHEMA}
    for spec in SCHEMA:
        editor = dialog.editors[spec.key]
        expected = (QCheckBox if spec.type is bool else QSpinBox if spec.type is int
                    else QComboBox if spec.choices else QLineEdit)
        assert isinstance(editor, expected), spec.key
        assert dialog.value_of(spec.key) == spec.default


def test_changed_values_are_saved(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.toml"
    settings = Settings.load(path)
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.open()
    region = dialog.editors["general.default_region"]
    assert isinstance(region, QLineEdit)
    region.setText("DE")
    lang = dialog.editors["general.language"]
    assert isinstance(lang, QComboBox)
    lang.setCurrentText("zh_CN")
    with qtbot.waitSignal(dialog.saved) as sig:
        _save(dialog)
    assert sorted(sig.args[0]) == ["general.default_region", "general.language"]
    saved = tomllib.loads(path.read_text(encoding="utf-8"))
    assert saved == {"general": {"default_region": "DE", "language": "zh_CN"}}
    assert not dialog.isVisible()


def test_unwritable_file_is_reported_and_nothing_changes(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    settings = Settings.load(blocker / "s.toml")  # its folder is a file: save must fail
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.open()
    region = dialog.editors["general.default_region"]
    assert isinstance(region, QLineEdit)
    region.setText("US")
    _save(dialog)
    assert dialog.isVisible()
    assert dialog.error.text().startswith("Not saved:")
    assert settings.get("general.default_region") == "CN"  # all or nothing
