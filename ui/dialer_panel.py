"""The power dialer panel: the next customer with a countdown, Start/Pause/Skip, progress.

A thin view over `agent_desktop.dialer.PowerDialer`: every button calls the dialer, every
label follows a dialer signal, so the keyboard, a test or a script drive it identically.
The call list comes from the current search/filter through `ids_provider` (the customer
list panel knows which customers are shown).

Signals (DialerPanel):
    customer_previewed(int): the next customer is on screen — the main window may open it
        in the detail pane so the agent reads the record before the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from agent_desktop.dialer import (
    CallListStore,
    DialEntry,
    DialerError,
    DialerMode,
    DialerState,
    EntryStatus,
    PowerDialer,
)

ModelIndex = QModelIndex | QPersistentModelIndex
CUSTOMER_ID_ROLE = Qt.ItemDataRole.UserRole + 1
_MUTED = QColor("#757575")


class DialerQueueModel(QAbstractTableModel):
    """The call list: Customer, Number, Status, Attempts, Note; follows the dialer's signals."""

    COLUMNS = ("Customer", "Number", "Status", "Attempts", "Note")

    def __init__(self, dialer: PowerDialer, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._dialer = dialer
        self._rows = len(dialer.entries)
        dialer.list_loaded.connect(self._reload)
        dialer.entry_changed.connect(self._row_changed)

    def _reload(self, _count: int) -> None:
        self.beginResetModel()
        self._rows = len(self._dialer.entries)
        self.endResetModel()

    def _row_changed(self, row: int) -> None:
        if 0 <= row < self._rows:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(self.COLUMNS)):
            return self.tr(self.COLUMNS[section])
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < self._rows:
            return None
        e = self._dialer.entries[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (e.name, e.number, status_text(e.status), str(e.attempts), e.note)[col]
        if role == Qt.ItemDataRole.ToolTipRole and col == 4:
            return e.note or None
        if role == Qt.ItemDataRole.ForegroundRole and e.status in (
                EntryStatus.DONE, EntryStatus.SKIPPED):
            return QBrush(_MUTED)
        if role == CUSTOMER_ID_ROLE:
            return e.customer_id
        return None


def status_text(status: EntryStatus) -> str:
    from PySide6.QtCore import QCoreApplication

    labels = {
        EntryStatus.PENDING: QCoreApplication.translate("Dialer", "Waiting"),
        EntryStatus.CURRENT: QCoreApplication.translate("Dialer", "Now"),
        EntryStatus.RETRY: QCoreApplication.translate("Dialer", "Retry later"),
        EntryStatus.DEFERRED: QCoreApplication.translate("Dialer", "Outside hours"),
        EntryStatus.DONE: QCoreApplication.translate("Dialer", "Done"),
        EntryStatus.SKIPPED: QCoreApplication.translate("Dialer", "Skipped"),
    }
    return labels[status]


class DialerPanel(QWidget):
    customer_previewed = Signal(int)

    def __init__(self, dialer: PowerDialer, ids_provider: Callable[[], list[int]] | None = None,
                 lists: CallListStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._dialer = dialer
        self._ids_provider = ids_provider
        self._lists = lists
        self.model = DialerQueueModel(dialer, self)

        self.mode = QComboBox()
        self.mode.addItem(self.tr("Preview (countdown)"), DialerMode.PREVIEW.value)
        self.mode.addItem(self.tr("Power (dial after wrap-up)"), DialerMode.POWER.value)
        self.mode.setCurrentIndex(self.mode.findData(dialer.mode.value))
        self.mode.currentIndexChanged.connect(
            lambda _i: dialer.set_mode(str(self.mode.currentData())))
        self.load_button = QPushButton(self.tr("&Use current list"))
        self.load_button.setEnabled(ids_provider is not None)
        self.load_button.clicked.connect(self.load_current_list)
        self.start_button = QPushButton(self.tr("S&tart"))
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton(self.tr("&Pause"))
        self.pause_button.clicked.connect(self.toggle_pause)
        self.skip_button = QPushButton(self.tr("S&kip"))
        self.skip_button.clicked.connect(dialer.skip)
        self.dial_button = QPushButton(self.tr("Call &now"))
        self.dial_button.clicked.connect(dialer.dial_now)
        self.progress = QProgressBar()
        self.progress.setFormat(self.tr("%v of %m done"))
        self.next_name = QLabel()
        self.next_name.setStyleSheet("font-size: 15pt; font-weight: 600;")
        self.next_detail = QLabel()
        self.next_detail.setWordWrap(True)
        self.countdown = QLabel()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)

        self.saved_lists = QComboBox()
        self.saved_lists.setPlaceholderText(self.tr("Saved lists"))
        self.saved_lists.activated.connect(self._load_saved)
        self.list_name = QLineEdit()
        self.list_name.setPlaceholderText(self.tr("Name for this list"))
        self.save_list_button = QPushButton(self.tr("Sa&ve list"))
        self.save_list_button.clicked.connect(self.save_current_list)
        for w in (self.saved_lists, self.list_name, self.save_list_button):
            w.setVisible(lists is not None)
        self._refresh_saved()

        top = QHBoxLayout()
        top.addWidget(self.mode)
        top.addWidget(self.load_button)
        top.addWidget(self.saved_lists)
        top.addStretch(1)
        saving = QHBoxLayout()
        saving.addWidget(self.list_name, 1)
        saving.addWidget(self.save_list_button)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.skip_button, self.dial_button):
            buttons.addWidget(b)
        root = QVBoxLayout(self)
        root.addLayout(top)
        root.addLayout(saving)
        root.addWidget(self.progress)
        root.addWidget(self.next_name)
        root.addWidget(self.next_detail)
        root.addWidget(self.countdown)
        root.addLayout(buttons)
        root.addWidget(self.message)
        root.addWidget(self.table, 1)

        dialer.state_changed.connect(self._state_changed)
        dialer.current_changed.connect(self._current_changed)
        dialer.countdown.connect(self._countdown)
        dialer.progress_changed.connect(self._progress)
        dialer.message.connect(self.message.setText)
        self._progress(*dialer.progress())
        self._state_changed(dialer.state.value)
        self._current_changed(dialer.current())

    # ----------------------------------------------------------------- actions
    def load_current_list(self) -> int:
        if self._ids_provider is None:
            return 0
        try:
            n = self._dialer.load(self._ids_provider())
        except DialerError as exc:
            self.message.setText(str(exc))
            return 0
        self.message.setText(self.tr("%n customers in the call list.", "", n).replace(
            "%n", str(n)))
        return n

    def save_current_list(self) -> bool:
        """Save the loaded call list (or else the current search) under the typed name."""
        if self._lists is None:
            return False
        ids = [e.customer_id for e in self._dialer.entries] or (
            self._ids_provider() if self._ids_provider is not None else [])
        try:
            self._lists.save(self.list_name.text(), ids)
        except DialerError as exc:
            self.message.setText(str(exc))
            return False
        self.message.setText(self.tr("Call list “%1” saved.").replace(
            "%1", self.list_name.text().strip()))
        self._refresh_saved()
        return True

    def _refresh_saved(self) -> None:
        self.saved_lists.clear()
        if self._lists is not None:
            self.saved_lists.addItems(self._lists.names())
        self.saved_lists.setCurrentIndex(-1)

    def _load_saved(self, index: int) -> None:
        if self._lists is None or index < 0:
            return
        name = self.saved_lists.itemText(index)
        try:
            n = self._dialer.load(self._lists.load(name))
        except DialerError as exc:
            self.message.setText(str(exc))
            return
        self.message.setText(self.tr("%1: %2 customers in the call list.").replace(
            "%1", name).replace("%2", str(n)))

    def start(self) -> None:
        if not self._dialer.entries and self._ids_provider is not None:
            self.load_current_list()
        try:
            self._dialer.start()
        except DialerError as exc:
            self.message.setText(str(exc))

    def toggle_pause(self) -> None:
        if self._dialer.state is DialerState.PAUSED:
            self._dialer.resume()
        else:
            self._dialer.pause()

    # ----------------------------------------------------------------- dialer → view
    def _state_changed(self, state: str) -> None:
        s = DialerState(state)
        running = s not in (DialerState.IDLE, DialerState.FINISHED)
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.pause_button.setText(self.tr("&Resume") if s is DialerState.PAUSED
                                  else self.tr("&Pause"))
        self.skip_button.setEnabled(s in (DialerState.PREVIEW, DialerState.PAUSED))
        self.dial_button.setEnabled(s is DialerState.PREVIEW)
        self.load_button.setEnabled(self._ids_provider is not None and s not in (
            DialerState.CALLING, DialerState.WRAPUP))
        if s is not DialerState.PREVIEW:
            self.countdown.clear()
        texts = {
            DialerState.CALLING: self.tr("Calling…"),
            DialerState.WRAPUP: self.tr("Wrap up the call to continue."),
            DialerState.PAUSED: self.tr("Paused."),
            DialerState.WAITING: self.tr("Waiting for the next retry."),
        }
        if s in texts:
            self.countdown.setText(texts[s])

    def _current_changed(self, entry: DialEntry | None) -> None:
        if entry is None:
            self.next_name.setText(self.tr("No customer up next"))
            self.next_detail.clear()
            return
        self.next_name.setText(entry.name)
        attempt = self.tr("attempt %1").replace("%1", str(entry.attempts + 1))
        self.next_detail.setText(f"{entry.number} · {attempt}"
                                 + (f" · {entry.note}" if entry.note else ""))
        self.customer_previewed.emit(entry.customer_id)

    def _countdown(self, seconds: int) -> None:
        self.countdown.setText(self.tr("Calling in %1 s — Skip or Call now").replace(
            "%1", str(seconds)))

    def _progress(self, done: int, left: int) -> None:
        self.progress.setMaximum(max(1, done + left))
        self.progress.setValue(done)
        self.progress.setToolTip(self.tr("%1 done, %2 left").replace("%1", str(done))
                                 .replace("%2", str(left)))
