"""How the app starts, in stages, for `agent_desktop.app` (the composition root).

Why a module of its own: the composition root should read as *what* is built and in which
order; the mechanics of a fast start live here — the QApplication and its translators
before any store code, the log file opened only after the first frame, the window built
around whatever page source is ready first, the database opened (and migrated, with a
progress window when that takes a while), and the hand-over from the first frame to the
full workspace. Like `app.py` it may know every package (tests/unit/test_layering.py
names it), but it decides nothing about what the workspace contains.

Nothing here is imported at module level that the first frame does not need: SQLAlchemy,
the ORM models and the detail pane's modules load after the first paint.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Signal

from agent_desktop.credentials import CredentialStore
from agent_desktop.early_log import EarlyLog
from agent_desktop.paths import AppPaths
from agent_desktop.settings import Settings

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from agent_desktop.store.db import Database, Repair
    from ui.customer_list_model import PageSource
    from ui.first_paint import StartupTimer
    from ui.main_window import MainWindow

log = logging.getLogger(__name__)

# Object names of the docks reserved in the first frame (the softphone block fills them).
PHONE_DOCK = "softphonePanel"
DIALER_DOCK = "dialerPanel"
PHONE_DOCK_WIDTH = 360  # the call list panel needs 360 px (English); the phone 304

# Exit codes when the app stops before its workspace is up because of the database (each
# with its own log line; also in README "Exit codes"). 1 stays Python's own (a crash).
EXIT_STORE_REFUSED = 2  # the file cannot be used: locked, read-only, damaged, not ours
EXIT_UPGRADE_STOPPED = 3  # the agent stopped the one-time update (or quit it: disk full)
EXIT_UPGRADE_FAILED = 4  # a migration step failed; the file is as after the step before


@dataclass
class Startup:
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
    keep: list[Any] = field(default_factory=list)  # start-up hooks: keep references
    store_exit_code: int = EXIT_STORE_REFUSED  # why open_store() returned None (EXIT_*)

    @property
    def phone_wanted(self) -> bool:
        """The softphone will be built: its docks belong in the first frame."""
        return not self.args.no_phone

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


def begin(args: argparse.Namespace, argv: Sequence[str], *,
          defer_log_file: bool = False) -> Startup:
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
    app = qapp(argv or [sys.argv[0]])
    timer.mark("QApplication")

    from ui.i18n import install_translators

    translators = install_translators(app, args.lang or settings.get("general.language"))
    credentials = CredentialStore()
    timer.mark("translators")
    return Startup(args, app, paths, settings, credentials, early_log, list(translators),
                   timer, bench_first_paint, handler)


def qapp(argv: Sequence[str]) -> QApplication:
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


def first_window(start: Startup, source: PageSource) -> MainWindow:
    """The main window in its final layout, with the customer list's first page.

    The detail pane and Today are stand-ins until the store is up; when the softphone will
    start, its docks (phone and call list, tabbed on the right) are reserved here, so the
    first frame already has the layout of the finished window — where the agent left them
    last time (saved UI state), or at their default width on a first start.
    """
    from ui.customer_list_model import CustomerListModel
    from ui.customer_list_panel import CustomerListPanel
    from ui.main_window import MainWindow
    from ui.ui_state import UiState

    start.timer.mark("UI imports")
    list_panel = CustomerListPanel(CustomerListModel(source))
    window = MainWindow(list_panel, UiState(start.paths.ui_state_file))
    window.restore_ui_state()
    if start.phone_wanted:
        waiting = QCoreApplication.translate("App", "Starting the phone…")
        phone = window.reserve_dock(PHONE_DOCK, QCoreApplication.translate("App", "Phone"),
                                    waiting)
        window.reserve_dock(DIALER_DOCK, QCoreApplication.translate("App", "Call list"),
                            waiting, tabify_with=phone, width=PHONE_DOCK_WIDTH)
    start.timer.mark("UI build")
    list_panel.load()
    start.timer.mark("first page")
    return window


def open_store(start: Startup, fatal: Callable[[str], None]) -> Database | None:
    """The database, migrated; None after telling the agent why it cannot be used.

    A database behind the newest schema is migrated on a worker thread behind a progress
    window (a migration can take minutes on a big file); the agent may stop it, which
    leaves the file as it was before the interrupted step. Returns None then as well;
    `start.store_exit_code` then says which of the EXIT_* codes the app should exit with.
    """
    from agent_desktop.store_upgrade import upgrade_due

    if upgrade_due(start.paths.database) is not None:
        start.timer.mark("migration check (sqlite3)")
        return _open_with_progress(start, fatal)
    from agent_desktop.store.db import Database, StoreError

    start.timer.mark("store imports (SQLAlchemy)")
    try:
        db = Database.open(start.paths.database, repairs=[search_index_repair()])
    except StoreError as exc:
        _store_exit(start, EXIT_STORE_REFUSED, f"database refused: {exc}")
        fatal(str(exc))
        return None
    start.timer.mark("database open + migration check")
    return db


def _store_exit(start: Startup, code: int, why: str) -> None:
    """One log line per way of stopping before the workspace, with its exit code."""
    start.store_exit_code = code
    log.error("start-up ended (exit code %d): %s", code, why)


def search_index_repair() -> Repair:
    """Before any migration: put back the search triggers and indexes that an interrupted
    first download left dropped (see Repair and agent_desktop/store_upgrade.py)."""
    from agent_desktop.store.db import Repair

    def due(db: Database) -> bool:
        from sync.client.bulk_apply import is_suspended

        with db.transaction() as s:
            return is_suspended(s)

    def run(db: Database) -> None:
        from sync.client.bulk_apply import recover_search_index

        recover_search_index(db)

    title = QCoreApplication.translate(
        "StoreUpgrade", "Rebuilding the search index (an earlier download was interrupted)")
    return Repair(title, due, run)


def _open_with_progress(start: Startup, fatal: Callable[[str], None]) -> Database | None:
    from PySide6.QtCore import QEventLoop

    from agent_desktop.store_upgrade import Outcome, StoreUpgrade
    from ui.migration_window import MigrationWindow

    upgrade = StoreUpgrade(start.paths.database, repairs=[search_index_repair()])
    window = MigrationWindow()
    window.setObjectName("migrationWindow")
    upgrade.step.connect(window.show_step)
    upgrade.progress.connect(window.show_progress)
    upgrade.space_short.connect(
        lambda space: window.ask_about_space(str(space.folder), space.needed, space.free))
    window.stop_requested.connect(upgrade.stop)
    window.skip_backup_requested.connect(upgrade.skip_backup)
    outcome: list[tuple[object, str]] = []
    loop = QEventLoop()

    def finished(db: object, error: str) -> None:
        outcome.append((db, error))
        loop.quit()

    upgrade.finished.connect(finished)
    window.center_on_screen()
    window.show()
    upgrade.start()
    # A local loop: build() stays one call that returns the whole app (tests rely on it),
    # while the window repaints and answers the agent during the migration.
    if not outcome:
        loop.exec()
    window.done()
    window.deleteLater()
    db, error = outcome[0]
    start.timer.mark("database migration")
    if upgrade.outcome is Outcome.STOPPED:
        reason = upgrade.stop_reason or "while it ran"
        _store_exit(start, EXIT_UPGRADE_STOPPED,
                    f"database update stopped by the agent ({reason})")
        return None
    if error:
        if upgrade.outcome is Outcome.REFUSED:
            _store_exit(start, EXIT_STORE_REFUSED, f"database refused: {error}")
        else:
            _store_exit(start, EXIT_UPGRADE_FAILED, f"database update failed: {error}")
        fatal(error)
        return None
    from agent_desktop.store.db import Database

    assert isinstance(db, Database)
    return db


def show_first_frame(start: Startup, source: PageSource,
                     complete: Callable[[MainWindow], bool]) -> MainWindow:
    """Show the window on `source`'s first page; `complete(window)` runs right after the
    first frame with rows is on screen (the benchmark's clock stops before it runs) and
    says whether the app was built (False: start-up refused, the agent was told why)."""
    from ui.first_paint import AfterFirstPaint, FirstPaintProbe, save_layout_shot

    window = first_window(start, source)
    table = window.customer_list.table
    probe = (FirstPaintProbe(table, start.app, watch=False) if start.bench_first_paint
             else None)

    def painted() -> None:
        if probe is not None:
            probe.painted()
        start.timer.first_paint()
        save_layout_shot(window, "first-frame")  # e2e only (AGENT_DESKTOP_LAYOUT_SHOTS)
        start.open_log()
        if complete(window) and probe is not None:
            # The benchmark measures the app as built (not the deferred extras), then quits.
            start.timer.report()
            probe.ready()

    start.keep.append(AfterFirstPaint(table, painted, require_rows=True))
    window.show()
    return window


def probe_when_built(start: Startup, window: MainWindow) -> Any:
    """The benchmark hook for the full path: report once the first paint has happened."""
    if not start.bench_first_paint:
        return None
    from ui.first_paint import FirstPaintProbe

    probe = FirstPaintProbe(window.customer_list.table, start.app)
    probe.ready()
    return probe


class Relay(QObject):
    """Brings a background thread's result to the GUI thread (queued signal)."""

    done = Signal(str, str)  # result, error


def check_integrity_in_background(db: Database, parent: QObject,
                                  report: Callable[[str], None]) -> Relay:
    """Search-index recovery and SQLite's integrity check, off the GUI thread (seconds on
    a big file); a problem reaches `report` on the GUI thread. Keep the returned relay."""
    import threading

    relay = Relay(parent)
    relay.done.connect(lambda problem, _unused: report(problem))

    def check() -> None:
        try:
            # A first download killed mid-way leaves the search triggers suspended; put
            # them back even when sync is off (--no-sync), so search stays right.
            from sync.client.bulk_apply import recover_search_index

            recover_search_index(db)
        except Exception:
            log.exception("search index recovery could not run")
        try:
            problem = db.integrity_problem()
        except Exception:
            log.exception("integrity check could not run")
            return
        if problem:
            relay.done.emit(problem, "")

    threading.Thread(target=check, name="integrity-check", daemon=True).start()
    return relay
