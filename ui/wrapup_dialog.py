"""The wrap-up dialog: one key for the disposition, Enter to save, Esc to finish later.

Why built once and reused: it must be on screen within 100 ms of hang-up, 150 times a day.
Construction (widgets, shortcuts, completer) happens at start-up; `show_wrapup()` only
fills fields from `WrapupService.open()`.

Why every change is written to the draft (debounced 300 ms, and at once on close/Esc):
the agent may be interrupted by an incoming call, a crash or a restart; what was typed is
on disk and `WrapupService.pending_drafts()` brings it back. The dialog is non-modal so
the customer record stays usable; an incoming call never closes it, and a second wrap-up
that arrives while one is open waits in a queue instead of replacing it.

Keyboard: 1–9 choose a disposition (when not typing in a text field; Alt+1–9 always work),
Enter saves (Shift+Enter makes a new line in the notes), Esc keeps the draft pending,
Tab walks every field.

Signals:
    saved(int): the wrap-up of that CallLog id was committed.
    kept_pending(int): the agent closed it for later; the draft is on disk.
    warning(str): saved, but something could not be applied (e.g. customer deleted).
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QDate,
    QDateTime,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QStringListModel,
    Qt,
    QTime,
    QTimer,
    Signal,
)
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QCompleter,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from agent_desktop.customers import STAGES, STATUSES
from agent_desktop.store.errors import is_disk_full
from agent_desktop.wrapup import (
    PendingWrapup,
    WrapupData,
    WrapupError,
    WrapupService,
    from_iso,
    to_iso,
)
from ui.dialogs import fill_combo
from ui.labels import stage_label, status_label

log = logging.getLogger(__name__)

ModelIndex = QModelIndex | QPersistentModelIndex
DRAFT_DEBOUNCE_MS = 300


class DispositionModel(QAbstractListModel):
    """The configured dispositions, shown with their hotkey ("1  Interested")."""

    NAME_ROLE = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._names: list[str] = []

    def set_names(self, names: list[str]) -> None:
        if names == self._names:
            return
        self.beginResetModel()
        self._names = list(names)
        self.endResetModel()

    def names(self) -> list[str]:
        return list(self._names)

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._names)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._names):
            return None
        name = self._names[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{index.row() + 1}  {name}" if index.row() < 9 else f"   {name}"
        if role == Qt.ItemDataRole.ToolTipRole and index.row() < 9:
            return self.tr("Press %1").replace("%1", str(index.row() + 1))
        if role == self.NAME_ROLE:
            return name
        return None


class WrapupDialog(QDialog):
    saved = Signal(int)
    kept_pending = Signal(int)
    warning = Signal(str)

    def __init__(self, service: WrapupService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._pending: PendingWrapup | None = None
        self._queue: list[int] = []
        self._loading = False
        self._tags_stale = True
        self.setModal(False)
        self.setWindowTitle(self.tr("Wrap-up"))
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DRAFT_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.flush_draft)
        self._build()

    # ----------------------------------------------------------------- building
    def _build(self) -> None:
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b3261e;")
        self.banner.hide()
        self.disposition_model = DispositionModel(self)
        self.dispositions = QListView()
        self.dispositions.setModel(self.disposition_model)
        self.dispositions.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.dispositions.setAccessibleName(self.tr("Disposition"))
        # Digits on the list itself, too: the window-level shortcuts need an active
        # window, and the list's own type-ahead would otherwise eat "12" as one search.
        self.dispositions.installEventFilter(self)
        self.dispositions.selectionModel().currentChanged.connect(self._disposition_changed)
        self.tags = QLineEdit()
        self.tags.setPlaceholderText(self.tr("Tags, separated by commas"))
        self._tag_model = QStringListModel(self)
        self._completer = QCompleter(self._tag_model, self)
        self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._completer.setWidget(self.tags)
        self._completer.activated.connect(self._complete_tag)
        self.tags.textEdited.connect(self._tag_typed)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText(self.tr("Notes (Shift+Enter for a new line)"))
        self.notes.setTabChangesFocus(True)
        self.notes.installEventFilter(self)
        self.status = QComboBox()
        self.stage = QComboBox()
        self.follow_up = QCheckBox(self.tr("&Follow up"))
        self.follow_up_at = QDateTimeEdit()
        self.follow_up_at.setCalendarPopup(True)
        self.follow_up_at.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.follow_up_title = QLineEdit()
        self.follow_up_title.setPlaceholderText(self.tr("What to follow up on (optional)"))
        self.do_not_call = QCheckBox(self.tr("Do &not call this customer again"))
        self.buttons = QDialogButtonBox()
        self.save_button = self.buttons.addButton(self.tr("&Save"),
                                                  QDialogButtonBox.ButtonRole.AcceptRole)
        self.later_button = self.buttons.addButton(self.tr("Finish &later"),
                                                   QDialogButtonBox.ButtonRole.RejectRole)
        self.save_button.setDefault(True)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

        follow_row = QHBoxLayout()
        follow_row.addWidget(self.follow_up)
        follow_row.addWidget(self.follow_up_at, 1)
        form = QFormLayout()
        form.addRow(self.tr("&Tags"), self.tags)
        form.addRow(self.tr("N&otes"), self.notes)
        form.addRow(self.tr("Stat&us"), self.status)
        form.addRow(self.tr("Sta&ge"), self.stage)
        form.addRow(follow_row)
        form.addRow("", self.follow_up_title)
        form.addRow(self.do_not_call)
        left = QVBoxLayout()
        label = QLabel(self.tr("&Disposition (1–9)"))
        label.setBuddy(self.dispositions)
        left.addWidget(label)
        left.addWidget(self.dispositions)
        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addLayout(form, 3)
        root = QVBoxLayout(self)
        root.addWidget(self.header)
        root.addWidget(self.banner)
        root.addLayout(body)
        root.addWidget(self.buttons)

        for i in range(9):
            for seq in (str(i + 1), f"Alt+{i + 1}"):
                sc = QShortcut(QKeySequence(seq), self)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.activated.connect(lambda row=i: self.choose_disposition(row))
        for seq in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(seq), self).activated.connect(self.save)

        for sig in (self.tags.textChanged, self.notes.textChanged,
                    self.follow_up_title.textChanged):
            sig.connect(self._changed)
        self.status.currentIndexChanged.connect(self._changed)
        self.stage.currentIndexChanged.connect(self._changed)
        self.follow_up.toggled.connect(self._follow_up_toggled)
        self.follow_up_at.dateTimeChanged.connect(self._changed)
        self.do_not_call.toggled.connect(self._changed)
        self.setTabOrder(self.dispositions, self.tags)
        self.setTabOrder(self.tags, self.notes)
        self.setTabOrder(self.notes, self.status)
        self.setTabOrder(self.status, self.stage)
        self.setTabOrder(self.stage, self.follow_up)
        self.setTabOrder(self.follow_up, self.follow_up_at)
        self.setTabOrder(self.follow_up_at, self.follow_up_title)
        self.setTabOrder(self.follow_up_title, self.do_not_call)

    # ----------------------------------------------------------------- public API
    def current_call(self) -> int | None:
        return self._pending.call_log_id if self._pending is not None else None

    def queued(self) -> list[int]:
        return list(self._queue)

    def show_wrapup(self, call_log_id: int) -> None:
        """Open the wrap-up of a call; if another is open, queue this one behind it."""
        if self._pending is not None and self.isVisible():
            if call_log_id != self._pending.call_log_id and call_log_id not in self._queue:
                self.flush_draft()
                self._service.open(call_log_id)  # its draft exists on disk from now on
                self._queue.append(call_log_id)
                self._update_header()
            return
        self._load(call_log_id)
        self.show()
        self.raise_()
        self.activateWindow()
        self.dispositions.setFocus()

    def show_next_pending(self) -> bool:
        """Reopen the oldest unsaved wrap-up (after a restart or a crash)."""
        pending = self._service.pending_drafts()
        if not pending:
            return False
        self.show_wrapup(pending[0].call_log_id)
        for p in pending[1:]:
            self.show_wrapup(p.call_log_id)
        return True

    def choose_disposition(self, row: int) -> None:
        if 0 <= row < self.disposition_model.rowCount():
            self.dispositions.setCurrentIndex(self.disposition_model.index(row, 0))

    def form_data(self) -> WrapupData:
        """What the form holds now, as the service wants it (None = unchanged)."""
        p = self._pending
        idx = self.dispositions.currentIndex()
        disposition = (self.disposition_model.data(idx, DispositionModel.NAME_ROLE)
                       if idx.isValid() else None)
        status = self.status.currentData()
        stage = self.stage.currentData()
        dnc = self.do_not_call.isChecked()
        due: str | None = None
        if self.follow_up.isChecked():
            due = to_iso(from_qdatetime(self.follow_up_at.dateTime()))
        return WrapupData(
            disposition=disposition,
            tags=[t.strip() for t in self.tags.text().split(",") if t.strip()],
            notes=self.notes.toPlainText(),
            status=status if p is None or status != p.customer_status else None,
            stage=stage if p is None or stage != p.customer_stage else None,
            follow_up_at=due,
            follow_up_title=self.follow_up_title.text().strip(),
            do_not_call=dnc if p is None or dnc != p.customer_do_not_call else None,
        )

    def flush_draft(self) -> None:
        self._debounce.stop()
        if self._pending is None or self._loading:
            return
        try:
            self._service.save_draft(self._pending.call_log_id, self.form_data())
        except WrapupError as exc:
            self._show_banner(str(exc))
        except Exception as exc:  # the dialog must stay usable; the detail goes to the log
            log.exception("could not save the wrap-up draft of call %s",
                          self._pending.call_log_id)
            if is_disk_full(exc):
                self._show_banner(self.tr("The disk is full, so the draft could not be "
                                          "kept; free some space and keep this window "
                                          "open."))
            else:
                self._show_banner(self.tr("The draft could not be written to disk; keep "
                                          "this window open and try Save again."))

    def save(self) -> None:
        if self._pending is None:
            return
        call_id = self._pending.call_log_id
        try:
            result = self._service.save(call_id, self.form_data())
        except WrapupError as exc:
            self._show_banner(str(exc))
            if not self.dispositions.currentIndex().isValid():
                self.dispositions.setFocus()
            return
        except Exception as exc:  # e.g. disk full: nothing was committed; keep the window
            log.exception("saving the wrap-up of call %s failed", call_id)
            if is_disk_full(exc):
                self._show_banner(self.tr("The wrap-up could not be saved because the disk "
                                          "is full. Nothing was lost: free some space, keep "
                                          "this window open and press Enter again."))
            else:
                self._show_banner(self.tr("The wrap-up could not be saved (the database "
                                          "refused the write; details are in the log). "
                                          "Nothing was lost: keep this window open and "
                                          "press Enter again."))
            return
        self._pending = None
        self.saved.emit(call_id)
        for w in result.warnings:
            self.warning.emit(w)
        if self._queue:
            self._load(self._queue.pop(0))
            self.dispositions.setFocus()
            for w in result.warnings:
                self._show_banner(w)
        else:
            self.hide()

    # ----------------------------------------------------------------- QDialog overrides
    def reject(self) -> None:
        """Esc / Finish later: the draft stays pending on disk."""
        self.flush_draft()
        current = self.current_call()
        self.hide()
        if current is not None:
            log.info("wrap-up of call %s kept as a draft", current)
            self.kept_pending.emit(current)

    def accept(self) -> None:
        self.save()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.flush_draft()
        super().closeEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.dispositions and event.type() == QEvent.Type.KeyPress:
            key: QKeyEvent = event  # type: ignore[assignment]
            if Qt.Key.Key_1 <= key.key() <= Qt.Key.Key_9 and not (
                    key.modifiers() & Qt.KeyboardModifier.ControlModifier):
                self.choose_disposition(key.key() - Qt.Key.Key_1)
                return True
        if watched is self.notes and event.type() == QEvent.Type.KeyPress:
            key_event: QKeyEvent = event  # type: ignore[assignment]
            if key_event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                    key_event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
                self.save()
                return True
        return super().eventFilter(watched, event)

    # ----------------------------------------------------------------- internals
    def _load(self, call_log_id: int) -> None:
        self._loading = True
        try:
            self.banner.hide()
            try:
                names = self._service.dispositions()
            except WrapupError as exc:
                names = []
                self._show_banner(str(exc))
            p = self._service.open(call_log_id)
            self._pending = p
            self.disposition_model.set_names(names)
            d = p.data
            if d.disposition in names:
                self.choose_disposition(names.index(d.disposition))
            else:
                self.dispositions.setCurrentIndex(QModelIndex())
                self.dispositions.clearSelection()
            self._tags_stale = True  # read on the first keystroke: keeps opening fast
            self.tags.setText(", ".join(d.tags))
            self.notes.setPlainText(d.notes)
            fill_combo(self.status, STATUSES, d.status or p.customer_status, status_label)
            self._select(self.status, d.status or p.customer_status)
            fill_combo(self.stage, STAGES, d.stage or p.customer_stage, stage_label)
            self._select(self.stage, d.stage or p.customer_stage)
            self.follow_up.setChecked(bool(d.follow_up_at))
            self.follow_up_at.setEnabled(bool(d.follow_up_at))
            due = from_iso(d.follow_up_at).astimezone() if d.follow_up_at else _tomorrow()
            self.follow_up_at.setDateTime(to_qdatetime(due))
            self.follow_up_title.setText(d.follow_up_title)
            self.do_not_call.setChecked(d.do_not_call if d.do_not_call is not None
                                        else p.customer_do_not_call)
            has_customer = p.customer_id is not None and not p.customer_deleted
            for w in (self.tags, self.status, self.stage, self.follow_up,
                      self.follow_up_title, self.do_not_call):
                w.setEnabled(has_customer)
            if p.customer_deleted:
                self._show_banner(self.tr(
                    "This customer was deleted on the server. The call's disposition and "
                    "notes will still be saved on the call log."))
            self._update_header()
        finally:
            self._loading = False

    def _update_header(self) -> None:
        p = self._pending
        if p is None:
            return
        who = p.customer_name or self.tr("Unknown caller")
        minutes, seconds = divmod(int(p.talk_seconds), 60)
        text = self.tr("%1 · %2 · talked %3").replace("%1", who).replace(
            "%2", p.number).replace("%3", f"{minutes}:{seconds:02d}")
        if self._queue:
            text += " · " + self.tr("%n more waiting", "", len(self._queue)).replace(
                "%n", str(len(self._queue)))
        self.header.setText(text)
        self.setWindowTitle(self.tr("Wrap-up: %1").replace("%1", who))

    @staticmethod
    def _select(combo: QComboBox, code: str) -> None:
        i = combo.findData(code)
        if i >= 0:
            combo.setCurrentIndex(i)

    def _show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    def _changed(self, *_args: object) -> None:
        if not self._loading:
            self._debounce.start()

    def _disposition_changed(self, current: QModelIndex, _prev: QModelIndex) -> None:
        if self._loading or not current.isValid():
            return
        name = str(self.disposition_model.data(current, DispositionModel.NAME_ROLE))
        folded = name.casefold()
        if folded in ("do not call", "dnc") and self.do_not_call.isEnabled():
            self.do_not_call.setChecked(True)
        if ("call back" in folded or "callback" in folded) and self.follow_up.isEnabled() \
                and not self.follow_up.isChecked():
            self.follow_up.setChecked(True)
        self.banner.hide()
        self._changed()

    def _follow_up_toggled(self, on: bool) -> None:
        self.follow_up_at.setEnabled(on)
        if on and not self._loading:
            self.follow_up_at.setDateTime(to_qdatetime(_tomorrow()))
        self._changed()

    def _tag_typed(self, text: str) -> None:
        prefix = text.rsplit(",", 1)[-1].strip()
        if not prefix:
            popup = self._completer.popup()
            if popup is not None:
                popup.hide()
            return
        if self._tags_stale:
            self._tag_model.setStringList(self._service.known_tags(limit=500))
            self._tags_stale = False
        self._completer.setCompletionPrefix(prefix)
        self._completer.complete()

    def _complete_tag(self, completion: str) -> None:
        head = self.tags.text().rsplit(",", 1)[0] if "," in self.tags.text() else ""
        self.tags.setText(f"{head}, {completion}, " if head else f"{completion}, ")


class PendingWrapupsButton(QPushButton):
    """Status-bar button "2 wrap-ups pending": how an agent gets back to a wrap-up left
    with Esc. Hidden when nothing is pending; follows `WrapupService.pending_changed`
    (and `refresh()` after the dialog's `kept_pending`)."""

    def __init__(self, service: WrapupService, dialog: WrapupDialog,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._dialog = dialog
        self.setFlat(True)
        self.clicked.connect(dialog.show_next_pending)
        service.pending_changed.connect(self.refresh)
        dialog.kept_pending.connect(self.refresh)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        count = len(self._service.pending_drafts())
        self.setText(self.tr("%n wrap-up(s) pending", "", count).replace("%n", str(count)))
        self.setToolTip(self.tr("Open the oldest unfinished wrap-up"))
        self.setVisible(count > 0)


def _tomorrow() -> datetime:
    """Default follow-up: tomorrow 10:00 local — the usual "call me tomorrow"."""
    now = datetime.now().astimezone()
    return datetime.combine(now.date() + timedelta(days=1), time(10, 0), tzinfo=now.tzinfo)


def to_qdatetime(moment: datetime) -> QDateTime:
    """Aware datetime → QDateTime in local time (what the editor shows)."""
    local = moment.astimezone()
    return QDateTime(QDate(local.year, local.month, local.day),
                     QTime(local.hour, local.minute, local.second))


def from_qdatetime(value: QDateTime) -> datetime:
    """The editor's local wall time → aware datetime."""
    d, t = value.date(), value.time()
    return datetime(d.year(), d.month(), d.day(), t.hour(), t.minute(), t.second()).astimezone()
