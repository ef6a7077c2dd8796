"""The "Sync conflicts" view: values that lost a concurrent edit, and refused changes.

The model shows whatever a `ConflictSource` returns (app.py passes the sync client's
`ConflictStore`); the view offers "Put the lost value back" and "Dismiss". Errors from the
source are shown in plain words, never swallowed.

Signals (ConflictsView):
    changed(): a conflict was restored or dismissed (the status bar count refreshes).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex


class ConflictLike(Protocol):
    id: int
    entity: str
    record: str
    field: str
    lost_value: str
    current_value: str
    created_at: str
    restorable: bool


class ConflictSource(Protocol):
    def list_conflicts(self) -> list[Any]: ...
    def dismiss(self, conflict_id: int) -> None: ...
    def restore(self, conflict_id: int) -> None: ...


ID_ROLE = Qt.ItemDataRole.UserRole + 1


class ConflictsModel(QAbstractTableModel):
    COLUMNS = ("record", "field", "lost_value", "current_value", "created_at")

    def __init__(self, source: ConflictSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self._rows: list[ConflictLike] = []
        self._headers = (self.tr("Record"), self.tr("Field"), self.tr("Lost value"),
                         self.tr("Current value / reason"), self.tr("When"))

    def reload(self) -> None:
        self.beginResetModel()
        self._rows = list(self._source.list_conflicts())
        self.endResetModel()

    def item(self, row: int) -> ConflictLike:
        return self._rows[row]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        item = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            name = self.COLUMNS[index.column()]
            if name == "field":
                return self.tr("(whole change)") if item.field == "*" else item.field
            if name == "record":
                return f"{item.entity}: {item.record}"
            return str(getattr(item, name))
        if role == ID_ROLE:
            return item.id
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal
                and 0 <= section < len(self._headers)):
            return self._headers[section]
        return None


class ConflictsView(QWidget):
    changed = Signal()

    def __init__(self, source: ConflictSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self.setWindowTitle(self.tr("Sync conflicts"))
        self.model = ConflictsModel(source, self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel(self.tr("No sync conflicts."), self)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.restore_button = QPushButton(self.tr("Put the lost value back"), self)
        self.dismiss_button = QPushButton(self.tr("Dismiss"), self)
        self.restore_button.clicked.connect(self.restore_selected)
        self.dismiss_button.clicked.connect(self.dismiss_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.restore_button)
        buttons.addWidget(self.dismiss_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        try:
            self.model.reload()
        except Exception as exc:
            log.exception("could not load sync conflicts")
            self.message.setText(self.tr("Could not load conflicts: %1").replace("%1", str(exc)))
        self.empty.setVisible(self.model.rowCount() == 0)
        self._update_buttons()

    def _selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    @Slot()
    def _update_buttons(self) -> None:
        row = self._selected_row()
        self.dismiss_button.setEnabled(row is not None)
        self.restore_button.setEnabled(row is not None and self.model.item(row).restorable)

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    @Slot()
    def restore_selected(self) -> None:
        self._act(self._source.restore)

    @Slot()
    def dismiss_selected(self) -> None:
        self._act(self._source.dismiss)

    def _act(self, action: Any) -> None:
        row = self._selected_row()
        if row is None:
            return
        try:
            action(self.model.item(row).id)
        except Exception as exc:
            log.warning("sync conflict action failed: %s", exc)
            self.message.setText(str(exc))
            return
        self.message.clear()
        self.refresh()
        self.changed.emit()
