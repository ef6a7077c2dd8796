"""The import dialog: file → preview and column mapping → duplicates → import → report.

Every step that touches the file or the database runs on a QThreadPool thread through
`BackgroundTask`; the dialog only reacts to its signals, so a 100,000-row import never
freezes the window. Open it with `open()` (non-blocking).

Signals:
    imported(object): the ImportResult, once a run finished (also when it stopped early),
        so the main window can refresh the customer list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from agent_desktop.importing import (
    ENCODINGS,
    DuplicateAction,
    Field,
    ImportPlan,
    ImportResult,
    ImportService,
    MappingError,
    Preview,
    ReadOptions,
)
from agent_desktop.importing.mapping import check_mapping
from agent_desktop.importing.readers import DELIMITERS, encoding_label
from ui.import_models import (
    BackgroundTask,
    DuplicatesModel,
    PreviewModel,
    ProblemsModel,
    Work,
    action_label,
    field_label,
)

log = logging.getLogger(__name__)


class _ActionDelegate(QStyledItemDelegate):
    """A combo box for the Action column of the duplicates table."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,
                     index: QModelIndex | QPersistentModelIndex) -> QWidget:
        combo = QComboBox(parent)
        for a in DuplicateAction:
            combo.addItem(action_label(a), a.value)
        return combo

    def setEditorData(self, editor: QWidget,
                      index: QModelIndex | QPersistentModelIndex) -> None:
        if isinstance(editor, QComboBox):
            editor.setCurrentIndex(max(0, editor.findData(
                index.data(Qt.ItemDataRole.EditRole))))

    def setModelData(self, editor: QWidget, model: QAbstractItemModel,
                     index: QModelIndex | QPersistentModelIndex) -> None:
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentData(), Qt.ItemDataRole.EditRole)


class ImportDialog(QDialog):
    """Wizard-like dialog; `ImportDialog(importer_service, parent)`."""

    imported = Signal(object)

    PAGE_FILE, PAGE_DUPLICATES, PAGE_REPORT = range(3)

    def __init__(self, service: ImportService, parent: QWidget | None = None,
                 pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._pool = pool or QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._task: BackgroundTask | None = None
        self._preview: Preview | None = None
        self._plan: ImportPlan | None = None
        self.import_result: ImportResult | None = None
        self.mapping_combos: list[QComboBox] = []
        self.setWindowTitle(self.tr("Import customers"))
        self.resize(900, 620)

        self.pages = QStackedWidget(self)
        self.pages.addWidget(self._build_file_page())
        self.pages.addWidget(self._build_duplicates_page())
        self.pages.addWidget(self._build_report_page())

        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setObjectName("importStatus")
        self.progress = QProgressBar(self)
        self.progress.hide()
        self.back_button = QPushButton(self.tr("Back"), self)
        self.next_button = QPushButton(self.tr("Check file"), self)
        self.cancel_button = QPushButton(self.tr("Cancel"), self)
        self.back_button.clicked.connect(self._back)
        self.next_button.clicked.connect(self._next)
        self.cancel_button.clicked.connect(self._cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addStretch()
        for b in (self.back_button, self.next_button, self.cancel_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._update_buttons()

    # -- pages ---------------------------------------------------------------------------

    def _build_file_page(self) -> QWidget:
        page = QWidget(self)
        self.path_edit = QLineEdit(page)
        self.path_edit.setReadOnly(True)
        self.path_edit.setPlaceholderText(self.tr("Choose a CSV or Excel (.xlsx) file"))
        choose = QPushButton(self.tr("Choose file…"), page)
        choose.clicked.connect(self._choose_file)
        self.encoding_combo = QComboBox(page)
        self.encoding_combo.addItem(self.tr("Detect automatically"), "")
        for code, label in ENCODINGS.items():
            self.encoding_combo.addItem(label, code)
        self.delimiter_combo = QComboBox(page)
        self.delimiter_combo.addItem(self.tr("Detect automatically"), "")
        names = {",": self.tr("Comma"), ";": self.tr("Semicolon"), "\t": self.tr("Tab"),
                 "|": self.tr("Vertical bar")}
        for d in DELIMITERS:
            self.delimiter_combo.addItem(names[d], d)
        self.sheet_combo = QComboBox(page)
        self.sheet_label = QLabel(self.tr("Sheet:"), page)
        for combo in (self.encoding_combo, self.delimiter_combo, self.sheet_combo):
            combo.activated.connect(self._reload)
        self.format_notes = QLabel(page)
        self.format_notes.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(QLabel(self.tr("File:"), page))
        top.addWidget(self.path_edit, 1)
        top.addWidget(choose)
        opts = QHBoxLayout()
        opts.addWidget(QLabel(self.tr("Encoding:"), page))
        opts.addWidget(self.encoding_combo)
        opts.addWidget(QLabel(self.tr("Separator:"), page))
        opts.addWidget(self.delimiter_combo)
        opts.addWidget(self.sheet_label)
        opts.addWidget(self.sheet_combo)
        opts.addStretch()

        self.mapping_area = QScrollArea(page)
        self.mapping_area.setWidgetResizable(True)
        self.mapping_area.setMaximumHeight(170)
        self.preview_model = PreviewModel(self)
        self.preview_view = QTableView(page)
        self.preview_view.setModel(self.preview_model)

        layout = QVBoxLayout(page)
        layout.addLayout(top)
        layout.addLayout(opts)
        layout.addWidget(self.format_notes)
        layout.addWidget(QLabel(self.tr("Which customer field does each column hold?"), page))
        layout.addWidget(self.mapping_area)
        layout.addWidget(QLabel(self.tr("Preview (first rows):"), page))
        layout.addWidget(self.preview_view, 1)
        return page

    def _build_duplicates_page(self) -> QWidget:
        page = QWidget(self)
        self.check_summary = QLabel(page)
        self.check_summary.setWordWrap(True)
        self.duplicates_model = DuplicatesModel(self)
        self.duplicates_view = QTableView(page)
        self.duplicates_view.setModel(self.duplicates_model)
        self.duplicates_view.setItemDelegateForColumn(DuplicatesModel.ACTION_COLUMN,
                                                      _ActionDelegate(self.duplicates_view))
        all_row = QHBoxLayout()
        all_row.addWidget(QLabel(self.tr("For every group:"), page))
        for action in DuplicateAction:
            b = QPushButton(action_label(action), page)
            b.clicked.connect(lambda _=False, a=action: self.duplicates_model.set_all(a))
            all_row.addWidget(b)
        all_row.addStretch()
        layout = QVBoxLayout(page)
        layout.addWidget(self.check_summary)
        layout.addLayout(all_row)
        layout.addWidget(self.duplicates_view, 1)
        return page

    def _build_report_page(self) -> QWidget:
        page = QWidget(self)
        self.report_summary = QLabel(page)
        self.report_summary.setWordWrap(True)
        self.report_summary.setObjectName("reportSummary")
        self.problems_model = ProblemsModel(self)
        self.problems_view = QTableView(page)
        self.problems_view.setModel(self.problems_model)
        copy = QPushButton(self.tr("Copy report"), page)
        copy.clicked.connect(self.copy_report)
        save = QPushButton(self.tr("Save report…"), page)
        save.clicked.connect(self._choose_report_file)
        row = QHBoxLayout()
        row.addStretch()
        row.addWidget(copy)
        row.addWidget(save)
        layout = QVBoxLayout(page)
        layout.addWidget(self.report_summary)
        layout.addWidget(self.problems_view, 1)
        layout.addLayout(row)
        return page

    # -- step 1: file and mapping -------------------------------------------------------------

    def _choose_file(self) -> None:
        dialog = QFileDialog(self, self.tr("Import customers"))
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters([self.tr("Customer files (*.csv *.txt *.xlsx)"),
                               self.tr("All files (*)")])
        dialog.fileSelected.connect(lambda p: self.set_file(Path(p)))
        dialog.open()

    def set_file(self, path: Path) -> None:
        """Load a file's preview (in the background); resets the options to "detect"."""
        self.path_edit.setText(str(path))
        self.encoding_combo.setCurrentIndex(0)
        self.delimiter_combo.setCurrentIndex(0)
        self.sheet_combo.clear()
        self._reload()

    def options(self) -> ReadOptions:
        return ReadOptions(encoding=self.encoding_combo.currentData() or "",
                           delimiter=self.delimiter_combo.currentData() or "",
                           sheet=self.sheet_combo.currentText())

    def _reload(self) -> None:
        if not self.path_edit.text():
            return  # options changed before any file was chosen
        path = Path(self.path_edit.text())
        options = self.options()
        self._preview = None
        self._start(lambda _p, _c: self._service.preview(path, options), self._previewed,
                    self.tr("Reading the file…"))

    def _previewed(self, preview: Preview) -> None:
        old = self._preview
        self._preview = preview
        fmt = preview.format
        if fmt.kind == "xlsx":
            self.sheet_combo.blockSignals(True)
            self.sheet_combo.clear()
            self.sheet_combo.addItems(fmt.sheets)
            self.sheet_combo.setCurrentText(fmt.sheet)
            self.sheet_combo.blockSignals(False)
        for w in (self.encoding_combo, self.delimiter_combo):
            w.setEnabled(fmt.kind == "csv")
        self.sheet_combo.setVisible(fmt.kind == "xlsx")
        self.sheet_label.setVisible(fmt.kind == "xlsx")
        if fmt.kind == "csv":
            detected = self.tr("Detected: {0}, separated by {1}.").format(
                encoding_label(fmt.encoding),
                self.delimiter_combo.itemText(max(0, self.delimiter_combo.findData(
                    fmt.delimiter))))
        else:
            detected = self.tr("Excel workbook, sheet “{0}”.").format(fmt.sheet)
        self.format_notes.setText(" ".join([detected, *fmt.notes]))
        keep = old is not None and old.headers == preview.headers
        self._build_mapping(preview, self.mapping() if keep else preview.mapping)
        self.preview_model.set_preview(preview.headers, preview.rows, self.mapping())
        self._mapping_changed()

    def _build_mapping(self, preview: Preview, mapping: list[Field]) -> None:
        box = QWidget()
        grid = QGridLayout(box)
        self.mapping_combos = []
        sample = preview.rows[0][1] if preview.rows else ()
        for i, header in enumerate(preview.headers):
            grid.addWidget(QLabel(header or self.tr("(column {0})").format(i + 1), box), i, 0)
            value = sample[i] if i < len(sample) else ""
            grid.addWidget(QLabel(value[:40], box), i, 1)
            combo = QComboBox(box)
            for f in Field:
                combo.addItem(field_label(f), f.value)
            combo.setCurrentIndex(combo.findData(mapping[i].value))
            combo.currentIndexChanged.connect(self._mapping_changed)
            grid.addWidget(combo, i, 2)
            self.mapping_combos.append(combo)
        self.mapping_area.setWidget(box)

    def mapping(self) -> list[Field]:
        return [Field(c.currentData()) for c in self.mapping_combos]

    def _mapping_changed(self) -> None:
        if self._preview is None:
            return
        mapping = self.mapping()
        self.preview_model.set_mapping(mapping)
        try:
            check_mapping(mapping, self._preview.headers)
        except MappingError as exc:
            self._show_error(str(exc))
        else:
            self.status.setText(self.tr("{0} rows shown. Check the mapping, then press "
                                        "“Check file”.").format(len(self._preview.rows)))
            self.status.setStyleSheet("")
        self._update_buttons()

    # -- steps 2 and 3 ---------------------------------------------------------------------

    def _scan(self) -> None:
        preview, mapping = self._preview, self.mapping()
        assert preview is not None
        self._start(lambda p, c: self._service.scan(preview, mapping, p, c), self._scanned,
                    self.tr("Checking every row…"))

    def _scanned(self, plan: ImportPlan) -> None:
        self._plan = plan
        self.duplicates_model.set_groups(plan.groups)
        self.check_summary.setText(self.tr(
            "{0} rows checked: {1} can be imported, {2} will be rejected (listed in the "
            "report). {3} groups of rows share a phone number with each other or with an "
            "existing customer: choose what to do with each.").format(
            plan.total_rows, plan.valid_rows, len(plan.rejected), len(plan.groups)))
        self.pages.setCurrentIndex(self.PAGE_DUPLICATES)
        self.status.setText(" ".join(plan.format.notes))
        self._update_buttons()

    def _run(self) -> None:
        plan = self._plan
        assert plan is not None
        self._start(lambda p, c: self._service.run(plan, p, c), self._finished,
                    self.tr("Importing…"))

    def _finished(self, result: ImportResult) -> None:
        self.import_result = result
        self.problems_model.set_problems(result.problems)
        text = self.tr("{0} rows read: {1} imported as new customers, {2} merged into "
                       "existing ones, {3} skipped as duplicates, {4} rejected, {5} "
                       "warnings.").format(result.total_rows, result.imported, result.merged,
                                           result.skipped, len(result.rejected),
                                           len(result.warnings))
        if result.failure:
            text += " " + self.tr("The import STOPPED: {0} Rows up to line {1} were saved; "
                                  "nothing after it was imported.").format(
                result.failure, result.committed_through)
        elif result.cancelled:
            text += " " + self.tr("Cancelled: rows up to line {0} were saved; nothing after "
                                  "it was imported.").format(result.committed_through)
        self.report_summary.setText(text)
        self.pages.setCurrentIndex(self.PAGE_REPORT)
        self._update_buttons()
        self.imported.emit(result)

    # -- report --------------------------------------------------------------------------

    def copy_report(self) -> None:
        if self.import_result is not None:
            QGuiApplication.clipboard().setText(self.import_result.report_text())

    def _choose_report_file(self) -> None:
        dialog = QFileDialog(self, self.tr("Save report"))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("csv")
        dialog.setNameFilters([self.tr("CSV (*.csv)")])
        dialog.fileSelected.connect(lambda p: self.save_report(Path(p)))
        dialog.open()

    def save_report(self, path: Path) -> None:
        if self.import_result is None:
            return
        try:
            self.import_result.write_report(path)
        except OSError as exc:
            log.error("cannot save import report to %s: %r", path, exc)
            self._show_error(self.tr("Could not save the report: {0}").format(exc.strerror))
        else:
            self.status.setText(self.tr("Report saved to {0}.").format(path))

    # -- plumbing ----------------------------------------------------------------------------

    def _start(self, work: Work, done: Callable[..., None], message: str) -> None:
        task = BackgroundTask(work)
        task.signals.progress.connect(self._progress)
        task.signals.finished.connect(lambda value: self._task_done(task, done, value))
        task.signals.failed.connect(lambda text: self._task_failed(task, text))
        self._task = task
        self.status.setText(message)
        self.status.setStyleSheet("")
        self.progress.setRange(0, 0)
        self.progress.show()
        self._update_buttons()
        self._pool.start(task)

    def _progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def _task_done(self, task: BackgroundTask, done: Callable[..., None],
                   value: object) -> None:
        if task is not self._task:
            return  # a superseded preview
        self._task = None
        self.progress.hide()
        done(value)
        self._update_buttons()

    def _task_failed(self, task: BackgroundTask, text: str) -> None:
        if task is not self._task:
            return
        self._task = None
        self.progress.hide()
        self._show_error(text)
        self._update_buttons()

    def _show_error(self, text: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b3261e;")

    def busy(self) -> bool:
        return self._task is not None

    def _update_buttons(self) -> None:
        page = self.pages.currentIndex()
        busy = self.busy()
        self.back_button.setEnabled(not busy and page == self.PAGE_DUPLICATES)
        if page == self.PAGE_FILE:
            ok = self._preview is not None
            if ok:
                try:
                    check_mapping(self.mapping(), self._preview.headers)  # type: ignore[union-attr]
                except MappingError:
                    ok = False
            self.next_button.setText(self.tr("Check file"))
            self.next_button.setEnabled(ok and not busy)
        elif page == self.PAGE_DUPLICATES:
            self.next_button.setText(self.tr("Import"))
            self.next_button.setEnabled(not busy and self._plan is not None)
        else:
            self.next_button.setText(self.tr("Close"))
            self.next_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy or page != self.PAGE_REPORT)

    def _back(self) -> None:
        self.pages.setCurrentIndex(self.PAGE_FILE)
        self._plan = None
        self._update_buttons()

    def _next(self) -> None:
        page = self.pages.currentIndex()
        if page == self.PAGE_FILE:
            self._scan()
        elif page == self.PAGE_DUPLICATES:
            self._run()
        else:
            self.accept()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel.set()
            self.status.setText(self.tr("Cancelling after the current batch…"))
            return
        self.reject()

    def wait_idle(self, msecs: int = 30000) -> bool:
        """Block until the worker is done (for shutdown and tests)."""
        return bool(self._pool.waitForDone(msecs))

    def done(self, code: int) -> None:
        if self._task is not None:
            self._task.cancel.set()
            self._pool.waitForDone()
        super().done(code)

