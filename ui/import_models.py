"""Qt models and the background-task helper behind the import dialog and export action.

Models hold plain data from `agent_desktop.importing` (never ORM objects, never sessions).
`BackgroundTask` runs a blocking service call on a QThreadPool thread and reports back by
typed signals, so the GUI thread never reads a file or writes the database.

Signals (BackgroundTask.signals):
    progress(int, int): done, total (total 0 = unknown).
    finished(object): the call's return value.
    failed(str): a plain sentence for the agent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    Qt,
    Signal,
)

from agent_desktop.exporting import ExportError
from agent_desktop.importing import (
    DuplicateAction,
    DuplicateGroup,
    Field,
    ImportCancelled,
    ImportFileError,
    MappingError,
    RowProblem,
)

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
Work = Callable[[Callable[[int, int], None], threading.Event], object]
_EXPECTED = (ImportFileError, MappingError, ImportCancelled, ExportError, OSError)


# A plain alias, not a wrapper: lupdate only extracts literal `translate("ctx", "text")`
# calls, so a helper taking the text as a variable left these strings untranslated.
translate = QCoreApplication.translate


def field_label(f: Field) -> str:
    labels = {
        Field.IGNORE: translate("ImportDialog", "(do not import)"),
        Field.NAME: translate("ImportDialog", "Name"),
        Field.COMPANY: translate("ImportDialog", "Company"),
        Field.CITY: translate("ImportDialog", "City"),
        Field.COUNTRY: translate("ImportDialog", "Country"),
        Field.EMAIL: translate("ImportDialog", "E-mail"),
        Field.PHONE: translate("ImportDialog", "Phone"),
        Field.TAGS: translate("ImportDialog", "Tags"),
        Field.NOTE: translate("ImportDialog", "Note"),
        Field.STATUS: translate("ImportDialog", "Status"),
        Field.STAGE: translate("ImportDialog", "Stage"),
        Field.OWNER: translate("ImportDialog", "Owner"),
        Field.DO_NOT_CALL: translate("ImportDialog", "Do not call"),
    }
    return labels[f]


def action_label(a: DuplicateAction) -> str:
    return {
        DuplicateAction.MERGE: translate("ImportDialog", "Merge"),
        DuplicateAction.NEW: translate("ImportDialog", "Import as new"),
        DuplicateAction.SKIP: translate("ImportDialog", "Skip"),
    }[a]


class TaskSignals(QObject):
    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)


class BackgroundTask(QRunnable):
    """One blocking call on a pool thread; `cancel` is handed to the call."""

    def __init__(self, work: Work) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the owner keeps it until `finished`/`failed`
        self.signals = TaskSignals()
        self.cancel = threading.Event()
        self._work = work

    def run(self) -> None:
        try:
            result = self._work(self.signals.progress.emit, self.cancel)
        except _EXPECTED as exc:
            log.warning("background task failed: %s", exc)
            self.signals.failed.emit(str(exc))
        except Exception as exc:  # never let a worker die silently
            log.exception("background task crashed")
            self.signals.failed.emit(translate("ImportDialog", "Unexpected error: {0}").format(exc))
        else:
            self.signals.finished.emit(result)


class PreviewModel(QAbstractTableModel):
    """First rows of the file; header shows "column header → target field"."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._headers: list[str] = []
        self._rows: list[tuple[int, tuple[str, ...]]] = []
        self._mapping: list[Field] = []

    def set_preview(self, headers: list[str], rows: list[tuple[int, tuple[str, ...]]],
                    mapping: list[Field]) -> None:
        self.beginResetModel()
        self._headers, self._rows, self._mapping = list(headers), list(rows), list(mapping)
        self.endResetModel()

    def set_mapping(self, mapping: list[Field]) -> None:
        self._mapping = list(mapping)
        if self._headers:
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(self._headers) - 1)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._headers)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (Qt.ItemDataRole.DisplayRole,
                                               Qt.ItemDataRole.ToolTipRole):
            return None
        values = self._rows[index.row()][1]
        return values[index.column()] if index.column() < len(values) else ""

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Vertical:
            return str(self._rows[section][0]) if 0 <= section < len(self._rows) else None
        if not 0 <= section < len(self._headers):
            return None
        target = self._mapping[section] if section < len(self._mapping) else Field.IGNORE
        return f"{self._headers[section]} → {field_label(target)}"


class DuplicatesModel(QAbstractTableModel):
    """Duplicate groups; the Action column is editable (merge / new / skip)."""

    ACTION_COLUMN = 4

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._groups: list[DuplicateGroup] = []

    def set_groups(self, groups: list[DuplicateGroup]) -> None:
        self.beginResetModel()
        self._groups = groups
        self.endResetModel()

    def set_all(self, action: DuplicateAction) -> None:
        for g in self._groups:
            g.action = action
        if self._groups:
            self.dataChanged.emit(self.index(0, self.ACTION_COLUMN),
                                  self.index(len(self._groups) - 1, self.ACTION_COLUMN))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._groups)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 5

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal:
            return None
        names = (translate("ImportDialog", "Lines"), translate("ImportDialog", "Names in the file"),
                 translate("ImportDialog", "Shared numbers"),
                 translate("ImportDialog", "Existing customer"),
                 translate("ImportDialog", "Action"))
        return names[section] if 0 <= section < len(names) else None

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        if index.isValid() and index.column() == self.ACTION_COLUMN:
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        g = self._groups[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.EditRole and col == self.ACTION_COLUMN:
            return g.action.value
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        if col == 0:
            return ", ".join(str(n) for n in g.lines)
        if col == 1:
            return ", ".join(dict.fromkeys(g.names))
        if col == 2:
            return ", ".join(g.numbers)
        if col == 3:
            return ", ".join(f"{m.name} ({m.company})" if m.company else m.name
                             for m in g.existing) \
                or translate("ImportDialog", "(only in this file)")
        return action_label(g.action)

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if (not index.isValid() or index.column() != self.ACTION_COLUMN
                or role != Qt.ItemDataRole.EditRole):
            return False
        try:
            action = DuplicateAction(value)
        except ValueError:
            return False
        self._groups[index.row()].action = action
        self.dataChanged.emit(index, index)
        return True


class ProblemsModel(QAbstractTableModel):
    """The report: one row per rejected row or warning, with its file line."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[RowProblem] = []

    def set_problems(self, problems: list[RowProblem]) -> None:
        self.beginResetModel()
        self._rows = list(problems)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 4

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal:
            return None
        names = (translate("ImportDialog", "Line"), translate("ImportDialog", "Kind"),
                 translate("ImportDialog", "Reason"), translate("ImportDialog", "Row"))
        return names[section] if 0 <= section < len(names) else None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (Qt.ItemDataRole.DisplayRole,
                                               Qt.ItemDataRole.ToolTipRole):
            return None
        p = self._rows[index.row()]
        col = index.column()
        if col == 0:
            return str(p.line)
        if col == 1:
            if p.kind == "rejected":
                return translate("ImportDialog", "rejected")
            return translate("ImportDialog", "warning")
        return p.reason if col == 2 else p.content
