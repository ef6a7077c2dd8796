"""The import dialog with real widgets (offscreen), a real service and a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agent_desktop.customers import CustomerService
from agent_desktop.importing import (
    DuplicateAction,
    DuplicateGroup,
    Field,
    ImportService,
    RowProblem,
)
from agent_desktop.importing.results import ExistingMatch
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer
from ui.import_dialog import ImportDialog
from ui.import_models import DuplicatesModel, PreviewModel, ProblemsModel

# The offscreen platform cannot propagate size hints; harmless and not ours.
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support (raise|propagateSizeHints)")

N = PhoneNormalizer("CN")
GBK_FILE = ("姓名,公司,城市,手机号,标签\r\n"
            "张伟,腾讯,深圳,13800138000,VIP\r\n"
            ",无名,上海,13900139000,\r\n"
            "李娜,京东,北京,13700137000,新客户\r\n"
            "王芳,,广州,12,\r\n")


@pytest.fixture
def dialog(qtbot: QtBot, db: Database) -> Iterator[ImportDialog]:
    dlg = ImportDialog(ImportService(db, N, batch_size=2))
    qtbot.addWidget(dlg)
    dlg.open()
    yield dlg
    dlg.wait_idle()


def wait_idle(qtbot: QtBot, dlg: ImportDialog) -> None:
    qtbot.waitUntil(lambda: not dlg.busy(), timeout=20000)


def test_models_pass_the_model_tester(qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    preview = PreviewModel()
    preview.set_preview(["姓名", "城市"], [(2, ("张伟", "北京")), (3, ("李娜",))],
                        [Field.NAME, Field.CITY])
    qtmodeltester.check(preview)
    assert preview.headerData(0, Qt.Orientation.Horizontal) == "姓名 → Name"
    assert preview.headerData(1, Qt.Orientation.Vertical) == "3"
    dups = DuplicatesModel()
    dups.set_groups([DuplicateGroup(0, [2, 5], ["张伟", "张伟"], ["+8613800138000"],
                                    [ExistingMatch(7, "张伟", "华为")])])
    qtmodeltester.check(dups)
    idx = dups.index(0, DuplicatesModel.ACTION_COLUMN)
    assert dups.setData(idx, "skip") and dups.data(idx) == "Skip"
    assert not dups.setData(idx, "explode")
    assert dups.data(dups.index(0, 3)) == "张伟 (华为)"
    problems = ProblemsModel()
    problems.set_problems([RowProblem(3, "rejected", "missing name", " | 上海")])
    qtmodeltester.check(problems)
    assert problems.data(problems.index(0, 0)) == "3"


def test_preview_mapping_duplicates_run_and_report(qtbot: QtBot, dialog: ImportDialog,
                                                   db: Database, tmp_path: Path) -> None:
    existing = CustomerService(db, N).create_customer({"name": "张伟", "company": "华为"},
                                                      phone="+86 138 0013 8000")
    path = tmp_path / "gbk.csv"
    path.write_bytes(GBK_FILE.encode("gbk"))
    dialog.set_file(path)
    wait_idle(qtbot, dialog)
    assert "GB18030" in dialog.format_notes.text()
    model = dialog.preview_model
    assert model.rowCount() == 4 and model.columnCount() == 5
    assert model.headerData(2, Qt.Orientation.Horizontal) == "城市 → City"
    assert [c.currentData() for c in dialog.mapping_combos] == [
        "name", "company", "city", "phone", "tags"]
    assert dialog.next_button.isEnabled()

    # Mapping change: the city column is left out; the preview header follows.
    city = dialog.mapping_combos[2]
    city.setCurrentIndex(city.findData(Field.IGNORE.value))
    assert model.headerData(2, Qt.Orientation.Horizontal) == "城市 → (do not import)"
    name = dialog.mapping_combos[0]
    name.setCurrentIndex(name.findData(Field.IGNORE.value))
    assert not dialog.next_button.isEnabled()
    assert "No column is mapped to “Name”" in dialog.status.text()
    name.setCurrentIndex(name.findData(Field.NAME.value))
    assert dialog.next_button.isEnabled()

    qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, dialog)
    assert dialog.pages.currentIndex() == ImportDialog.PAGE_DUPLICATES
    dups = dialog.duplicates_model
    assert dups.rowCount() == 1
    assert dups.data(dups.index(0, 0)) == "2"
    assert "华为" in dups.data(dups.index(0, 3))
    assert "1 will be rejected" in dialog.check_summary.text()
    dups.setData(dups.index(0, DuplicatesModel.ACTION_COLUMN), DuplicateAction.MERGE.value)

    with qtbot.waitSignal(dialog.imported, timeout=20000) as blocker:
        qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
    result = blocker.args[0]
    assert (result.imported, result.merged, len(result.rejected)) == (2, 1, 1)
    assert dialog.pages.currentIndex() == ImportDialog.PAGE_REPORT
    assert "2 imported as new customers, 1 merged" in dialog.report_summary.text()
    problems = dialog.problems_model
    rows = [(problems.data(problems.index(r, 0)), problems.data(problems.index(r, 2)))
            for r in range(problems.rowCount())]
    assert ("3", "missing name") in rows
    assert any(line == "5" and "kept as typed" in reason for line, reason in rows)

    dialog.copy_report()
    assert "3\trejected\tmissing name" in QGuiApplication.clipboard().text()
    report = tmp_path / "report.csv"
    dialog.save_report(report)
    assert "missing name" in report.read_text(encoding="utf-8-sig")
    with db.transaction() as s:
        names = sorted(s.scalars(select(Customer.name)))
        z = s.get(Customer, existing)
        assert z is not None and z.city == ""  # the city column was not imported
    assert names == sorted(["张伟", "李娜", "王芳"])
    with qtbot.waitSignal(dialog.accepted):
        qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)


def test_encoding_override_and_errors_are_shown(qtbot: QtBot, dialog: ImportDialog,
                                                tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(GBK_FILE.encode("gbk"))
    dialog.set_file(path)
    wait_idle(qtbot, dialog)
    dialog.encoding_combo.setCurrentIndex(dialog.encoding_combo.findData("utf-8-sig"))
    dialog.encoding_combo.activated.emit(dialog.encoding_combo.currentIndex())
    wait_idle(qtbot, dialog)
    assert "cannot be read: undecodable bytes" in dialog.status.text()
    assert not dialog.next_button.isEnabled()
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    dialog.set_file(empty)
    wait_idle(qtbot, dialog)
    assert dialog.status.text() == "The file is empty."
    assert not dialog.next_button.isEnabled()


def test_xlsx_sheet_choice(qtbot: QtBot, dialog: ImportDialog, tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Name", "Phone"])
    ws.append(["Ann", "+1 415 555 0100"])
    other = wb.create_sheet("Leads")
    other.append(["姓名", "城市"])
    other.append(["赵六", "杭州"])
    other.append(["钱七", "苏州"])
    path = tmp_path / "book.xlsx"
    wb.save(path)
    dialog.set_file(path)
    wait_idle(qtbot, dialog)
    assert dialog.sheet_combo.isVisibleTo(dialog)
    assert [dialog.sheet_combo.itemText(i) for i in range(dialog.sheet_combo.count())] == [
        "Sheet", "Leads"]
    assert dialog.preview_model.rowCount() == 1
    dialog.sheet_combo.setCurrentIndex(1)
    dialog.sheet_combo.activated.emit(1)
    wait_idle(qtbot, dialog)
    assert dialog.preview_model.rowCount() == 2
    assert dialog.preview_model.headerData(1, Qt.Orientation.Horizontal) == "城市 → City"


def test_action_combo_in_duplicates_table(qtbot: QtBot, dialog: ImportDialog, db: Database,
                                          tmp_path: Path) -> None:
    from PySide6.QtWidgets import QComboBox

    CustomerService(db, N).create_customer({"name": "张伟"}, phone="13800138000")
    path = tmp_path / "gbk.csv"
    path.write_bytes(GBK_FILE.encode("gbk"))
    dialog.set_file(path)
    wait_idle(qtbot, dialog)
    qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, dialog)
    view = dialog.duplicates_view
    index = dialog.duplicates_model.index(0, DuplicatesModel.ACTION_COLUMN)
    view.edit(index)
    editors = view.findChildren(QComboBox)
    assert len(editors) == 1
    combo = editors[0]
    assert combo.currentData() == "merge"
    combo.setCurrentIndex(combo.findData("new"))
    view.commitData(combo)
    assert dialog.duplicates_model.data(index, Qt.ItemDataRole.EditRole) == "new"
    with qtbot.waitSignal(dialog.imported, timeout=20000) as blocker:
        qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
    assert (blocker.args[0].imported, blocker.args[0].merged) == (3, 0)


def test_cancel_during_import_reports_what_was_saved(qtbot: QtBot, dialog: ImportDialog,
                                                     db: Database, tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("name,phone\n" + "".join(f"P{i},\n" for i in range(3000)),
                    encoding="utf-8")
    dialog.set_file(path)
    wait_idle(qtbot, dialog)
    qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, dialog)
    with qtbot.waitSignal(dialog.imported, timeout=60000) as blocker:
        qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
        assert dialog.busy() and dialog.cancel_button.isEnabled()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        assert dialog.isVisible()  # cancelling the work does not close the dialog
    result = blocker.args[0]
    assert result.cancelled and not result.complete
    assert "Cancelled: rows up to line" in dialog.report_summary.text()
    with db.transaction() as s:
        saved = len(list(s.scalars(select(Customer.id))))
    assert saved == result.imported < 3000
    # The last saved file line (header = line 1); 0 when the cancel beat the first batch.
    assert result.committed_through == (result.imported + 1 if result.imported else 0)
