"""Tags as removable chips plus an add box that autocompletes existing tag names.

The editor itself does not save: it emits `add_requested`/`remove_requested` and the detail
pane calls the service, then shows the saved tags again — so what is on screen is always
what is in the database.

Signals:
    add_requested(str): the agent typed a tag and pressed Enter (or clicked Add).
    remove_requested(str): the × on a chip was clicked.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QCompleter,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLayoutItem,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


class FlowLayout(QLayout):
    """Lays chips out left to right, wrapping like text (Qt ships no flow layout)."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:
        return self.minimumSize()

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        return size

    def _arrange(self, rect: QRect, *, apply: bool) -> int:
        x, y, line_h = rect.x(), rect.y(), 0
        for item in self._items:
            hint = item.sizeHint()
            if x + hint.width() > rect.right() + 1 and line_h > 0:
                x, y = rect.x(), y + line_h + self._spacing
                line_h = 0
            if apply:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._spacing
            line_h = max(line_h, hint.height())
        return y + line_h - rect.y()


class TagChip(QFrame):
    """One tag: its text and a × button."""

    remove_clicked = Signal(str)

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.setObjectName("tagChip")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            "#tagChip { background: palette(alternate-base); border: 1px solid palette(mid);"
            " border-radius: 10px; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 2, 2)
        layout.setSpacing(2)
        label = QLabel(name, self)
        layout.addWidget(label)
        remove = QToolButton(self)
        remove.setObjectName("tagChipRemove")
        remove.setText("×")
        remove.setAutoRaise(True)
        remove.setToolTip(self.tr("Remove tag “%1”").replace("%1", name))
        remove.clicked.connect(lambda: self.remove_clicked.emit(self.name))
        layout.addWidget(remove)


class TagEditor(QWidget):
    add_requested = Signal(str)
    remove_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._chips_box = QWidget(self)
        self._flow = FlowLayout(self._chips_box)
        self._none = QLabel(self.tr("No tags yet — type one below and press Enter."), self)
        self._none.setEnabled(False)

        self.input = QLineEdit(self)
        self.input.setObjectName("tagInput")
        self.input.setPlaceholderText(self.tr("Add a tag…"))
        self._names = QStringListModel(self)
        completer = QCompleter(self._names, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.input.setCompleter(completer)
        add = QPushButton(self.tr("Add"), self)
        add.setObjectName("tagAdd")
        add.clicked.connect(self._submit)
        self.input.returnPressed.connect(self._submit)

        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.input, 1)
        row.addWidget(add)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self._chips_box)
        layout.addWidget(self._none)
        layout.addLayout(row)

    def set_tags(self, tags: tuple[str, ...] | list[str]) -> None:
        while self._flow.count():
            item = self._flow.takeAt(0)
            if item is not None and (w := item.widget()) is not None:
                w.hide()
                w.setParent(None)  # gone from the tree now, freed on the next loop turn
                w.deleteLater()
        for name in tags:
            chip = TagChip(name, self._chips_box)
            chip.remove_clicked.connect(self.remove_requested)
            self._flow.addWidget(chip)
        self._none.setVisible(not tags)
        self._chips_box.setVisible(bool(tags))
        self._chips_box.updateGeometry()

    def tags(self) -> list[str]:
        out: list[str] = []
        for i in range(self._flow.count()):
            item = self._flow.itemAt(i)
            w = item.widget() if item is not None else None
            if isinstance(w, TagChip):
                out.append(w.name)
        return out

    def set_known_tags(self, names: list[str]) -> None:
        self._names.setStringList(names)

    def _submit(self) -> None:
        text = self.input.text().strip()
        if text:
            self.add_requested.emit(text)

    def clear_input(self) -> None:
        self.input.clear()
