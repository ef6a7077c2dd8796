"""“Export customers…”: ask for a file name and format, write it off the GUI thread.

`ExportController(exporter, parent)` owns a QAction for the menu. The file dialog and the
result message are opened non-blocking; the export itself runs on a QThreadPool thread.

Signals:
    finished(object): the ExportResult.
    failed(str): a plain sentence (also shown to the agent).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog, QWidget

from agent_desktop.exporting import CustomerExporter, ExportFormat, ExportResult
from ui.import_models import BackgroundTask

log = logging.getLogger(__name__)


class ExportController(QObject):
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, exporter: CustomerExporter, parent: QWidget | None = None,
                 pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self._exporter = exporter
        self._parent = parent
        self._pool = pool or QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._task: BackgroundTask | None = None
        self._progress: QProgressDialog | None = None
        self.action = QAction(self.tr("Export customers…"), self)
        self.action.triggered.connect(self.choose_file)
        self._filters = {
            self.tr("Excel workbook (*.xlsx)"): ExportFormat.XLSX,
            self.tr("CSV, UTF-8 (*.csv)"): ExportFormat.CSV_UTF8,
            self.tr("CSV, GB18030 / GBK for older Chinese Excel (*.csv)"):
                ExportFormat.CSV_GB18030,
        }

    def choose_file(self) -> None:
        dialog = QFileDialog(self._parent, self.tr("Export customers"))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(list(self._filters))
        dialog.fileSelected.connect(
            lambda p: self.export_to(Path(p), self._filters.get(dialog.selectedNameFilter(),
                                                                ExportFormat.XLSX)))
        dialog.open()

    def busy(self) -> bool:
        return self._task is not None

    def export_to(self, path: Path, fmt: ExportFormat) -> None:
        """Start the export in the background (the suffix is added when missing)."""
        if self._task is not None:
            return
        if path.suffix.lower() != fmt.suffix:
            path = path.with_name(path.name + fmt.suffix)
        task = BackgroundTask(lambda p, c: self._exporter.export(path, fmt, None, p, c))
        self._task = task
        if self._parent is not None:
            self._progress = QProgressDialog(self.tr("Exporting customers…"),
                                             self.tr("Cancel"), 0, 0, self._parent)
            self._progress.canceled.connect(task.cancel.set)
            self._progress.show()
        task.signals.progress.connect(self._on_progress)
        task.signals.finished.connect(self._on_finished)
        task.signals.failed.connect(self._on_failed)
        self.action.setEnabled(False)
        self._pool.start(task)

    def wait_idle(self, msecs: int = 30000) -> bool:
        return bool(self._pool.waitForDone(msecs))

    def _on_progress(self, done: int, total: int) -> None:
        if self._progress is not None and total > 0:
            self._progress.setMaximum(total)
            self._progress.setValue(done)

    def _end(self) -> None:
        self._task = None
        self.action.setEnabled(True)
        if self._progress is not None:
            self._progress.reset()
            self._progress.deleteLater()
            self._progress = None

    def _on_finished(self, result: ExportResult) -> None:
        self._end()
        text = self.tr("{0} customers exported to {1}.").format(result.rows, result.path)
        if result.warnings:
            text += "\n" + "\n".join(result.warnings)
        self._tell(QMessageBox.Icon.Information, text)
        self.finished.emit(result)

    def _on_failed(self, text: str) -> None:
        self._end()
        self._tell(QMessageBox.Icon.Warning, text)
        self.failed.emit(text)

    def _tell(self, icon: QMessageBox.Icon, text: str) -> None:
        if self._parent is None:
            return
        box = QMessageBox(icon, self.tr("Export customers"), text,
                          QMessageBox.StandardButton.Ok, self._parent)
        box.setObjectName("exportMessage")
        box.open()
