"""SyncService/SyncWorker/UploadWorker on their own threads against the real server:
sign-in, status signals, sync on local change, first-download progress, offline and
reconnect, remembered password, background recording upload."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sqlalchemy import func, select

from agent_desktop.credentials import CredentialStore
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Customer, Outbox, Recording
from sync.client.backoff import Backoff
from sync.client.tokens import TokenStore
from sync.client.transport import HttpTransport, ServerConfig
from sync.client.uploads import RecordingUploader
from sync.client.worker import SyncService, SyncWorker, UploadWorker
from tests.integration.fault_proxy import Agent, ServerProcess, User
from tests.integration.test_sync_uploads import write_wav

pytestmark = pytest.mark.integration

AGENT = User("wa1", "pw-wa1-secret")
LEAD = User("wlead", "pw-wlead-secret", "team_lead")
WAIT = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("worker-server"), [AGENT, LEAD])
    srv.start()
    yield srv
    srv.stop()


class Install:
    """What app.py builds for sync, for one local profile."""

    def __init__(self, root: Path, url: str, name: str, username: str = "",
                 interval_s: int = 60) -> None:
        self.db = Database.open(root / f"{name}.sqlite3")
        self.rec_dir = root / f"{name}-recordings"
        self.rec_dir.mkdir(exist_ok=True)
        self.tokens = TokenStore(CredentialStore(f"agent-desktop-w-{name}"))
        self.transport = HttpTransport(ServerConfig(url, read_timeout_s=10), self.tokens)
        self.worker = SyncWorker(self.db, self.transport, self.tokens, interval_s=interval_s,
                                 username=username, backoff=Backoff(0.2, 1.0))
        self.uploads = UploadWorker(RecordingUploader(self.db, self.transport, self.rec_dir),
                                    Backoff(0.2, 1.0))
        self.service = SyncService(self.worker, self.uploads)
        self.statuses: list[str] = []
        self.errors: list[str] = []
        self.service.status_changed.connect(self.statuses.append)
        self.service.error.connect(self.errors.append)

    def close(self) -> None:
        self.service.stop()
        self.transport.close()
        self.db.close()


@pytest.fixture
def make_install(server: ServerProcess, tmp_path: Path) -> Iterator[Callable[..., Install]]:
    made: list[Install] = []

    def make(name: str, url: str | None = None, **kw: object) -> Install:
        inst = Install(tmp_path, url or server.url, name, **kw)  # type: ignore[arg-type]
        made.append(inst)
        return inst

    yield make
    for inst in made:
        inst.close()


def test_sign_in_then_sync_on_local_change_off_the_gui_thread(
        qtbot: QtBot, server: ServerProcess, tmp_path: Path,
        make_install: Callable[..., Install]) -> None:
    inst = make_install("w1")
    round_threads: list[int] = []
    inst.worker.round_finished.connect(lambda: round_threads.append(threading.get_ident()),
                                       Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(inst.service.status_changed, timeout=WAIT,
                          check_params_cb=lambda s: s == "signed_out"):
        inst.service.start()
    failed = qtbot.waitSignal(inst.service.sign_in_failed, timeout=WAIT)
    with failed:
        inst.service.sign_in(AGENT.username, "wrong password", False)
    assert failed.args == ["Wrong user name or password."]
    with qtbot.waitSignals([inst.service.signed_in, inst.service.last_synced], timeout=WAIT):
        inst.service.sign_in(AGENT.username, AGENT.password, True)
    assert inst.statuses[-1] == "online" and "syncing" in inst.statuses
    assert inst.tokens.load() is not None
    assert inst.tokens.remembered_password(AGENT.username) == AGENT.password
    with inst.db.transaction() as s:
        c = Customer(name="from the worker", owner=AGENT.username)
        s.add(c)
        s.flush()
        uid = c.uuid
    inst.service.local_change()

    def pushed() -> None:
        # A round already in flight (started by sign-in) may finish first without this
        # row: wait for the outbox to drain rather than for the next round_finished.
        with inst.db.transaction() as s:
            assert s.scalar(select(func.count()).select_from(Outbox)) == 0

    qtbot.waitUntil(pushed, timeout=WAIT)
    assert round_threads and threading.get_ident() not in round_threads
    other = Agent("w1-check", tmp_path, server.url, LEAD)
    try:
        other.sign_in()
        other.sync()
        with other.db.transaction() as s:
            assert s.scalar(select(Customer.name).where(Customer.uuid == uid)) == \
                "from the worker"
    finally:
        other.close()


def test_first_download_reports_progress_and_remembered_password_signs_in(
        qtbot: QtBot, tmp_path: Path, server: ServerProcess,
        make_install: Callable[..., Install]) -> None:
    seeder = Agent("w2-seed", tmp_path, server.url, LEAD)
    try:
        seeder.sign_in()
        with seeder.db.transaction() as s:
            s.add_all(Customer(name=f"lead row {i}", owner=LEAD.username) for i in range(60))
        seeder.sync()
    finally:
        seeder.close()
    inst = make_install("w2", username=LEAD.username)
    inst.tokens.remember_password(LEAD.username, LEAD.password)  # from an earlier run
    inst.worker.client.pull_limit = 10
    progress: list[tuple[int, int]] = []
    inst.service.initial_progress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(inst.service.last_synced, timeout=WAIT):
        inst.service.start()
    assert len(progress) >= 6
    assert progress[0][0] < progress[0][1]  # a real bar, not a spinner
    assert progress[-1][0] == progress[-1][1] >= 60
    assert inst.statuses[-1] == "online"


def test_offline_then_reconnect(qtbot: QtBot, tmp_path: Path,
                                make_install: Callable[..., Install]) -> None:
    srv = ServerProcess(tmp_path / "own-server", [AGENT])
    srv.start()
    try:
        inst = make_install("w3", url=srv.url)
        with qtbot.waitSignal(inst.service.status_changed, timeout=WAIT,
                              check_params_cb=lambda s: s == "signed_out"):
            inst.service.start()
        with qtbot.waitSignal(inst.service.last_synced, timeout=WAIT):
            inst.service.sign_in(AGENT.username, AGENT.password, False)
        srv.kill()
        with qtbot.waitSignals([inst.service.error, inst.service.status_changed],
                               timeout=WAIT, order="simple",
                               check_params_cbs=[lambda e: "Cannot reach" in e,
                                                 lambda s: s == "offline"]):
            inst.service.sync_now()
        srv.start()
        with qtbot.waitSignal(inst.service.status_changed, timeout=WAIT,
                              check_params_cb=lambda s: s == "online"):
            inst.service.network_reachable(True)
        assert inst.errors[-1] == ""  # cleared
    finally:
        srv.stop()


def test_recording_uploads_in_the_background_after_a_round(
        qtbot: QtBot, make_install: Callable[..., Install]) -> None:
    inst = make_install("w4")
    data = write_wav(inst.rec_dir / "r.wav", seconds=1.0)
    import hashlib
    with inst.db.transaction() as s:
        call = CallLog(direction="out", number="+8613800138001", state="ended")
        rec = Recording(path="r.wav", state="complete", size_bytes=len(data),
                        sha256=hashlib.sha256(data).hexdigest())
        call.recordings.append(rec)
        s.add(call)
        s.flush()
        uid = rec.uuid
    with qtbot.waitSignal(inst.service.status_changed, timeout=WAIT,
                          check_params_cb=lambda s: s == "signed_out"):
        inst.service.start()
    with qtbot.waitSignal(inst.service.uploaded, timeout=WAIT) as up:
        inst.service.sign_in(AGENT.username, AGENT.password, False)
    assert up.args == [uid]
    with inst.db.transaction() as s:
        assert s.scalar(select(Recording.upload_state).where(Recording.uuid == uid)) == "done"
