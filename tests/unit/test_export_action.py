"""The export action: real widgets (offscreen), real exporter, real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from agent_desktop.customers import CustomerService
from agent_desktop.exporting import CustomerExporter, ExportFormat
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from ui.export_action import ExportController

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support (raise|propagateSizeHints)")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "t.sqlite3")
    svc = CustomerService(d, PhoneNormalizer("CN"))
    svc.create_customer({"name": "张伟", "city": "北京"}, phone="13800138000")
    svc.create_customer({"name": "Ann Lee", "company": "Acme, Inc."})
    yield d
    d.close()


@pytest.fixture
def controller(qtbot: QtBot, db: Database) -> Iterator[ExportController]:
    parent = QWidget()
    qtbot.addWidget(parent)
    ctl = ExportController(CustomerExporter(db), parent)
    yield ctl
    ctl.wait_idle()


def test_export_runs_in_background_and_reports(qtbot: QtBot, controller: ExportController,
                                               tmp_path: Path) -> None:
    with qtbot.waitSignal(controller.finished, timeout=20000) as blocker:
        controller.export_to(tmp_path / "customers", ExportFormat.XLSX)
        assert not controller.action.isEnabled()  # one export at a time
    result = blocker.args[0]
    assert result.rows == 2 and result.path == tmp_path / "customers.xlsx"
    assert controller.action.isEnabled()
    wb = openpyxl.load_workbook(result.path, read_only=True)
    rows = [[c or "" for c in r] for r in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    assert rows[1][0] == "张伟" and rows[1][9] == "13800138000"
    assert rows[2][1] == "Acme, Inc."
    boxes = controller.parent().findChildren(QMessageBox, "exportMessage")  # type: ignore[union-attr]
    assert boxes and "2 customers exported" in boxes[-1].text()


def test_export_failure_is_told_plainly(qtbot: QtBot, controller: ExportController,
                                        tmp_path: Path) -> None:
    with qtbot.waitSignal(controller.failed, timeout=20000) as blocker:
        controller.export_to(tmp_path / "missing" / "c.csv", ExportFormat.CSV_UTF8)
    assert "does not exist" in blocker.args[0]
    assert controller.action.isEnabled()
