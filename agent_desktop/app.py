"""The composition root: the one place that decides what is built and wires it together.

Read it top to bottom; start-up happens in this order:

1. `run()` — logging into memory, settings, the QApplication and its translators
   (`startup.begin`): no database, no SQLAlchemy yet.
2. The first page of the customer list, read with plain sqlite3 (`FirstPageReader`), is
   painted in the real window, already in its final layout (stand-ins for the detail pane,
   Today and the phone docks).
3. Right after that frame: the store (`startup.open_store`: migrated on a worker thread
   behind a progress window when the schema is behind).
4. The services and the workspace panes (`_workspace`), attached in place of the stand-ins.
5. Deferred extras (`_after_first_paint`): Today, reminders, figures, integrity check.
6. The softphone (`app_phone.start_phone`) fills its reserved docks.
7. Sync (`app_sync.start_sync`).

When the first page cannot be read early (no customers yet, a migration due, a database to
refuse) `build()` runs the same stages in one go before the window is shown; tests use it
to get the real wiring offscreen. Everything is constructed here (or by the `app_*` and
`startup` modules, parts of this root) and passed in — no globals, no service locator.

Environment hooks:
    AGENT_DESKTOP_BENCH_FIRST_PAINT=1   print one `FIRST_PAINT {...}` line once the list has
                                        painted rows, then quit (tests/bench).
    AGENT_DESKTOP_E2E_SCRIPT=path       run a scripted scenario in-process (tests/e2e).
    AGENT_DESKTOP_LAYOUT_SHOTS=folder   save the window (PNG) and its layout (JSON) at the
                                        first frame and once everything is up (tests/e2e).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_desktop import startup
from agent_desktop.credentials import CredentialStore
from agent_desktop.first_page import FirstPageReader
from agent_desktop.paths import AppPaths
from agent_desktop.settings import Settings
from agent_desktop.startup import Startup

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from agent_desktop.calls import CallService
    from agent_desktop.customers import CustomerService
    from agent_desktop.phones import PhoneNormalizer
    from agent_desktop.search import CustomerSearch
    from agent_desktop.store.db import Database
    from agent_desktop.wrapup import WrapupService
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


def _open_store(start: Startup) -> Database | None:
    # Looked up at call time: tests replace show_fatal on this module.
    return startup.open_store(start, lambda text: show_fatal(text))


# -- 1 + 2: the process, the first frame -----------------------------------------------------

def run(argv: Sequence[str] | None = None) -> int:
    """The process: the first page on screen as early as possible, then everything else."""
    args = parse_args(argv)
    start = startup.begin(args, [sys.argv[0]], defer_log_file=True)
    from ui.customer_list_model import PAGE_ROWS

    reader = FirstPageReader.open(start.paths.database, PAGE_ROWS)
    start.timer.mark("first page read (sqlite3)")
    outcome: list[AppContext | int] = []
    if reader is None:
        start.open_log()
        # No customers yet, a migration to run, or a database to refuse: the full path,
        # which says what is wrong (or shows the migration) before the window is shown.
        result = build(args, start=start)
        if isinstance(result, int):
            return result
        outcome.append(result)
    else:
        _first_frame_then_the_rest(start, reader, outcome)
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


def _first_frame_then_the_rest(start: Startup, reader: FirstPageReader,
                               outcome: list[AppContext | int]) -> None:
    """The real window on the reader's first page at once; right after that frame, the
    store and the workspace, attached to the same window (same rows, selection, scroll)."""

    def complete(window: MainWindow) -> bool:
        db = _open_store(start)
        if db is None:
            reader.close()
            window.hide()
            window.deleteLater()
            start.release_logging()
            outcome.append(start.store_exit_code)
            start.app.exit(start.store_exit_code)
            return False
        ctx = _workspace(start, db, window)
        outcome.append(ctx)
        if not start.bench_first_paint:  # the benchmark quits once the workspace is up
            _after_first_paint(ctx)
            _start_script(ctx, start.app)
        return True

    startup.show_first_frame(start, reader, complete)


def build(args: argparse.Namespace, argv: Sequence[str] = (), *,
          start: Startup | None = None) -> AppContext | int:
    """Construct and wire everything, then show; an int is an exit code (start-up refused).

    Everything is in place when this returns (tests rely on it). `run()` takes the faster
    road when it can: see `_first_frame_then_the_rest`.
    """
    start = start or startup.begin(args, argv)
    db = _open_store(start)
    if db is None:
        start.release_logging()
        return start.store_exit_code
    ctx = _workspace(start, db, None)
    from ui.first_paint import AfterFirstPaint

    # Not needed for the first frame: built right after it (start-up stays lean).
    ctx.keep.append(AfterFirstPaint(ctx.window.customer_list.table,
                                    lambda: _after_first_paint(ctx)))
    ctx.window.show()
    if (probe := startup.probe_when_built(start, ctx.window)) is not None:
        ctx.keep.append(probe)
    _start_script(ctx, start.app)
    return ctx


# -- 3 + 4: store, services, workspace -------------------------------------------------------

def _workspace(start: Startup, db: Database, window: MainWindow | None) -> AppContext:
    """Services, the detail pane and Today, attached to `window` (built here if None)."""
    from agent_desktop import app_workspace as parts
    from agent_desktop.customers import CustomerService
    from agent_desktop.phones import PhoneNormalizer
    from agent_desktop.search import CustomerSearch

    args, timer = start.args, start.timer
    normalizer = PhoneNormalizer(start.settings.get("general.default_region"))
    search = CustomerSearch(db, normalizer)
    customers = CustomerService(db, normalizer)
    timer.mark("services (phonenumbers, ORM models)")
    parts.load_demo_data(db, args.demo_rows)
    timer.mark("demo data check")

    # -- customer workspace ---------------------------------------------------------------
    if window is None:
        window = startup.first_window(start, search)
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
                     phone_enabled=start.phone_wanted and not start.bench_first_paint,
                     sync_enabled=not args.no_sync and not start.bench_first_paint,
                     demo_rows=args.demo_rows,
                     keep=[*start.translators, *start.keep])
    window.settings_requested.connect(lambda: parts.open_settings(ctx))
    detail.play_recording_requested.connect(lambda rel: parts.play_recording(ctx, rel))
    # The softphone and sync start right after the first paint (_after_first_paint) and
    # stop on app.aboutToQuit, before the window and database go.
    start.app.aboutToQuit.connect(ctx.stop_background)

    # -- import / export (ui/import_dialog.py, ui/export_action.py) ---------------------
    parts.wire_import_export(ctx)
    ctx.startup_timer = timer
    return ctx


# -- 5, 6, 7: after the first paint ----------------------------------------------------------

def _after_first_paint(ctx: AppContext) -> None:
    """Deferred start-up: Today, reminders, today's figures, checks, then phone and sync."""
    from agent_desktop import app_workspace as parts

    if ctx.startup_timer is not None:
        ctx.startup_timer.first_paint()  # no-op when the early frame already said so
    w = ctx.window
    w.today.model.refresh()
    if ctx.settings.warnings:
        parts.show_settings_warnings(w, ctx.settings.warnings)
    parts.start_reminders(ctx)
    stats = parts.add_todays_figures(ctx)
    ctx.keep.append(startup.check_integrity_in_background(
        ctx.db, w, lambda problem: parts.show_database_problem(ctx, problem)))
    parts.start_search_warmup(ctx)
    parts.finish_interrupted_calls(ctx)

    # -- softphone (sip/, ui/softphone_*, ui/call_*, ui/wrapup_dialog.py) ----------------
    if ctx.phone_enabled:
        from agent_desktop.app_phone import start_phone

        start_phone(ctx, on_calls_changed=stats.refresh)
    # -- sync client (sync/client, ui/sync_*) --------------------------------------------
    if ctx.sync_enabled:
        from agent_desktop.app_sync import start_sync

        start_sync(ctx)
    if ctx.startup_timer is not None:
        ctx.startup_timer.mark("deferred start-up")
        ctx.startup_timer.report()
    if os.environ.get("AGENT_DESKTOP_LAYOUT_SHOTS"):  # e2e: the window once all is in
        from PySide6.QtCore import QTimer

        from ui.first_paint import save_layout_shot

        QTimer.singleShot(800, lambda: save_layout_shot(w, "everything-up"))


def _start_script(ctx: AppContext, app: QApplication) -> None:
    if script := os.environ.get("AGENT_DESKTOP_E2E_SCRIPT"):
        from PySide6.QtCore import QTimer

        from ui.scripted_scenario import ScriptedScenario

        scenario = ScriptedScenario(Path(script), ctx.window, app)
        ctx.keep.append(scenario)
        QTimer.singleShot(0, scenario.start)
