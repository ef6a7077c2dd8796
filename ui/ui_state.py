"""Window geometry, splitter sizes and column widths, kept apart from settings.

Why apart: settings are the agent's choices (TOML, validated, synced by hand between
machines); UI state is disposable layout memory. A broken or foreign ui-state file must
never cost a setting, so it lives in its own INI file (`AppPaths.ui_state_file`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QHeaderView, QMainWindow, QSplitter

log = logging.getLogger(__name__)


class UiState:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._qs = QSettings(str(path), QSettings.Format.IniFormat)

    def _bytes(self, key: str) -> QByteArray | None:
        value = self._qs.value(key)
        if isinstance(value, QByteArray) and not value.isEmpty():
            return value
        return None

    def restore_window(self, window: QMainWindow) -> bool:
        ok = False
        if (geo := self._bytes("window/geometry")) is not None:
            ok = window.restoreGeometry(geo)
        if (state := self._bytes("window/state")) is not None:
            window.restoreState(state)
        if not ok:
            log.debug("no usable saved window geometry")
        return ok

    def restore_splitter(self, name: str, splitter: QSplitter) -> bool:
        state = self._bytes(f"splitter/{name}")
        return state is not None and splitter.restoreState(state)

    def restore_header(self, name: str, header: QHeaderView) -> bool:
        state = self._bytes(f"header/{name}")
        return state is not None and header.restoreState(state)

    def save_window(self, window: QMainWindow) -> None:
        self._qs.setValue("window/geometry", window.saveGeometry())
        self._qs.setValue("window/state", window.saveState())

    def save_splitter(self, name: str, splitter: QSplitter) -> None:
        self._qs.setValue(f"splitter/{name}", splitter.saveState())

    def save_header(self, name: str, header: QHeaderView) -> None:
        self._qs.setValue(f"header/{name}", header.saveState())

    def value(self, key: str, default: str = "") -> str:
        v = self._qs.value(key, default)
        return str(v) if v is not None else default

    def set_value(self, key: str, value: str) -> None:
        self._qs.setValue(key, value)

    def sync(self) -> None:
        self._qs.sync()
        if self._qs.status() != QSettings.Status.NoError:
            log.warning("could not write UI state file %s (%s)", self._qs.fileName(),
                        self._qs.status())
