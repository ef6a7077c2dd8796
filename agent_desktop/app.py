"""The composition root: the one place that knows every package and wires them together.

Everything is constructed here and passed in — no globals, no service locator — so each
part can be built on its own in tests. Later features plug in as clearly marked blocks
below (softphone, sync client, import/export); each block is "construct, then connect".

Start-up is kept lean for the first paint (≤ 300 ms at 1M customers): the list shows the
first keyset page only (nothing is counted or sorted), demo data is generated only into an
empty database, and UI modules are imported here, after the QApplication exists, rather
than at module import time.

Environment hooks:
    AGENT_DESKTOP_BENCH_FIRST_PAINT=1   print one `FIRST_PAINT {...}` line once the list has
                                        painted rows, then quit (tests/bench).
    AGENT_DESKTOP_E2E_SCRIPT=path       run a scripted scenario in-process (tests/e2e).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Signal

from agent_desktop.credentials import CredentialStore
from agent_desktop.early_log import EarlyLog
from agent_desktop.first_page import FirstPageReader
from agent_desktop.paths import AppPaths
from agent_desktop.settings import Settings

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from agent_desktop.calls import CallService
    from agent_desktop.customers import CustomerService
    from agent_desktop.phones import PhoneNormalizer
    from agent_desktop.search import CustomerSearch
    from agent_desktop.store.db import Database
    from agent_desktop.wrapup import WrapupService
    from ui.customer_list_model import PageSource
    from ui.first_paint import StartupTimer
    from ui.followups_reminder import ReminderPopup
    from ui.main_window import MainWindow

log = logging.getLogger(__name__)

EXIT_STORE_ERROR = 2
DEFAULT_DEMO_ROWS = 10_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="agent-desktop",
                                description="Softphone and customer workspace for agents.")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="keep every file (database, settings, logs) under this folder")
    p.add_argument("--demo-rows", type=int, default=DEFAULT_DEMO_ROWS, metavar="N",
                   help="demo customers generated on first start into an empty database "
                        f"(default {DEFAULT_DEMO_ROWS}; 0 = none)")
    p.add_argument("--lang", choices=("en", "zh_CN"), default=None,
                   help="user-interface language (default: the general.language setting)")
    p.add_argument("--no-phone", action="store_true",
                   help="start without the softphone (no SIP stack, no simulated line)")
    p.add_argument("--no-sync", action="store_true",
                   help="start without syncing (no embedded or central server)")
    args = p.parse_args(argv)
    if args.demo_rows < 0:
        p.error("--demo-rows must be 0 or more")
    return args


@dataclass
class AppContext:
    """What the composition root built; kept alive for the process (and for tests)."""

    paths: AppPaths
    settings: Settings
    credentials: CredentialStore
    db: Database
    search: CustomerSearch
    customers: CustomerService
    normalizer: PhoneNormalizer
    window: MainWindow
    log_handler: logging.Handler | None = None
    phone_enabled: bool = True
    sync_enabled: bool = True
    demo_rows: int = 0
    # Set by the deferred start-up blocks (app_phone.py, app_sync.py) once they are built.
    calls: CallService | None = None
    wrapups: WrapupService | None = None
    reminder_popup: ReminderPopup | None = None
    startup_timer: StartupTimer | None = None  # start-up phases, logged once up
    keep: list[Any] = field(default_factory=list)  # translators, hooks: keep references
    stoppers: list[Any] = field(default_factory=list)  # called in reverse order on close

    def close(self) -> None:
        """Release what the process would release at exit (tests build several apps)."""
        self.stop_background()
        self.window.close()
        self.window.deleteLater()
        self.db.close()
        from PySide6.QtCore import QCoreApplication, QTranslator

        for obj in self.keep:
            if isinstance(obj, QTranslator):
                QCoreApplication.removeTranslator(obj)
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
            self.log_handler.close()

    def stop_background(self) -> None:
        """Stop what runs beside the window (SIP engine, simulated line), newest first."""
        while self.stoppers:
            stop = self.stoppers.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping %r failed", stop)


def show_fatal(text: str) -> None:
    """A plain, blocking message for errors that stop the app before its window exists."""
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Critical, "Agent Desktop", text)
    box.exec()


def _qapp(argv: Sequence[str]) -> QApplication:
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(list(argv))
    app.setApplicationName("Agent Desktop")
    app.setOrganizationName("agent-desktop")
    _cjk_font_fallback(app)
    return app


def _cjk_font_fallback(app: QApplication) -> None:
    """Prefer the platform font, then CJK-capable families so Chinese never shows as boxes."""
    font = app.font()
    families = [*font.families(), "Noto Sans CJK SC", "WenQuanYi Micro Hei",
                "Source Han Sans SC", "Microsoft YaHei", "PingFang SC"]
    font.setFamilies(list(dict.fromkeys(families)))
    app.setFont(font)


def _load_demo_data(db: Database, rows: int) -> None:
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


@dataclass
class _Start:
    """What the first frame needs, built before any store code is imported."""

    args: argparse.Namespace
    app: QApplication
    paths: AppPaths
    settings: Settings
    credentials: CredentialStore
    early_log: EarlyLog | None
    translators: list[Any]
    timer: StartupTimer
    bench_first_paint: bool
    handler: logging.Handler | None = None

    def open_log(self) -> logging.Handler:
        """The log file (rotating); what was logged before it is written to it first."""
        if self.handler is None:
            from agent_desktop.logging_setup import configure_logging

            self.handler = configure_logging(self.paths.log_file)
            if self.early_log is not None:
                self.early_log.hand_over(self.handler)
                self.early_log = None
        return self.handler

    def release_logging(self) -> None:
        root = logging.getLogger()
        for h in (self.early_log, self.handler):
            if h is not None:
                root.removeHandler(h)
                h.close()


def _start(args: argparse.Namespace, argv: Sequence[str], *,
           defer_log_file: bool = False) -> _Start:
    """Logging, settings, the QApplication and its translators: no database yet."""
    # First thing: PySide6 6.12 on Python 3.11 leaks references to None/True on every void
    # call and emit; unpinned, a session aborts the interpreter after a few thousand calls.
    from agent_desktop.phone import install_emit_refcount_fix

    install_emit_refcount_fix()
    from ui.first_paint import StartupTimer

    timer = StartupTimer()
    bench_first_paint = os.environ.get("AGENT_DESKTOP_BENCH_FIRST_PAINT") == "1"
    paths = AppPaths.from_root(args.data_dir)
    paths.ensure()
    early_log = handler = None
    if defer_log_file:  # the file is opened right after the first frame
        early_log = EarlyLog().attach()
    else:
        from agent_desktop.logging_setup import configure_logging

        handler = configure_logging(paths.log_file)
    log.info("starting; data in %s", paths.data_dir)
    settings = Settings.load(paths.settings_file)
    timer.mark("paths+logging+settings")
    app = _qapp(argv or [sys.argv[0]])
    timer.mark("QApplication")

    from ui.i18n import install_translators

    translators = install_translators(app, args.lang or settings.get("general.language"))
    credentials = CredentialStore()
    timer.mark("translators")
    start = _Start(args, app, paths, settings, credentials, early_log, list(translators),
                   timer, bench_first_paint, handler)
    return start


def _window(start: _Start, source: PageSource) -> MainWindow:
    """The main window with the customer list's first page; the other panes come later."""
    from ui.customer_list_model import CustomerListModel
    from ui.customer_list_panel import CustomerListPanel
    from ui.main_window import MainWindow
    from ui.ui_state import UiState

    start.timer.mark("UI imports")
    list_panel = CustomerListPanel(CustomerListModel(source))
    window = MainWindow(list_panel, UiState(start.paths.ui_state_file))
    window.restore_ui_state()
    start.timer.mark("UI build")
    list_panel.load()
    start.timer.mark("first page")
    return window


def _open_store(start: _Start) -> Database | None:
    """The database, migrated; None after telling the agent why it cannot be used."""
    from agent_desktop.store.db import Database, StoreError

    start.timer.mark("store imports (SQLAlchemy)")
    try:
        db = Database.open(start.paths.database)
    except StoreError as exc:
        log.error("database refused: %s", exc)
        show_fatal(str(exc))
        return None
    start.timer.mark("database open + migration check")
    return db


def _workspace(start: _Start, db: Database, window: MainWindow | None) -> AppContext:
    """Services, the detail pane and Today, attached to `window` (built here if None)."""
    from agent_desktop.customers import CustomerService
    from agent_desktop.phones import PhoneNormalizer
    from agent_desktop.search import CustomerSearch

    args, timer = start.args, start.timer
    normalizer = PhoneNormalizer(start.settings.get("general.default_region"))
    search = CustomerSearch(db, normalizer)
    customers = CustomerService(db, normalizer)
    timer.mark("services (phonenumbers, ORM models)")
    _load_demo_data(db, args.demo_rows)
    timer.mark("demo data check")

    # -- customer workspace ---------------------------------------------------------------
    if window is None:
        window = _window(start, search)
    else:
        # Hand-over from the first-page reader: same rows and page keys, no reset.
        early = window.customer_list.model.source
        window.customer_list.model.set_source(search)
        if isinstance(early, FirstPageReader):
            early.close()
    from ui.detail_pane import DetailPane
    from ui.today_view import TodayModel, TodayView

    detail = DetailPane(customers)
    window.attach_workspace(customers, detail, TodayView(TodayModel(customers)))
    timer.mark("detail pane + Today")
    ctx = AppContext(start.paths, start.settings, start.credentials, db, search, customers,
                     normalizer, window, log_handler=start.open_log(),
                     # The benchmark quits once up: no SIP stack to start/stop.
                     phone_enabled=not args.no_phone and not start.bench_first_paint,
                     sync_enabled=not args.no_sync and not start.bench_first_paint,
                     demo_rows=args.demo_rows,
                     keep=list(start.translators))
    window.settings_requested.connect(lambda: _open_settings(ctx))
    detail.play_recording_requested.connect(lambda rel: _play_recording(ctx, rel))

    # -- softphone (sip/, ui/softphone_*, ui/call_*, ui/wrapup_dialog.py) ----------------
    # Started right after the first paint (the simulated line takes a second): see
    # _start_phone. Stopped on app.aboutToQuit, before the window and database go.
    start.app.aboutToQuit.connect(ctx.stop_background)

    # -- sync client (sync/client, ui/sync_*) --------------------------------------------
    # Started right after the first paint as well: see _start_sync.

    # -- import / export (ui/import_dialog.py, ui/export_action.py) ---------------------
    _wire_import_export(ctx)
    ctx.startup_timer = timer
    return ctx


def _start_script(ctx: AppContext, app: QApplication) -> None:
    if script := os.environ.get("AGENT_DESKTOP_E2E_SCRIPT"):
        from PySide6.QtCore import QTimer

        from ui.scripted_scenario import ScriptedScenario

        scenario = ScriptedScenario(Path(script), ctx.window, app)
        ctx.keep.append(scenario)
        QTimer.singleShot(0, scenario.start)


def build(args: argparse.Namespace, argv: Sequence[str] = (), *,
          start: _Start | None = None) -> AppContext | int:
    """Construct and wire everything, then show; an int is an exit code (start-up refused).

    Everything is in place when this returns (tests rely on it). `run()` takes the faster
    road when it can: see `_build_after_first_frame`.
    """
    start = start or _start(args, argv)
    db = _open_store(start)
    if db is None:
        start.release_logging()
        return EXIT_STORE_ERROR
    ctx = _workspace(start, db, None)
    from ui.first_paint import AfterFirstPaint

    window = ctx.window
    # Not needed for the first frame: built right after it (start-up stays lean).
    ctx.keep.append(AfterFirstPaint(window.customer_list.table,
                                    lambda: _after_first_paint(ctx)))
    window.show()
    if start.bench_first_paint:
        from ui.first_paint import FirstPaintProbe

        # Everything is built: the report (and quit) follows the first paint.
        probe = FirstPaintProbe(window.customer_list.table, start.app)
        probe.ready()
        ctx.keep.append(probe)
    _start_script(ctx, start.app)
    return ctx


def _build_after_first_frame(start: _Start, reader: FirstPageReader,
                             done: Callable[[AppContext | int], None]) -> MainWindow:
    """Show the list's first page (read by `reader`) at once; build the rest after it.

    The window is the real one: the list model and panel are the real ones, reading their
    first page from plain sqlite3; the detail pane and Today have stand-ins that look as the
    empty panes do. Right after the first frame is painted, the store, the services and the
    remaining panes are built and attached, and the list hands over to `CustomerSearch`
    keeping its rows, selection and scroll position. `done` gets the context (or the exit
    code of a refused database, after the agent was told why).
    """
    from ui.first_paint import AfterFirstPaint, FirstPaintProbe

    window = _window(start, reader)
    table = window.customer_list.table
    probe = (FirstPaintProbe(table, start.app, watch=False) if start.bench_first_paint
             else None)

    def complete() -> None:
        if probe is not None:
            probe.painted()
        start.timer.first_paint()
        start.open_log()
        db = _open_store(start)
        if db is None:
            reader.close()
            window.hide()
            window.deleteLater()
            start.release_logging()
            done(EXIT_STORE_ERROR)
            start.app.exit(EXIT_STORE_ERROR)
            return
        ctx = _workspace(start, db, window)
        ctx.keep.append(hook)
        done(ctx)
        if probe is not None:
            # The benchmark measures the app as built (not the deferred extras), then quits.
            start.timer.report()
            probe.ready()
            return
        _after_first_paint(ctx)
        _start_script(ctx, start.app)

    hook = AfterFirstPaint(table, complete, require_rows=True)
    window.show()
    return window


def _after_first_paint(ctx: AppContext) -> None:
    """Deferred start-up: Today list, follow-up reminders, today's figures, warnings."""
    if ctx.startup_timer is not None:
        ctx.startup_timer.first_paint()  # no-op when the early frame already said so
    w = ctx.window
    w.today.model.refresh()
    if ctx.settings.warnings:
        _show_settings_warnings(w, ctx.settings.warnings)

    # -- follow-up reminders (agent_desktop/followups.py, ui/followups_reminder.py) -------
    from agent_desktop.followups import FollowupService
    from ui.followups_reminder import FollowupReminder, ReminderPopup

    reminder = FollowupReminder(
        FollowupService(ctx.db), parent=w,
        notify=lambda title, text: w.statusBar().showMessage(f"{title}: {text}", 15_000))
    popup = ReminderPopup(w)
    popup.setObjectName("reminderPopup")
    reminder.reminder.connect(popup.show_followups)
    # "Call" opens the customer; with the phone up it also dials (see _start_phone).
    popup.call_requested.connect(lambda cid: w.open_customer(cid, focus=True))
    ctx.customers.tasks_changed.connect(reminder.rearm)
    reminder.start()
    ctx.reminder_popup = popup
    ctx.keep += [reminder, popup]

    # -- today's figures in the status bar (agent_desktop/agent_stats.py) ----------------
    from agent_desktop.agent_stats import AgentStatsService
    from ui.agent_stats_widget import AgentStatsWidget

    stats = AgentStatsWidget(AgentStatsService(ctx.db, agent=ctx.settings.get("sip.username")))
    stats.setObjectName("agentStats")
    w.add_status_widget(stats)
    ctx.keep.append(stats)

    # Search-index recovery and the integrity check of the whole file take seconds on a
    # big database, so they run off the GUI thread.
    _check_integrity_in_background(ctx)

    # Calls a crash or kill left open are finished (recordings repaired and hashed) before
    # the phone starts, with or without the phone enabled.
    try:
        from agent_desktop.call_recovery import recover_interrupted_calls

        recover_interrupted_calls(ctx.db, ctx.paths.recordings_dir)
    except Exception:
        log.exception("could not finish calls interrupted by the last stop")

    if ctx.phone_enabled:
        from agent_desktop.app_phone import start_phone

        start_phone(ctx, on_calls_changed=stats.refresh)
    if ctx.sync_enabled:
        from agent_desktop.app_sync import start_sync

        start_sync(ctx)
    if ctx.startup_timer is not None:
        ctx.startup_timer.mark("deferred start-up")
        ctx.startup_timer.report()


def _check_integrity_in_background(ctx: AppContext) -> None:
    import threading

    relay = _Relay(ctx.window)
    ctx.keep.append(relay)

    def report(problem: str, _unused: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        title = QCoreApplication.translate("App", "Database problem")
        QMessageBox.warning(ctx.window, title, problem)

    relay.done.connect(report)

    def check() -> None:
        try:
            # A first download killed mid-way leaves the search triggers suspended; put
            # them back even when sync is off (--no-sync), so search stays right.
            from sync.client.bulk_apply import recover_search_index

            recover_search_index(ctx.db)
        except Exception:
            log.exception("search index recovery could not run")
        try:
            problem = ctx.db.integrity_problem()
        except Exception:
            log.exception("integrity check could not run")
            return
        if problem:
            relay.done.emit(problem, "")

    threading.Thread(target=check, name="integrity-check", daemon=True).start()


class _Relay(QObject):
    """Brings a background thread's result to the GUI thread (queued signal)."""

    done = Signal(str, str)  # result, error





def _wire_import_export(ctx: AppContext) -> None:
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

    def open_export() -> None:
        controller = next((k for k in ctx.keep if type(k).__name__ == "ExportController"),
                          None)
        if controller is None:
            from agent_desktop.exporting import CustomerExporter
            from ui.export_action import ExportController

            controller = ExportController(CustomerExporter(ctx.db), w)
            ctx.keep.append(controller)
        controller.choose_file()

    w.import_requested.connect(open_import)
    w.export_requested.connect(open_export)


def _play_recording(ctx: AppContext, relative: str) -> None:
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


def _open_settings(ctx: AppContext) -> None:
    from ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(ctx.settings, ctx.window)
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()


def _show_settings_warnings(parent: Any, warnings: list[str]) -> None:
    from PySide6.QtWidgets import QMessageBox

    title = QCoreApplication.translate("App", "Settings")
    intro = QCoreApplication.translate("App", "Some settings could not be used:")
    box = QMessageBox(QMessageBox.Icon.Warning, title, intro + "\n\n" + "\n".join(warnings),
                      QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("settingsWarnings")
    box.open()


def run(argv: Sequence[str] | None = None) -> int:
    """The process: the first page on screen as early as possible, then everything else."""
    args = parse_args(argv)
    start = _start(args, [sys.argv[0]], defer_log_file=True)
    from ui.customer_list_model import PAGE_ROWS

    reader = FirstPageReader.open(start.paths.database, PAGE_ROWS)
    start.timer.mark("first page read (sqlite3)")
    outcome: list[AppContext | int] = []
    if reader is None:
        start.open_log()
        # No customers yet, a migration to run, or a database to refuse: the full path,
        # which says what is wrong before any window is shown.
        result = build(args, start=start)
        if isinstance(result, int):
            return result
        outcome.append(result)
    else:
        _build_after_first_frame(start, reader, outcome.append)
    try:
        code = int(start.app.exec())
    finally:
        log.info("stopped")
        if outcome and isinstance(outcome[0], AppContext):
            outcome[0].close()
        elif not outcome:  # quit before the rest was built
            if reader is not None:
                reader.close()
            start.release_logging()
    return outcome[0] if outcome and isinstance(outcome[0], int) else code
