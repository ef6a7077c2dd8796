"""zh_CN: the compiled catalogue is complete and actually used by the running UI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTranslator

from agent_desktop.app import AppContext, build, parse_args
from ui.i18n import TRANSLATIONS_DIR, resolve_language

# The workspace alone: no SIP stack and no sync server in the test process.
ALONE = ["--no-phone", "--no-sync"]
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")

TS = TRANSLATIONS_DIR / "agent_desktop_zh_CN.ts"


def test_every_string_has_a_chinese_translation() -> None:
    root = ET.parse(TS).getroot()
    messages = list(root.iter("message"))
    assert len(messages) > 100
    unfinished = [m.findtext("source") for m in messages
                  if m.find("translation").get("type") in ("unfinished", "vanished")  # type: ignore[union-attr,operator]
                  or not "".join(m.find("translation").itertext()).strip()]  # type: ignore[union-attr]
    assert unfinished == [], "run scripts/update-translations.sh and translate these"
    qm = TS.with_suffix(".qm")
    assert qm.exists() and qm.stat().st_mtime >= TS.stat().st_mtime - 5


def test_app_runs_in_chinese(app_root: Path) -> None:
    ctx = build(parse_args([*ALONE, "--data-dir", str(app_root), "--demo-rows", "0",
                            "--lang", "zh_CN"]))
    assert isinstance(ctx, AppContext)
    try:
        w = ctx.window
        assert w.windowTitle() == "坐席工作台"
        assert w.file_menu.title() == "文件(&F)"
        assert w.tabs.tabText(0) == "客户"
        model = w.customer_list.model
        assert model.headerData(0, Qt.Orientation.Horizontal) == "姓名"
        assert "还没有客户" in w.customer_list.empty.text()  # empty DB: says what to do
        # Our catalogue and Qt's own qtbase_zh_CN (standard buttons, dialogs).
        assert sum(isinstance(k, QTranslator) for k in ctx.keep) == 2
    finally:
        ctx.close()


def test_system_language_resolves() -> None:
    assert resolve_language("zh_CN") == "zh_CN"
    assert resolve_language("system") != "system"


def test_language_from_settings(app_root: Path) -> None:
    from agent_desktop.paths import AppPaths

    paths = AppPaths.from_root(app_root)
    paths.ensure()
    paths.settings_file.write_text('[general]\nlanguage = "zh_CN"\n', encoding="utf-8")
    ctx = build(parse_args([*ALONE, "--data-dir", str(app_root), "--demo-rows", "0"]))
    assert isinstance(ctx, AppContext)
    try:
        assert ctx.window.windowTitle() == "坐席工作台"
    finally:
        ctx.close()
    # --lang wins over the setting.
    ctx = build(parse_args([*ALONE, "--data-dir", str(app_root), "--demo-rows", "0",
                            "--lang", "en"]))
    assert isinstance(ctx, AppContext)
    try:
        assert ctx.window.windowTitle() == "Agent Desktop"
    finally:
        ctx.close()


def test_import_dialog_labels_are_translated(app_root: Path) -> None:
    """The import models' strings sit outside any class: they once used a wrapper around
    `translate()` that lupdate could not see, and showed in English in a Chinese UI."""
    from agent_desktop.importing import DuplicateAction, Field
    from ui.import_models import action_label, field_label

    ctx = build(parse_args([*ALONE, "--data-dir", str(app_root), "--demo-rows", "0",
                            "--lang", "zh_CN"]))
    assert isinstance(ctx, AppContext)
    try:
        assert field_label(Field.NAME) == "姓名"
        assert field_label(Field.IGNORE) == "（不导入）"
        assert action_label(DuplicateAction.MERGE) == "合并"
    finally:
        ctx.close()
