"""Sync and uploads on worker threads, reporting to the GUI by typed signals.

`SyncWorker` and `UploadWorker` are QObjects moved to their own QThreads by `SyncService`
(the GUI-side facade): the GUI thread never waits on the network or on a sync's database
writes. Each round uses its own short database transactions; SQLite WAL lets the GUI read
meanwhile.

When a round runs: on a timer (`server.sync_interval_s`), shortly after a local change
(debounced so a burst of edits is one round), at start, after sign-in and when the network
comes back. A failure backs off exponentially with jitter; the status tells the agent
whether they are offline, signed out, or need to act.

Status values (strings, so `ui/` does not import this package): "online", "offline",
"syncing", "signed_out", "error".
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, QTimer, Signal, Slot
from sqlalchemy import func, select

from agent_desktop.store.db import Database
from agent_desktop.store.errors import storage_problem
from agent_desktop.store.models import SyncConflict
from sync.client.backoff import Backoff
from sync.client.client import SyncClient
from sync.client.conflicts import ConflictStore
from sync.client.errors import AuthError, PermanentError, SyncError, TransientError
from sync.client.tokens import TokenStore
from sync.client.transport import HttpTransport
from sync.client.uploads import RecordingUploader

log = logging.getLogger(__name__)

ONLINE, OFFLINE, SYNCING, SIGNED_OUT, ERROR = "online", "offline", "syncing", "signed_out", "error"
DEBOUNCE_MS = 300
OFFLINE_PROBE_CAP_S = 60.0


class SyncWorker(QObject):
    """Runs `SyncClient` rounds on the thread it lives on.

    Signals:
        status_changed(str): one of the status values above.
        last_synced(str): UTC ISO time the last successful round finished.
        initial_progress(int, int): rows downloaded / estimated total during a first
            (or reset) download; total == done when finished.
        error(str): a plain sentence for the status bar ("" clears it).
        conflicts_changed(int): number of unresolved sync conflicts.
        data_changed(): server changes were applied (views should refresh).
        round_finished(): a round succeeded (the upload worker listens).
        signed_in(str): user name, after a successful sign-in.
        sign_in_failed(str): why, in plain words.
    """

    status_changed = Signal(str)
    last_synced = Signal(str)
    initial_progress = Signal(int, int)
    error = Signal(str)
    conflicts_changed = Signal(int)
    data_changed = Signal()
    round_finished = Signal()
    signed_in = Signal(str)
    sign_in_failed = Signal(str)

    def __init__(self, db: Database, transport: HttpTransport, tokens: TokenStore, *,
                 interval_s: int = 30, username: str = "",
                 backoff: Backoff | None = None) -> None:
        super().__init__()
        self._db = db
        self._transport = transport
        self._tokens = tokens
        self.client = SyncClient(db, transport)
        self.interval_s = max(1, interval_s)
        self._username = username
        self._backoff = backoff or Backoff(base_s=1.0, cap_s=OFFLINE_PROBE_CAP_S)
        self._stop = threading.Event()
        self._status = ""
        self._timer: QTimer | None = None
        self._debounce: QTimer | None = None

    # --- lifecycle (run on the worker thread) -------------------------------------------
    @Slot()
    def start(self) -> None:
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.sync_now)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.sync_now)
        last = self.client.last_synced_at()
        if last:
            self.last_synced.emit(last)
        self._emit_conflicts()
        if self._transport.signed_in():
            self.sync_now()
        elif self._username and self._tokens.remembered_password(self._username):
            self.sign_in(self._username, self._tokens.remembered_password(self._username)
                         or "", True)
        else:
            self._set_status(SIGNED_OUT)

    def request_stop(self) -> None:
        """Thread-safe: makes a running round stop between pages/batches."""
        self._stop.set()

    @Slot()
    def shutdown(self) -> None:
        for t in (self._timer, self._debounce):
            if t is not None:
                t.stop()

    # --- triggers -------------------------------------------------------------------------
    @Slot()
    def local_change(self) -> None:
        """A local write happened: sync soon (debounced), unless we are backing off."""
        if self._status in (ONLINE, SYNCING, "") and self._debounce is not None:
            self._debounce.start()

    @Slot(bool)
    def network_reachable(self, reachable: bool) -> None:
        """The OS says the network came back: retry now instead of waiting out backoff."""
        if reachable and self._status in (OFFLINE, ERROR, ONLINE):
            self._backoff.reset()
            self.sync_now()

    @Slot(int)
    def set_interval(self, seconds: int) -> None:
        self.interval_s = max(1, int(seconds))

    # --- sign-in -------------------------------------------------------------------------
    @Slot(str, str, bool)
    def sign_in(self, username: str, password: str, remember: bool) -> None:
        try:
            self._transport.login(username, password)
            self.client.bind_user(username)
        except SyncError as exc:
            log.warning("sign-in as %s failed: %s", username, exc)
            self.sign_in_failed.emit(str(exc))
            if isinstance(exc, TransientError):
                self._set_status(OFFLINE)
            return
        self._username = username
        if remember:
            self._tokens.remember_password(username, password)
        else:
            self._tokens.forget_password(username)
        self.signed_in.emit(username)
        self._backoff.reset()
        self.sync_now()

    @Slot()
    def sign_out(self) -> None:
        self._transport.logout()
        if self._username:
            self._tokens.forget_password(self._username)
        if self._timer is not None:
            self._timer.stop()
        self._set_status(SIGNED_OUT)

    # --- the round -----------------------------------------------------------------------
    @Slot()
    def sync_now(self) -> None:
        if self._stop.is_set():
            return
        if self._debounce is not None:
            self._debounce.stop()
        first = not self.client.initial_sync_done()
        self._set_status(SYNCING)

        def progress(done: int, total: int) -> None:
            if first:
                self.initial_progress.emit(done, total)

        try:
            result = self.client.sync_round(progress, self._stop.is_set)
        except AuthError as exc:
            self._fail(SIGNED_OUT, str(exc), None)
            return
        except TransientError as exc:
            self._fail(OFFLINE, str(exc), self._backoff.next_delay(exc.retry_after))
            return
        except PermanentError as exc:
            self._fail(ERROR, str(exc), max(float(self.interval_s) * 10, 60.0))
            return
        except Exception as exc:  # disk full, database trouble, a bug: say it, retry later
            log.exception("sync round failed unexpectedly")
            # The exception's own text can be SQL; the status bar gets plain words.
            plain = storage_problem(exc) or (f"Sync failed ({type(exc).__name__}); details "
                                             "are in the log. It will try again.")
            self._fail(ERROR, plain, self._backoff.next_delay())
            return
        self._backoff.reset()
        skipped = result.pull.skipped
        self.error.emit(f"{len(skipped)} change(s) from the server could not be applied; "
                        f"first: {skipped[0]}" if skipped else "")
        self._set_status(ONLINE)
        self.last_synced.emit(result.finished_at)
        if result.pull.applied or result.pull.removed:
            self.data_changed.emit()
        self._emit_conflicts()
        self.round_finished.emit()
        self._schedule(float(self.interval_s))

    def _fail(self, status: str, message: str, retry_in: float | None) -> None:
        log.warning("sync: %s (%s); retry in %s s", status, message, retry_in)
        self.error.emit(message)  # before the status, so the status shows with its reason
        self._set_status(status)
        if retry_in is not None:
            self._schedule(retry_in)

    def _schedule(self, seconds: float) -> None:
        if self._timer is not None and not self._stop.is_set():
            self._timer.start(max(0, int(seconds * 1000)))

    def _set_status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self.status_changed.emit(status)

    def _emit_conflicts(self) -> None:
        with self._db.transaction() as s:
            n = s.scalar(select(func.count()).select_from(SyncConflict)
                         .where(SyncConflict.resolved_at.is_(None)))
        self.conflicts_changed.emit(int(n or 0))


class UploadWorker(QObject):
    """Uploads finished recordings in the background; retries with backoff.

    Signals:
        upload_progress(str, int, int): recording uuid, bytes on the server, total.
        uploaded(str): recording uuid, verified and available on the server.
        error(str): plain sentence ("" clears it).
    """

    upload_progress = Signal(str, int, int)
    uploaded = Signal(str)
    error = Signal(str)

    def __init__(self, uploader: RecordingUploader, backoff: Backoff | None = None) -> None:
        super().__init__()
        self._uploader = uploader
        self._backoff = backoff or Backoff(base_s=2.0, cap_s=OFFLINE_PROBE_CAP_S)
        self._stop = threading.Event()
        self._timer: QTimer | None = None
        self._busy = False

    @Slot()
    def start(self) -> None:
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.upload_pending)

    def request_stop(self) -> None:
        self._stop.set()

    @Slot()
    def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    @Slot()
    def upload_pending(self) -> None:
        if self._stop.is_set() or self._busy:
            return
        self._busy = True
        try:
            report = self._uploader.upload_all(
                self._stop.is_set, lambda u, d, t: self.upload_progress.emit(u, d, t))
        except AuthError as exc:
            # Signed out: the next successful sync round (after sign-in) triggers us again.
            log.info("uploads wait for sign-in: %s", exc)
            return
        except TransientError as exc:
            delay = self._backoff.next_delay(exc.retry_after)
            log.info("uploads paused (%s); retry in %.1f s", exc, delay)
            self.error.emit(str(exc))
            if self._timer is not None and not self._stop.is_set():
                self._timer.start(int(delay * 1000))
            return
        except Exception as exc:
            log.exception("recording upload failed unexpectedly")
            plain = storage_problem(exc) or (f"({type(exc).__name__}; details are in the "
                                             "log)")
            self.error.emit(f"Recording upload failed: {plain} It will try again.")
            return
        finally:
            self._busy = False
        self._backoff.reset()
        for uid in report.uploaded:
            self.uploaded.emit(uid)
        self.error.emit("; ".join(report.failed.values()))


class SyncService(QObject):
    """GUI-side facade: owns the two threads; forwards requests by queued signals and
    re-emits the workers' signals from the GUI thread (so any callable connected to them,
    not only QObject slots, runs on the GUI thread).

    Call `local_change()` after local writes and `recording_finished()` after a call.

    Signals: the SyncWorker's (status_changed, last_synced, initial_progress, error,
    conflicts_changed, data_changed, round_finished, signed_in, sign_in_failed) and the
    UploadWorker's as upload_progress(str, int, int), uploaded(str), upload_error(str).
    """

    status_changed = Signal(str)
    last_synced = Signal(str)
    initial_progress = Signal(int, int)
    error = Signal(str)
    conflicts_changed = Signal(int)
    data_changed = Signal()
    round_finished = Signal()
    signed_in = Signal(str)
    sign_in_failed = Signal(str)
    upload_progress = Signal(str, int, int)
    uploaded = Signal(str)
    upload_error = Signal(str)

    _sync_requested = Signal()
    _local_changed = Signal()
    _sign_in_requested = Signal(str, str, bool)
    _sign_out_requested = Signal()
    _uploads_requested = Signal()
    _reachable = Signal(bool)

    def __init__(self, sync: SyncWorker, uploads: UploadWorker | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.sync = sync
        self.uploads = uploads
        self.conflicts: ConflictStore | None = None  # set by factory
        self.transport: HttpTransport | None = None  # closed by stop()
        self._threads: list[QThread] = []
        t = QThread(self)
        t.setObjectName("sync")
        sync.moveToThread(t)
        t.started.connect(sync.start)
        self._sync_requested.connect(sync.sync_now)
        self._local_changed.connect(sync.local_change)
        self._sign_in_requested.connect(sync.sign_in)
        self._sign_out_requested.connect(sync.sign_out)
        self._reachable.connect(sync.network_reachable)
        for name in ("status_changed", "last_synced", "initial_progress", "error",
                     "conflicts_changed", "data_changed", "round_finished", "signed_in",
                     "sign_in_failed"):
            getattr(sync, name).connect(getattr(self, name))
        self._threads.append(t)
        if uploads is not None:
            u = QThread(self)
            u.setObjectName("uploads")
            uploads.moveToThread(u)
            u.started.connect(uploads.start)
            u.started.connect(uploads.upload_pending)
            self._uploads_requested.connect(uploads.upload_pending)
            sync.round_finished.connect(uploads.upload_pending)
            uploads.upload_progress.connect(self.upload_progress)
            uploads.uploaded.connect(self.uploaded)
            uploads.error.connect(self.upload_error)
            self._threads.append(u)

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout_ms: int = 60_000) -> None:
        """Stop both workers (a running round ends between pages) and join the threads."""
        self.sync.request_stop()
        if self.uploads is not None:
            self.uploads.request_stop()
        for worker, t in zip((self.sync, self.uploads), self._threads, strict=False):
            if worker is not None and t.isRunning():
                # Timers must be stopped on their own thread; this waits for a running
                # round, which ends at its next page because of request_stop().
                QMetaObject.invokeMethod(worker, "shutdown",
                                         Qt.ConnectionType.BlockingQueuedConnection)
        for t in self._threads:
            t.quit()
            if not t.wait(timeout_ms):
                log.error("worker thread %s did not stop in time", t.objectName())
        if self.transport is not None:
            self.transport.close()

    def sync_now(self) -> None:
        self._sync_requested.emit()

    def local_change(self) -> None:
        self._local_changed.emit()

    def recording_finished(self) -> None:
        self._uploads_requested.emit()

    def sign_in(self, username: str, password: str, remember: bool) -> None:
        self._sign_in_requested.emit(username, password, remember)

    def sign_out(self) -> None:
        self._sign_out_requested.emit()

    def network_reachable(self, reachable: bool) -> None:
        self._reachable.emit(reachable)
