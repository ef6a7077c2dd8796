"""Composition root, workspace part: the pieces `app.py` wires around the customer
workspace — demo data on a first start, File-menu dialogs, recordings, settings warnings,
follow-up reminders and today's figures. Split from `app.py` so that it reads as the order
of construction; like it, it may know every package (tests/unit/test_layering.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication

if TYPE_CHECKING:
    from agent_desktop.app import AppContext
    from agent_desktop.store.db import Database
    from ui.agent_stats_widget import AgentStatsWidget

log = logging.getLogger(__name__)


def load_demo_data(db: Database, rows: int) -> None:
    """Generate demo customers into an EMPTY database only (never touches real data)."""
    if rows <= 0:
        return
    from sqlalchemy import text

    with db.engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM customers LIMIT 1")).first() is not None:
            return
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication, QLabel

    from agent_desktop.demo import ensure_demo_data

    log.info("generating %d demo customers", rows)
    # First start only, a few seconds: say what is happening instead of showing nothing.
    message = QCoreApplication.translate(
        "App", "Preparing %1 demo customers for the first start…").replace("%1", f"{rows:,}")
    note = QLabel(message)
    note.setWindowTitle("Agent Desktop")
    note.setAlignment(Qt.AlignmentFlag.AlignCenter)
    note.setMargin(32)
    note.setObjectName("demoDataNote")
    note.show()
    QApplication.processEvents()
    try:
        ensure_demo_data(db, rows)
    finally:
        note.close()
        note.deleteLater()


def wire_import_export(ctx: AppContext) -> None:
    """File → Import… / Export…; the dialogs and their modules load on first use."""
    w = ctx.window

    def open_import() -> None:
        from agent_desktop.importing.service import ImportService
        from ui.import_dialog import ImportDialog

        dialog = ImportDialog(ImportService(ctx.db, ctx.normalizer), w)
        dialog.setObjectName("importDialog")
        dialog.imported.connect(lambda _result: w.refresh_list())
        dialog.imported.connect(lambda _result: w.today.model.refresh())
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    exporter: list[Any] = []  # one controller, made on first use

    def open_export() -> None:
        if not exporter:
            from agent_desktop.exporting import CustomerExporter
            from ui.export_action import ExportController

            exporter.append(ExportController(CustomerExporter(ctx.db), w))
            ctx.keep.append(exporter[0])
        exporter[0].choose_file()

    w.import_requested.connect(open_import)
    w.export_requested.connect(open_export)


def play_recording(ctx: AppContext, relative: str) -> None:
    """Open a call recording in the system's audio player (a WAV any player reads)."""
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices

    path = ctx.paths.recordings_dir / relative
    if not path.is_file():
        ctx.window.statusBar().showMessage(QCoreApplication.translate(
            "App", "The recording is not on this computer: %1").replace("%1", str(path)),
            15_000)
        return
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        ctx.window.statusBar().showMessage(QCoreApplication.translate(
            "App", "No audio player is set up to open %1").replace("%1", str(path)), 15_000)


def open_settings(ctx: AppContext) -> None:
    from ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(ctx.settings, ctx.window)
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()


def show_settings_warnings(parent: Any, warnings: list[str]) -> None:
    from PySide6.QtWidgets import QMessageBox

    title = QCoreApplication.translate("App", "Settings")
    intro = QCoreApplication.translate("App", "Some settings could not be used:")
    box = QMessageBox(QMessageBox.Icon.Warning, title, intro + "\n\n" + "\n".join(warnings),
                      QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("settingsWarnings")
    box.open()


def show_database_problem(ctx: AppContext, problem: str) -> None:
    from PySide6.QtWidgets import QMessageBox

    title = QCoreApplication.translate("App", "Database problem")
    QMessageBox.warning(ctx.window, title, problem)


def start_reminders(ctx: AppContext) -> None:
    """Follow-up reminders: a popup when a follow-up falls due (agent_desktop/followups.py,
    ui/followups_reminder.py). "Call" opens the customer; with the phone up it also dials
    (connected in app_phone.py)."""
    from agent_desktop.followups import FollowupService
    from ui.followups_reminder import FollowupReminder, ReminderPopup

    w = ctx.window
    reminder = FollowupReminder(
        FollowupService(ctx.db), parent=w,
        notify=lambda title, text: w.statusBar().showMessage(f"{title}: {text}", 15_000))
    popup = ReminderPopup(w)
    popup.setObjectName("reminderPopup")
    reminder.reminder.connect(popup.show_followups)
    popup.call_requested.connect(lambda cid: w.open_customer(cid, focus=True))
    ctx.customers.tasks_changed.connect(reminder.rearm)
    reminder.start()
    ctx.reminder_popup = popup
    ctx.keep += [reminder, popup]


def add_todays_figures(ctx: AppContext) -> AgentStatsWidget:
    """Today's call figures in the status bar (agent_desktop/agent_stats.py)."""
    from agent_desktop.agent_stats import AgentStatsService
    from ui.agent_stats_widget import AgentStatsWidget

    stats = AgentStatsWidget(AgentStatsService(ctx.db, agent=ctx.settings.get("sip.username")))
    stats.setObjectName("agentStats")
    ctx.window.add_status_widget(stats)
    ctx.keep.append(stats)
    return stats


def finish_interrupted_calls(ctx: AppContext) -> None:
    """Calls a crash or kill left open are finished (recordings repaired and hashed) before
    the phone starts, with or without the phone enabled."""
    try:
        from agent_desktop.call_recovery import recover_interrupted_calls

        recover_interrupted_calls(ctx.db, ctx.paths.recordings_dir)
    except Exception:
        log.exception("could not finish calls interrupted by the last stop")


def start_search_warmup(ctx: AppContext) -> None:
    """Read the b-trees searches use into the OS cache at idle priority, then pay the
    search's one-off costs on that same thread (agent_desktop/search_warm.py says why)."""
    if ctx.db.path is None:
        return
    from agent_desktop.search_warm import SearchWarmer, WarmReport

    search = ctx.search

    def done(report: WarmReport) -> None:
        if not report.interrupted:  # interrupted = the app is closing
            search.prepare()

    warmer = SearchWarmer(ctx.db.path, on_done=done)
    warmer.start()
    ctx.stoppers.append(warmer.stop)
