"""The ringing notification: who is calling, answer or reject, open / create the customer.

Why inline in the panel instead of a modal dialog: a modal box steals the keyboard from
whatever the agent is typing and blocks the window; a banner in the softphone panel
shows the caller's name, and the customer's record is opened in the detail pane by the
panel before the agent answers.

Signals:
    answer_clicked(), reject_clicked()
    customer_clicked(): open the known caller, or start a new customer for an unknown one.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class IncomingCallBanner(QFrame):
    answer_clicked = Signal()
    reject_clicked = Signal()
    customer_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("incomingCallBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(self)
        self.title.setObjectName("incomingTitle")
        self.title.setWordWrap(True)
        self.answer_button = QPushButton(self.tr("Answer"), self)
        self.answer_button.setObjectName("answerButton")
        self.reject_button = QPushButton(self.tr("Reject"), self)
        self.reject_button.setObjectName("rejectButton")
        self.customer_button = QPushButton(self)
        self.customer_button.setObjectName("incomingCustomerButton")
        self.answer_button.clicked.connect(self.answer_clicked)
        self.reject_button.clicked.connect(self.reject_clicked)
        self.customer_button.clicked.connect(self.customer_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.answer_button)
        buttons.addWidget(self.reject_button)
        buttons.addWidget(self.customer_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addLayout(buttons)
        self.hide()

    def show_call(self, name: str, number: str, known: bool) -> None:
        who = f"{name} ({number})" if name else number
        self.title.setText(self.tr("Incoming call: %1").replace("%1", who))
        self.customer_button.setText(self.tr("Open customer") if known
                                     else self.tr("New customer…"))
        self.show()
        self.answer_button.setFocus()
