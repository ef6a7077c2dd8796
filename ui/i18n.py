"""Translators: our own `.qm` plus Qt's `qtbase_*.qm` (standard buttons, dialogs).

The language comes from `--lang`, else the `general.language` setting; "system" follows the
OS locale. A missing catalogue is not an error — the UI falls back to English — but it is
logged, because a zh_CN agent seeing English means a packaging problem.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QLibraryInfo, QLocale, QTranslator
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "resources" / "translations"


def resolve_language(language: str) -> str:
    """'system' → the OS locale name (e.g. zh_CN); other values unchanged."""
    if language in ("", "system"):
        return QLocale.system().name()
    return language


def install_translators(app: QApplication, language: str) -> list[QTranslator]:
    """Install translators for `language`; returns them (keep references alive)."""
    lang = resolve_language(language)
    QLocale.setDefault(QLocale(lang))
    installed: list[QTranslator] = []
    if lang.startswith("en") or lang in ("C", "POSIX"):
        return installed
    ours = QTranslator(app)
    if ours.load(f"agent_desktop_{lang}", str(TRANSLATIONS_DIR)):
        app.installTranslator(ours)
        installed.append(ours)
    else:
        log.warning("no translation agent_desktop_%s.qm in %s; using English",
                    lang, TRANSLATIONS_DIR)
    qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    qtbase = QTranslator(app)
    if qtbase.load(QLocale(lang), "qtbase", "_", qt_dir):
        app.installTranslator(qtbase)
        installed.append(qtbase)
    else:
        log.info("Qt's own qtbase translation for %s not found in %s", lang, qt_dir)
    return installed
