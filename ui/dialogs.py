"""Edit-customer / new-customer and phone dialogs.

They validate through the same `CustomerService` that saves, so the messages the agent sees
are exactly the service's (one set of rules). A dialog stays open on a validation error,
shows the sentence under the form and focuses the offending field.
Open them with `open()` (non-blocking) — `exec()` would block tests and nested event loops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from agent_desktop.customers import (
    PHONE_LABELS,
    STAGES,
    STATUSES,
    CustomerDetail,
    CustomerService,
    NotFoundError,
    ValidationError,
)
from agent_desktop.phones import NormalizedPhone
from ui.labels import phone_label, stage_label, status_label

log = logging.getLogger(__name__)


def fill_combo(combo: QComboBox, codes: tuple[str, ...], current: str,
               label: Callable[[str], str]) -> None:
    """Codes as item data, translated labels as text; an unknown current code is kept."""
    combo.clear()
    for code in codes:
        combo.addItem(label(code), code)
    if current and current not in codes:
        combo.addItem(label(current), current)
    combo.setCurrentIndex(max(0, combo.findData(current)))


def error_label(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setObjectName("errorLabel")
    label.setWordWrap(True)
    label.setStyleSheet("color: #b3261e;")
    label.hide()
    return label


class CustomerDialog(QDialog):
    """New customer (detail None) or edit an existing one's fields.

    Emits `accepted` only after the service saved; `saved_id` then holds the customer id.
    """

    def __init__(self, service: CustomerService, detail: CustomerDetail | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._detail = detail
        self.saved_id: int | None = None
        self.setWindowTitle(self.tr("New customer") if detail is None
                            else self.tr("Edit customer"))
        self.setMinimumWidth(420)

        self.inputs: dict[str, QLineEdit] = {}
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        labels = {"name": self.tr("Name"), "company": self.tr("Company"),
                  "city": self.tr("City"), "country": self.tr("Country (2 letters)"),
                  "email": self.tr("E-mail"), "owner": self.tr("Owner")}
        for key, text in labels.items():
            edit = QLineEdit(self)
            edit.setObjectName(f"dialog_{key}")
            edit.setText(str(detail.field(key)) if detail else "")
            self.inputs[key] = edit
            form.addRow(text, edit)
        self.phone: QLineEdit | None = None
        if detail is None:
            self.phone = QLineEdit(self)
            self.phone.setObjectName("dialog_phone")
            self.phone.setPlaceholderText(self.tr("Optional, e.g. +86 138 0013 8000"))
            form.addRow(self.tr("Phone"), self.phone)
        self.status = QComboBox(self)
        fill_combo(self.status, STATUSES, detail.status if detail else "new", status_label)
        form.addRow(self.tr("Status"), self.status)
        self.stage = QComboBox(self)
        fill_combo(self.stage, STAGES, detail.stage if detail else "lead", stage_label)
        form.addRow(self.tr("Stage"), self.stage)
        self.do_not_call = QCheckBox(self.tr("Do not call"), self)
        self.do_not_call.setChecked(bool(detail and detail.do_not_call))
        form.addRow("", self.do_not_call)

        self.error = error_label(self)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: e.text() for k, e in self.inputs.items()}
        out["status"] = self.status.currentData()
        out["stage"] = self.stage.currentData()
        out["do_not_call"] = self.do_not_call.isChecked()
        return out

    def _save(self) -> None:
        try:
            if self._detail is None:
                phone = self.phone.text() if self.phone is not None else ""
                self.saved_id = self._service.create_customer(self.values(), phone=phone)
            else:
                self._service.update_fields(self._detail.id, self.values())
                self.saved_id = self._detail.id
        except ValidationError as exc:
            self.show_error(str(exc), exc.field)
            return
        except NotFoundError as exc:
            self.show_error(str(exc), "")
            return
        self.accept()

    def show_error(self, message: str, field: str) -> None:
        log.info("customer dialog: %s", message)
        self.error.setText(message)
        self.error.show()
        target = self.inputs.get(field) or (self.phone if field == "phone" else None)
        if target is not None:
            target.setFocus(Qt.FocusReason.OtherFocusReason)


class PhoneDialog(QDialog):
    """Add (phone None) or edit a number, previewing how it will be stored.

    An invalid number may still be saved — it is kept as typed and flagged — because an
    agent's odd extension or foreign number must never be silently dropped.
    """

    def __init__(self, normalize: Callable[[str], NormalizedPhone], raw: str = "",
                 label: str = "mobile", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._normalize = normalize
        self.setWindowTitle(self.tr("Phone number"))
        self.setMinimumWidth(380)
        self.number = QLineEdit(raw, self)
        self.number.setObjectName("phoneNumberInput")
        self.number.setPlaceholderText(self.tr("e.g. +86 138 0013 8000 or 010 6552 9988"))
        self.label_combo = QComboBox(self)
        fill_combo(self.label_combo, PHONE_LABELS, label, phone_label)
        self.preview = QLabel(self)
        self.preview.setObjectName("phonePreview")
        self.preview.setWordWrap(True)
        self.error = error_label(self)
        form = QFormLayout()
        form.addRow(self.tr("Number"), self.number)
        form.addRow(self.tr("Type"), self.label_combo)
        form.addRow("", self.preview)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.number.textChanged.connect(self._update_preview)
        self._update_preview(raw)

    def _update_preview(self, text: str) -> None:
        if not text.strip():
            self.preview.setText(self.tr("Type the number as the customer gave it."))
            return
        n = self._normalize(text)
        if n.valid:
            self.preview.setText(self.tr("Will be dialled as %1").replace("%1", n.e164 or ""))
        else:
            self.preview.setText(self.tr(
                "⚠ %1. It will be kept as typed and flagged.").replace("%1", n.problem))

    def _save(self) -> None:
        if not self.number.text().strip():
            self.error.setText(self.tr("Type a phone number."))
            self.error.show()
            return
        self.accept()

    def result_values(self) -> tuple[str, str]:
        return self.number.text().strip(), str(self.label_combo.currentData())
