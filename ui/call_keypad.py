"""The 12-key keypad: DTMF during a call, a dial pad for typed numbers otherwise.

Why one widget for both: agents expect the same keys in the same place whether they are
dialling a number that is not in the CRM or pressing "1 for sales" in a call; the panel
decides what a key means from the call state.

Signals:
    key_pressed(str): one of 0–9, *, #.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QPushButton, QSizePolicy, QWidget

KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")


class CallKeypad(QWidget):
    key_pressed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("callKeypad")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        self.buttons: dict[str, QPushButton] = {}
        for i, key in enumerate(KEYS):
            b = QPushButton(key, self)
            b.setObjectName(f"key_{'star' if key == '*' else 'hash' if key == '#' else key}")
            b.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            b.setFocusPolicy(b.focusPolicy().NoFocus)  # typing stays in the number field
            b.clicked.connect(lambda _checked=False, k=key: self.key_pressed.emit(k))
            grid.addWidget(b, i // 3, i % 3)
            self.buttons[key] = b
