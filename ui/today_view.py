"""The "Today" view: open follow-ups due today or overdue, overdue first.

Why a small table model rather than a list widget: it passes `qtmodeltester`, refreshes in
place when the service announces a task change, and the same rows can feed a dialer later.

Signals (TodayView):
    customer_activated(int): double-click / Enter on a follow-up opens its customer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from agent_desktop.customers import CustomerService, TaskView

ModelIndex = QModelIndex | QPersistentModelIndex
CUSTOMER_ID_ROLE = Qt.ItemDataRole.UserRole + 1
OVERDUE_COLOR = QColor("#b3261e")


class TodayModel(QAbstractTableModel):
    """Rows are `TaskView`s from `CustomerService.today_tasks()`; columns Due, Customer, Task."""

    def __init__(self, service: CustomerService, parent: Any = None) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks: list[TaskView] = []
        self._now = datetime.now().astimezone()

    def refresh(self, now: datetime | None = None) -> None:
        self.beginResetModel()
        self._now = now or datetime.now().astimezone()
        self._tasks = self._service.today_tasks(self._now)
        self.endResetModel()

    def task(self, row: int) -> TaskView | None:
        return self._tasks[row] if 0 <= row < len(self._tasks) else None

    def overdue_count(self) -> int:
        return sum(1 for t in self._tasks if t.overdue(self._now))

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._tasks)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 3

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal
                or not 0 <= section < 3):
            return None
        return (self.tr("Due"), self.tr("Customer"), self.tr("Follow-up"))[section]

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._tasks):
            return None
        t = self._tasks[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                due = t.due_at.astimezone()
                if due.date() == self._now.astimezone().date():
                    return due.strftime("%H:%M")
                return due.strftime("%Y-%m-%d %H:%M")
            return t.customer_name if col == 1 else t.title
        if role == Qt.ItemDataRole.ForegroundRole and t.overdue(self._now):
            return QBrush(OVERDUE_COLOR)
        if role == Qt.ItemDataRole.ToolTipRole and t.overdue(self._now):
            return self.tr("Overdue")
        if role == CUSTOMER_ID_ROLE:
            return t.customer_id
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


class _TodayTable(QTableView):
    enter_pressed = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.enter_pressed.emit()
            return
        super().keyPressEvent(event)


class TodayView(QWidget):
    customer_activated = Signal(int)

    def __init__(self, model: TodayModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("todayView")
        self.model = model
        self.table = _TodayTable(self)
        self.table.setObjectName("todayTable")
        self.table.setAccessibleName(self.tr("Follow-ups due today"))
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().resizeSection(0, 130)
        self.table.horizontalHeader().resizeSection(1, 180)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.empty = QLabel(self.tr(
            "Nothing due today.\nSchedule a follow-up in a customer's detail pane and it "
            "shows up here on its day."), self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setEnabled(False)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.addWidget(self.stack)
        self.table.doubleClicked.connect(self._open)
        self.table.enter_pressed.connect(lambda: self._open(self.table.currentIndex()))
        model.modelReset.connect(self._update_empty)
        # Tasks become due as the clock moves: refresh every minute.
        self._clock = QTimer(self)
        self._clock.setInterval(60_000)
        self._clock.timeout.connect(lambda: model.refresh())
        self._clock.start()
        self._update_empty()

    def _update_empty(self) -> None:
        self.stack.setCurrentWidget(self.table if self.model.rowCount() else self.empty)

    def _open(self, index: QModelIndex) -> None:
        cid = index.data(CUSTOMER_ID_ROLE) if index.isValid() else None
        if cid is not None:
            self.customer_activated.emit(int(cid))
