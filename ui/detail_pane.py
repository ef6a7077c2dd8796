"""Right pane: the whole customer — editable fields, phones, tags, follow-ups, notes, calls.

Fields are edited in place and saved together (Save / Ctrl+S) in one service transaction;
tags, notes, phones and follow-ups save at once when added (an agent on a call expects a
tag to stick without a second click). What is shown is always re-read from the service after
a save, so the pane never displays something that is not in the database.

Signals:
    message(str): a short status-bar message (saved, or why something was refused).
    customer_shown(int): a (different) customer is now on screen — the softphone's "call
        the selected customer" and the dialer follow this.
    cleared(): no customer is shown any more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QDateTime, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from agent_desktop.customers import (
    STAGES,
    STATUSES,
    CustomerDetail,
    CustomerService,
    NotFoundError,
    ValidationError,
)
from ui.dialogs import PhoneDialog, error_label, fill_combo
from ui.labels import phone_label, stage_label, status_label
from ui.tag_editor import TagEditor

log = logging.getLogger(__name__)

TASK_ID_ROLE = int(Qt.ItemDataRole.UserRole) + 1
PHONE_ID_ROLE = int(Qt.ItemDataRole.UserRole) + 2
TEXT_FIELDS = ("name", "company", "city", "country", "email", "owner")


def _local(dt: datetime) -> str:
    return dt.astimezone().strftime("%Y-%m-%d %H:%M")


def _fit_rows(view: QListWidget, max_rows: int) -> None:
    """Size a short list to its content (up to `max_rows`) so panes do not show blank boxes."""
    rows = max(1, min(view.count(), max_rows))
    total = sum(view.sizeHintForRow(i) for i in range(min(view.count(), max_rows)))
    total = max(total, rows * view.fontMetrics().height() + 4)
    view.setFixedHeight(total + 2 * view.frameWidth() + 4)


class DetailPane(QStackedWidget):
    message = Signal(str)
    customer_shown = Signal(int)
    cleared = Signal()
    play_recording_requested = Signal(str)  # path relative to the recordings folder

    def __init__(self, service: CustomerService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailPane")
        self._service = service
        self.detail: CustomerDetail | None = None
        self._loading = False

        self.placeholder = QLabel(self.tr(
            "Select a customer on the left to see their details.\n"
            "Ctrl+F searches, the arrow keys move, Enter opens."), self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setEnabled(False)
        self.addWidget(self.placeholder)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget(scroll)
        scroll.setWidget(body)
        self.addWidget(scroll)
        self._scroll = scroll
        outer = QVBoxLayout(body)
        outer.setContentsMargins(12, 8, 12, 12)
        outer.setSpacing(10)

        self.title = QLabel(body)
        self.title.setObjectName("detailTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.subtitle = QLabel(body)
        self.subtitle.setEnabled(False)
        outer.addWidget(self.title)
        outer.addWidget(self.subtitle)

        outer.addWidget(self._build_fields(body))
        outer.addWidget(self._build_phones(body))
        tags_box = QGroupBox(self.tr("Tags"), body)
        self.tags = TagEditor(tags_box)
        QVBoxLayout(tags_box).addWidget(self.tags)
        self.tags.add_requested.connect(self._add_tag)
        self.tags.remove_requested.connect(self._remove_tag)
        outer.addWidget(tags_box)
        outer.addWidget(self._build_tasks(body))
        outer.addWidget(self._build_notes(body))
        outer.addWidget(self._build_calls(body))
        outer.addStretch(1)

        save = QShortcut(QKeySequence.StandardKey.Save, self)
        save.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        save.activated.connect(self.save_fields)

    # -- building ------------------------------------------------------------------------

    def _build_fields(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox(self.tr("Details"), parent)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.inputs: dict[str, QLineEdit] = {}
        labels = {"name": self.tr("Name"), "company": self.tr("Company"),
                  "city": self.tr("City"), "country": self.tr("Country"),
                  "email": self.tr("E-mail"), "owner": self.tr("Owner")}
        for key in TEXT_FIELDS:
            edit = QLineEdit(box)
            edit.setObjectName(f"field_{key}")
            edit.textEdited.connect(self._mark_dirty)
            self.inputs[key] = edit
            form.addRow(labels[key], edit)
        self.status = QComboBox(box)
        self.status.setObjectName("field_status")
        self.stage = QComboBox(box)
        self.stage.setObjectName("field_stage")
        self.do_not_call = QCheckBox(self.tr("Do not call this customer"), box)
        self.do_not_call.setObjectName("field_do_not_call")
        for w in (self.status, self.stage):
            w.activated.connect(self._mark_dirty)
        self.do_not_call.toggled.connect(self._mark_dirty)
        form.addRow(self.tr("Status"), self.status)
        form.addRow(self.tr("Stage"), self.stage)
        form.addRow("", self.do_not_call)
        self.field_error = error_label(box)
        form.addRow(self.field_error)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.revert_button = QPushButton(self.tr("Revert"), box)
        self.revert_button.clicked.connect(self.revert)
        self.save_button = QPushButton(self.tr("Save"), box)
        self.save_button.setObjectName("saveFields")
        self.save_button.setToolTip(self.tr("Save the changed fields (Ctrl+S)"))
        self.save_button.clicked.connect(self.save_fields)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        form.addRow(buttons)
        return box

    def _build_phones(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox(self.tr("Phone numbers"), parent)
        layout = QVBoxLayout(box)
        self.phones = QListWidget(box)
        self.phones.setObjectName("phoneList")
        self.phones.itemDoubleClicked.connect(lambda _i: self._edit_phone())
        layout.addWidget(self.phones)
        row = QHBoxLayout()
        add = QPushButton(self.tr("Add phone…"), box)
        add.setObjectName("addPhone")
        add.clicked.connect(self._add_phone)
        edit = QPushButton(self.tr("Edit…"), box)
        edit.clicked.connect(self._edit_phone)
        remove = QPushButton(self.tr("Remove"), box)
        remove.clicked.connect(self._remove_phone)
        row.addWidget(add)
        row.addWidget(edit)
        row.addWidget(remove)
        row.addStretch(1)
        layout.addLayout(row)
        return box

    def _build_tasks(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox(self.tr("Follow-ups"), parent)
        layout = QVBoxLayout(box)
        self.tasks = QListWidget(box)
        self.tasks.setObjectName("taskList")
        self.tasks.itemChanged.connect(self._task_toggled)
        layout.addWidget(self.tasks)
        row = QHBoxLayout()
        self.task_title = QLineEdit(box)
        self.task_title.setObjectName("taskTitle")
        self.task_title.setPlaceholderText(self.tr("Follow-up, e.g. Send the price list"))
        self.task_due = QDateTimeEdit(box)
        self.task_due.setObjectName("taskDue")
        self.task_due.setCalendarPopup(True)
        self.task_due.setDisplayFormat("yyyy-MM-dd HH:mm")
        add = QPushButton(self.tr("Schedule"), box)
        add.setObjectName("addTask")
        add.clicked.connect(self._add_task)
        self.task_title.returnPressed.connect(self._add_task)
        row.addWidget(self.task_title, 1)
        row.addWidget(self.task_due)
        row.addWidget(add)
        layout.addLayout(row)
        return box

    def _build_notes(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox(self.tr("Notes"), parent)
        layout = QVBoxLayout(box)
        self.notes = QListWidget(box)
        self.notes.setObjectName("noteList")
        self.notes.setWordWrap(True)
        self.notes.setAlternatingRowColors(True)
        layout.addWidget(self.notes)
        self.note_input = QPlainTextEdit(box)
        self.note_input.setObjectName("noteInput")
        self.note_input.setPlaceholderText(self.tr("Write a note…"))
        self.note_input.setMaximumHeight(64)
        layout.addWidget(self.note_input)
        row = QHBoxLayout()
        row.addStretch(1)
        add = QPushButton(self.tr("Add note"), box)
        add.setObjectName("addNote")
        add.clicked.connect(self._add_note)
        row.addWidget(add)
        layout.addLayout(row)
        return box

    def _build_calls(self, parent: QWidget) -> QGroupBox:
        box = QGroupBox(self.tr("Calls"), parent)
        layout = QVBoxLayout(box)
        self.calls = QListWidget(box)
        self.calls.setObjectName("callList")
        self.no_calls = QLabel(self.tr("No calls yet."), box)
        self.no_calls.setEnabled(False)
        self.play = QPushButton(self.tr("▶ Play recording"), box)
        self.play.setObjectName("playRecording")
        self.play.setEnabled(False)
        self.play.clicked.connect(self._play_selected)
        self.calls.currentRowChanged.connect(self._call_selected)
        self.calls.itemActivated.connect(lambda _item: self._play_selected())
        layout.addWidget(self.calls)
        layout.addWidget(self.no_calls)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.play)
        layout.addLayout(row)
        return box

    def _selected_recording(self) -> str | None:
        item = self.calls.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _call_selected(self, _row: int) -> None:
        self.play.setEnabled(self._selected_recording() is not None)

    def _play_selected(self) -> None:
        if (path := self._selected_recording()) is not None:
            self.play_recording_requested.emit(path)

    # -- showing -------------------------------------------------------------------------

    def show_customer(self, customer_id: int) -> bool:
        """Load and show one customer; False (and a message) if it no longer exists.

        Unsaved field edits are saved first; if they are invalid the current customer
        stays on screen with the reason (False), so typing is never silently lost.
        """
        if self.detail is not None and self.is_dirty():
            if self.detail.id == customer_id:
                return True
            if not self.save_fields():
                return False
        try:
            detail = self._service.load(customer_id)
        except NotFoundError as exc:
            self.message.emit(str(exc))
            self.clear()
            return False
        self._show(detail, keep_fields=False)
        return True

    def reload_if_shown(self, customer_id: int) -> None:
        """Another part of the app changed this customer: refresh, keeping unsaved typing."""
        if self.detail is None or self.detail.id != customer_id:
            return
        try:
            detail = self._service.load(customer_id)
        except NotFoundError as exc:
            self.message.emit(str(exc))
            self.clear()
            return
        self._show(detail, keep_fields=self.is_dirty())

    def clear(self) -> None:
        had = self.detail is not None
        self.detail = None
        self.setCurrentWidget(self.placeholder)
        if had:
            self.cleared.emit()

    def focus_first_field(self) -> None:
        self.inputs["name"].setFocus(Qt.FocusReason.OtherFocusReason)

    def _show(self, d: CustomerDetail, *, keep_fields: bool) -> None:
        self._loading = True
        changed = self.detail is None or self.detail.id != d.id
        try:
            self.detail = d
            self.title.setText(d.name)
            sub = " · ".join(x for x in (d.company, d.city, d.country) if x)
            self.subtitle.setText(sub)
            self.subtitle.setVisible(bool(sub))
            if not keep_fields:
                for key, edit in self.inputs.items():
                    edit.setText(str(d.field(key)))
                    edit.setCursorPosition(0)
                fill_combo(self.status, STATUSES, d.status, status_label)
                fill_combo(self.stage, STAGES, d.stage, stage_label)
                self.do_not_call.setChecked(d.do_not_call)
                self._set_dirty(False)
                self.field_error.hide()
            self._show_phones(d)
            self.tags.set_tags(d.tags)
            self.tags.set_known_tags(self._service.tag_names())
            self._show_tasks(d)
            self.notes.clear()
            for n in d.notes:
                item = QListWidgetItem(f"{_local(n.created_at)}  {n.author}\n{n.body}".strip())
                self.notes.addItem(item)
            if not d.notes:
                empty = QListWidgetItem(self.tr("No notes yet."))
                empty.setFlags(Qt.ItemFlag.NoItemFlags)
                self.notes.addItem(empty)
            self.calls.clear()
            for c in d.calls:
                direction = self.tr("Outgoing") if c.direction == "out" else self.tr("Incoming")
                mins, secs = divmod(int(c.talk_seconds), 60)
                text = f"{_local(c.started_at)}  {direction}  {c.number}  {mins}:{secs:02d}"
                if c.outcome:
                    text += f"  {c.outcome}"
                if c.disposition:
                    text += f"  · {c.disposition}"
                item = QListWidgetItem(("▶ " if c.recording_path else "") + text)
                item.setData(Qt.ItemDataRole.UserRole, c.recording_path)
                if c.recording_path:
                    item.setToolTip(self.tr("Recorded call — double-click or press Enter "
                                            "to listen"))
                self.calls.addItem(item)
            _fit_rows(self.notes, 4)
            _fit_rows(self.calls, 5)
            self.calls.setVisible(bool(d.calls))
            self.no_calls.setVisible(not d.calls)
            self.play.setVisible(any(c.recording_path for c in d.calls))
            self.play.setEnabled(False)
            now = QDateTime.currentDateTime().addSecs(3600)
            self.task_due.setDateTime(now.addSecs(-(now.time().minute() % 15) * 60))
            self.setCurrentWidget(self._scroll)
        finally:
            self._loading = False
        if changed:
            self.customer_shown.emit(d.id)

    def _show_phones(self, d: CustomerDetail) -> None:
        self.phones.clear()
        warn = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        for p in d.phones:
            item = QListWidgetItem(f"{phone_label(p.label)}    {p.display}")
            item.setData(PHONE_ID_ROLE, p.id)
            if not p.valid:
                item.setIcon(warn)
                item.setToolTip(self.tr("This number may not be dialable: %1")
                                .replace("%1", p.problem))
            elif p.e164:
                item.setToolTip(p.e164)
            self.phones.addItem(item)
        if not d.phones:
            empty = QListWidgetItem(self.tr("No phone number — use Add phone…"))
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.phones.addItem(empty)
        _fit_rows(self.phones, 4)

    def _show_tasks(self, d: CustomerDetail) -> None:
        self.tasks.blockSignals(True)
        self.tasks.clear()
        now = datetime.now().astimezone()
        for t in sorted(d.tasks, key=lambda t: (t.done_at is not None, t.due_at)):
            item = QListWidgetItem(f"{_local(t.due_at)}  {t.title}")
            item.setData(TASK_ID_ROLE, t.id)
            if t.done_at is None:
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked)
                item.setToolTip(self.tr("Tick when done"))
                if t.overdue(now):
                    item.setForeground(Qt.GlobalColor.darkRed)
            else:
                item.setFlags(Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked)
            self.tasks.addItem(item)
        if not d.tasks:
            empty = QListWidgetItem(self.tr("No follow-ups scheduled."))
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.tasks.addItem(empty)
        _fit_rows(self.tasks, 5)
        self.tasks.blockSignals(False)

    # -- fields --------------------------------------------------------------------------

    def is_dirty(self) -> bool:
        return self.save_button.isEnabled()

    def _mark_dirty(self, *_args: object) -> None:
        if not self._loading:
            self._set_dirty(True)

    def _set_dirty(self, dirty: bool) -> None:
        self.save_button.setEnabled(dirty)
        self.revert_button.setEnabled(dirty)

    def field_values(self) -> dict[str, object]:
        values: dict[str, object] = {k: e.text() for k, e in self.inputs.items()}
        values["status"] = self.status.currentData()
        values["stage"] = self.stage.currentData()
        values["do_not_call"] = self.do_not_call.isChecked()
        return values

    def save_fields(self) -> bool:
        if self.detail is None:
            return False
        try:
            detail = self._service.update_fields(self.detail.id, self.field_values())
        except ValidationError as exc:
            self._refuse(str(exc), exc.field)
            return False
        except NotFoundError as exc:
            self._refuse(str(exc), "")
            return False
        self._show(detail, keep_fields=False)
        self.message.emit(self.tr("Saved %1").replace("%1", detail.name))
        return True

    def revert(self) -> None:
        if self.detail is not None:
            self._show(self.detail, keep_fields=False)

    def _refuse(self, text: str, field: str) -> None:
        log.info("detail pane refused input: %s", text)
        self.field_error.setText(text)
        self.field_error.show()
        if field in self.inputs:
            self.inputs[field].setFocus(Qt.FocusReason.OtherFocusReason)
        self.message.emit(text)

    def _apply(self, action: str, fn: Callable[[], CustomerDetail]) -> bool:
        """Run a service edit; show its result or its refusal."""
        try:
            detail = fn()
        except (ValidationError, NotFoundError) as exc:
            self._refuse(str(exc), getattr(exc, "field", ""))
            return False
        self._show(detail, keep_fields=self.is_dirty())
        self.message.emit(action)
        return True

    # -- tags, phones, tasks, notes ------------------------------------------------------

    def _add_tag(self, name: str) -> None:
        d = self.detail
        if d is not None and self._apply(self.tr("Tag added"),
                                         lambda: self._service.add_tag(d.id, name)):
            self.tags.clear_input()

    def _remove_tag(self, name: str) -> None:
        d = self.detail
        if d is not None:
            self._apply(self.tr("Tag removed"), lambda: self._service.remove_tag(d.id, name))

    def _add_note(self) -> None:
        d = self.detail
        body = self.note_input.toPlainText()
        if d is not None and self._apply(self.tr("Note added"),
                                         lambda: self._service.add_note(d.id, body)):
            self.note_input.clear()

    def _add_task(self) -> None:
        d = self.detail
        title = self.task_title.text()
        due = self.task_due.dateTime().toPython()
        assert isinstance(due, datetime)
        due = due.astimezone()
        if d is not None and self._apply(self.tr("Follow-up scheduled"),
                                         lambda: self._service.add_task(d.id, title, due)):
            self.task_title.clear()

    def _task_toggled(self, item: QListWidgetItem) -> None:
        task_id = item.data(TASK_ID_ROLE)
        if task_id is None or item.checkState() != Qt.CheckState.Checked:
            return
        self._apply(self.tr("Follow-up done"),
                    lambda: self._service.complete_task(int(task_id)))

    def _selected_phone(self) -> int | None:
        item = self.phones.currentItem()
        pid = item.data(PHONE_ID_ROLE) if item is not None else None
        return int(pid) if pid is not None else None

    def _add_phone(self) -> None:
        if self.detail is not None:
            self._open_phone_dialog(None, "", "mobile")

    def _edit_phone(self) -> None:
        pid = self._selected_phone()
        if self.detail is None or pid is None:
            return
        phone = next(p for p in self.detail.phones if p.id == pid)
        self._open_phone_dialog(pid, phone.raw, phone.label)

    def _open_phone_dialog(self, phone_id: int | None, raw: str, label: str) -> PhoneDialog:
        dialog = PhoneDialog(self._service.normalize_phone, raw, label, self)
        dialog.setObjectName("phoneDialog")
        d = self.detail
        assert d is not None

        def done() -> None:
            number, kind = dialog.result_values()
            if phone_id is None:
                self._apply(self.tr("Phone added"),
                            lambda: self._service.add_phone(d.id, number, kind))
            else:
                self._apply(self.tr("Phone saved"),
                            lambda: self._service.update_phone(phone_id, number, kind))
            dialog.deleteLater()

        dialog.accepted.connect(done)
        dialog.rejected.connect(dialog.deleteLater)
        dialog.open()
        self.phone_dialog = dialog
        return dialog

    def _remove_phone(self) -> None:
        pid = self._selected_phone()
        if pid is not None:
            self._apply(self.tr("Phone removed"), lambda: self._service.remove_phone(pid))
