"""Translated labels for stored codes (status, stage, phone label).

Codes stay English in the database and on the wire; only their display is translated, in
one place so the list, the detail pane and the dialogs agree. Unknown codes (from an import
or a newer server) are shown as they are rather than hidden.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication


def status_label(code: str) -> str:
    labels = {
        "new": QCoreApplication.translate("Labels", "New"),
        "contacted": QCoreApplication.translate("Labels", "Contacted"),
        "callback": QCoreApplication.translate("Labels", "Call back"),
        "interested": QCoreApplication.translate("Labels", "Interested"),
        "customer": QCoreApplication.translate("Labels", "Customer"),
        "not_interested": QCoreApplication.translate("Labels", "Not interested"),
        "do_not_call": QCoreApplication.translate("Labels", "Do not call"),
    }
    return labels.get(code, code)


def stage_label(code: str) -> str:
    labels = {
        "lead": QCoreApplication.translate("Labels", "Lead"),
        "qualified": QCoreApplication.translate("Labels", "Qualified"),
        "proposal": QCoreApplication.translate("Labels", "Proposal"),
        "negotiation": QCoreApplication.translate("Labels", "Negotiation"),
        "won": QCoreApplication.translate("Labels", "Won"),
        "lost": QCoreApplication.translate("Labels", "Lost"),
    }
    return labels.get(code, code)


def phone_label(code: str) -> str:
    labels = {
        "mobile": QCoreApplication.translate("Labels", "Mobile"),
        "work": QCoreApplication.translate("Labels", "Work"),
        "home": QCoreApplication.translate("Labels", "Home"),
        "fax": QCoreApplication.translate("Labels", "Fax"),
        "other": QCoreApplication.translate("Labels", "Other"),
    }
    return labels.get(code, code)
