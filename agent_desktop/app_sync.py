"""Composition root, sync part: the sync client and, with no `server.url`, an embedded
server on loopback. Split from `app.py` only for size; like it, it may know every package.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication

if TYPE_CHECKING:
    from agent_desktop.app import AppContext

log = logging.getLogger(__name__)


def start_sync(ctx: AppContext) -> None:
    """Sync with the central server (`server.url`); with none configured, an embedded
    server on loopback (a child process, started off the GUI thread: it takes seconds) with
    a demo team whose passwords live in the keyring — never in a file."""
    from agent_desktop.startup import Relay
    from ui.sync_status import SyncStatusWidget

    w, settings, creds = ctx.window, ctx.settings, ctx.credentials
    status = SyncStatusWidget()
    status.setObjectName("syncStatus")
    w.add_status_widget(status)
    url = str(settings.get("server.url")).strip()
    relay = Relay(w)
    ctx.keep += [status, relay]
    relay.done.connect(lambda result, error: _connect_sync(ctx, status, result, error))
    if url:
        relay.done.emit(url, "")
        return

    def start_embedded() -> None:
        from sync.server.embedded import EmbeddedServer

        server: EmbeddedServer | None = None
        try:
            server = EmbeddedServer(ctx.paths.data_dir / "server")
            ctx.stoppers.append(server.stop)
            first = not (server.data_dir / "server.db").exists()
            passwords = []
            for user in ("agent", "lead"):
                key = f"embedded-server:{user}"
                pw = creds.get(key)
                if not pw:
                    pw = secrets.token_urlsafe(18)
                    creds.set(key, pw)
                passwords.append(pw)
            # The server seeds the same demo customers (same uuids) as the desktop did.
            server.seed_demo(passwords[0], passwords[1],
                             customers=ctx.demo_rows if first else 0)
            relay.done.emit(server.start(), "")
        except Exception as exc:
            # The app closed while the server started: nothing to tell anyone.
            if server is not None and server.stopped:
                log.info("embedded sync server start cancelled: the app is closing")
                return
            log.exception("embedded sync server not started")
            relay.done.emit("", str(exc))

    threading.Thread(target=start_embedded, name="embedded-server", daemon=True).start()


def _connect_sync(ctx: AppContext, status: Any, url: str, error: str) -> None:
    w, settings = ctx.window, ctx.settings
    if error or not url:
        status.set_error(error)
        text = QCoreApplication.translate("App", "Sync is not available: %1")
        w.statusBar().showMessage(text.replace("%1", error), 15_000)
        return
    from sync.client.factory import build_sync_service

    service = build_sync_service(ctx.db, settings, ctx.credentials,
                                 ctx.paths.recordings_dir, url)
    service.status_changed.connect(status.set_status)
    service.last_synced.connect(status.set_last_synced)
    service.error.connect(status.set_error)
    service.initial_progress.connect(status.set_initial_progress)
    service.conflicts_changed.connect(status.set_conflicts)
    service.data_changed.connect(w.refresh_list)
    service.data_changed.connect(lambda: w.today.model.refresh())
    service.data_changed.connect(
        lambda: w.refresh_customer(cid) if (cid := w.current_customer_id()) else None)
    status.sync_requested.connect(service.sync_now)
    ctx.customers.customer_changed.connect(lambda _cid: service.local_change())
    ctx.customers.tasks_changed.connect(service.local_change)
    if ctx.calls is not None:  # calls write synced rows and may leave a recording
        ctx.calls.call_ended.connect(lambda *_a: service.local_change())
        ctx.calls.call_ended.connect(lambda *_a: service.recording_finished())
    if ctx.wrapups is not None:
        ctx.wrapups.wrapup_saved.connect(lambda *_a: service.local_change())

    def sign_in_dialog() -> None:
        from ui.sync_signin_dialog import SignInDialog

        note = "" if ctx.credentials.persistent else ctx.credentials.problem
        dialog = SignInDialog(url, str(settings.get("server.username")), note, w)
        dialog.sign_in_requested.connect(service.sign_in)
        service.signed_in.connect(dialog.on_signed_in)
        service.sign_in_failed.connect(dialog.on_sign_in_failed)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    conflicts_dock: list[Any] = []  # one dock, shown again on later clicks

    def conflicts_view() -> None:
        from ui.sync_conflicts_view import ConflictsView

        if conflicts_dock:
            conflicts_dock[0].show()
            conflicts_dock[0].raise_()
            return
        if service.conflicts is not None:
            view = ConflictsView(service.conflicts)
            view.changed.connect(service.local_change)  # a restored value is a local edit
            title = QCoreApplication.translate("App", "Sync conflicts")
            conflicts_dock.append(w.add_dock(view, title))

    status.sign_in_requested.connect(sign_in_dialog)
    status.conflicts_requested.connect(conflicts_view)
    service.start()
    ctx.stoppers.append(service.stop)
    ctx.keep.append(service)
    if not str(settings.get("server.url")).strip():
        password = ctx.credentials.get("embedded-server:agent") or ""
        service.sign_in("agent", password, True)
