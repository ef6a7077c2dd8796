"""A full disk on either side: a clear error, a retry where retrying helps, nothing lost.

The disks really fill up: the process under test (the sync server, or the desktop's
services) runs in a private mount namespace (`unshare -rm`) whose data folder is a small
tmpfs. The test reaches into that namespace through `/proc/PID/root/...` to fill the
tmpfs with a filler file, and frees the space by deleting it — what an admin or an agent
would do. Nothing is simulated: the server's SQLite and its recordings folder, and the
desktop's SQLite, get ENOSPC from the kernel.

- server recordings folder full during an upload → HTTP 507 with a plain message, the
  client keeps the recording and its offset, the upload finishes after space is freed and
  the server's copy has the same sha256;
- server database full during a push → 507, the client's outbox is kept, the next push
  succeeds and the server holds every row exactly once;
- the desktop's data folder full while a call log is written and a wrap-up is saved → the
  agent reads a plain sentence, nothing already saved is lost, the same save succeeds once
  there is room;
- the desktop's data folder full while it syncs (a first download) → the round fails
  saying the disk is full, the pull cursor does not move past what was stored, the local
  edit waiting in the outbox is kept, and once there is room the next round brings every
  row exactly once and pushes the edit.

The desktop sides run as `python -m tests.integration.test_disk_full worker|sync-worker …`
inside the namespace: real SQLite store, CallService (the phone is the fake backend: the
subject here is the store), WrapupService and the real WrapupDialog; the real SyncClient
against the real server process.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from sqlalchemy import func, select
from starlette.requests import Request

from agent_desktop.store.models import CallLog, Customer, Outbox, Recording
from sync.client.errors import TransientError
from sync.client.uploads import RecordingUploader
from tests.integration.fault_proxy import REPO, Agent, ServerProcess, User, outbox_size

pytestmark = pytest.mark.integration

AGENT = User("dfagent", "pw-dfagent-secret")
LEAD = User("dflead", "pw-dflead-secret", "team_lead")


def require_private_tmpfs(tmp: Path) -> None:
    """Fail (never skip) with a plain reason when a private tmpfs cannot be mounted."""
    probe = tmp / "tmpfs-probe"
    probe.mkdir()
    if shutil.which("unshare") is None:
        pytest.fail("`unshare` (util-linux) is not installed; the disk-full tests need it.")
    r = subprocess.run(["unshare", "-rm", "sh", "-c",
                        'mount -t tmpfs -o size=64k tmpfs "$1" && touch "$1/x"', "sh",
                        str(probe)], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.fail("The disk-full tests need a private mount namespace with a small tmpfs "
                    "(`unshare -rm` then `mount -t tmpfs`), and this machine refused it "
                    f"(rc {r.returncode}): {r.stderr.strip()}. Enable unprivileged user "
                    "namespaces (sysctl kernel.unprivileged_userns_clone=1) or run as root.")


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Fill the filesystem of `folder` with a filler file, leaving about `leave_bytes`."""
    filler = folder / "filler.bin"
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    block = b"\0" * 65536
    with filler.open("wb") as f:
        todo = max(0, free - leave_bytes)
        try:
            while todo > 0:
                todo -= f.write(block[:min(len(block), todo)])
            f.flush()
        except OSError:
            pass  # full: exactly what we wanted
    return filler


class TmpfsServer(ServerProcess):
    """The real server with `tmpfs_dir` a private tmpfs of `size` inside its namespace.

    If `db_on_tmpfs`, the seeded database is copied onto the tmpfs before the server
    starts and used from there; else the recordings folder is the tmpfs."""

    def __init__(self, root: Path, users: list[User], *, size: str,
                 db_on_tmpfs: bool) -> None:
        super().__init__(root, users)
        self.size = size
        self.db_on_tmpfs = db_on_tmpfs
        self.tmpfs_dir = root / ("dbfs" if db_on_tmpfs else "recordings")
        self.tmpfs_dir.mkdir(exist_ok=True)
        self.seed_path = root / "server.sqlite3"
        if db_on_tmpfs:
            self.db_url = f"sqlite:///{self.tmpfs_dir / 'server.sqlite3'}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def inside(self) -> Path:
        """The tmpfs as this test process can reach it."""
        assert self.proc is not None
        return Path(f"/proc/{self.proc.pid}/root") / self.tmpfs_dir.relative_to("/")

    def start(self, timeout_s: float = 180.0) -> None:
        """Start and wait for /health. Generous: on a machine shared by several test runs
        importing FastAPI alone has taken over a minute. A server that never gets ready is
        stopped before the error is raised (no process left behind)."""
        script = 'set -e; mount -t tmpfs -o size="$1" tmpfs "$2"; '
        if self.db_on_tmpfs:
            script += 'cp "$3" "$2/server.sqlite3"; '
        script += 'shift 3; exec "$@"'
        cmd = ["unshare", "-rm", "sh", "-c", script, "sh", self.size, str(self.tmpfs_dir),
               str(self.seed_path), sys.executable, "-m", "sync.server", "--db", self.db_url,
               "--log-level", "INFO", "serve", "--host", "127.0.0.1", "--port",
               str(self.port), "--recordings", str(self.recordings)]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=self.root)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"server exited: {self.log_text()[-2000:]}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout_s:.0f} s: "
                           f"{self.log_text()[-2000:]}")


@pytest.fixture
def private_tmpfs(tmp_path: Path) -> None:
    require_private_tmpfs(tmp_path)


def write_wav(path: Path, seconds: float) -> bytes:
    """A real 16 kHz stereo 16-bit WAV of noise (64 kB per second)."""
    rng = random.Random(5)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(rng.randbytes(int(16000 * seconds) * 4))
    return path.read_bytes()


def auth_headers(agent: Agent) -> dict[str, str]:
    token = agent.tokens.load()
    assert token is not None
    return {"Authorization": f"Bearer {token.access}", "X-Schema-Version": "1"}


# ------------------------------------------------------------------ (a) recordings full
def test_server_recordings_disk_full_mid_upload(private_tmpfs: None, tmp_path: Path) -> None:
    srv = TmpfsServer(tmp_path / "server", [AGENT, LEAD], size="2m", db_on_tmpfs=False)
    srv.start()
    agent = Agent("df-uploader", tmp_path, srv.url, AGENT)
    lead = Agent("df-lead", tmp_path, srv.url, LEAD)
    rec_dir = tmp_path / "agent-recordings"
    rec_dir.mkdir()
    try:
        agent.sign_in()
        lead.sign_in()
        data = write_wav(rec_dir / "call-1.wav", 20.0)  # 1.28 MB
        with agent.db.transaction() as s:
            call = CallLog(direction="out", number="+8613800138000", state="ended",
                           agent=AGENT.username)
            rec = Recording(path="call-1.wav", state="complete", size_bytes=len(data),
                            sha256=hashlib.sha256(data).hexdigest(), duration_s=20.0)
            call.recordings.append(rec)
            s.add(call)
            s.flush()
            uid = rec.uuid
        agent.sync()  # the row first; the audio follows
        filler = fill(srv.inside, leave_bytes=600_000)
        uploader = RecordingUploader(agent.db, agent.transport, rec_dir,
                                     chunk_size=256 * 1024)

        with pytest.raises(TransientError) as err:
            uploader.upload_all()
        message = str(err.value)
        assert "507" in message and "cannot store more audio" in message, message
        assert "retry later" in message
        with agent.db.session() as s:
            row = s.scalar(select(Recording).where(Recording.uuid == uid))
            assert row is not None and row.upload_state == "uploading"
            kept_offset = row.upload_offset
        assert 0 < kept_offset < len(data)
        assert (rec_dir / "call-1.wav").read_bytes() == data  # the client keeps it
        # The server's own answer, as any HTTP client sees it: 507 and a plain sentence,
        # and its offset says how much it kept (the prefix is not thrown away).
        head = requests.head(f"{srv.url}/recordings/{uid}/upload",
                             headers=auth_headers(agent), timeout=10)
        server_offset = int(head.headers["Upload-Offset"])
        raw = requests.patch(
            f"{srv.url}/recordings/{uid}/upload", data=data[server_offset:], timeout=30,
            headers={**auth_headers(agent), "Upload-Offset": str(server_offset),
                     "Content-Type": "application/offset+octet-stream"})
        assert raw.status_code == 507, raw.text
        body = raw.json()
        assert body["error"] == "storage_full" and "retry later" in body["message"]
        assert "cannot store more audio" in body["message"]
        assert "Traceback" not in srv.log_text()

        filler.unlink()  # the admin frees space
        report = uploader.upload_all()
        assert report.uploaded == [uid] and not report.failed
        with agent.db.session() as s:
            row = s.scalar(select(Recording).where(Recording.uuid == uid))
            assert row is not None and (row.upload_state, row.upload_offset) == (
                "done", len(data))
        lead.sync()
        got = requests.get(f"{srv.url}/recordings/{uid}/audio", headers=auth_headers(lead),
                           timeout=30)
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        agent.close()
        lead.close()
        srv.stop()


class _Body:
    """Just enough of a Starlette request for `_append`: the body in small pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def stream(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


def test_upload_append_to_a_full_device_answers_507() -> None:
    """Pieces smaller than a write buffer: the disk refuses them only when flushed. The
    answer must still be the plain 507 (it was an unexpected 500), saying nothing was
    stored."""
    import asyncio
    import inspect

    from sync.server.errors import ApiError
    from sync.server.uploads import _append

    async def keep() -> None:
        return None

    # `keep` (the upload lease's renewal) is being added to the server as this is written.
    extra: dict[str, Any] = ({"keep": keep} if "keep" in inspect.signature(_append).parameters
                             else {})
    request = cast(Request, _Body([b"x" * 1000] * 5))
    with pytest.raises(ApiError) as err:
        asyncio.run(_append(Path("/dev/full"), request, room=10_000, **extra))
    assert err.value.status == 507 and err.value.code == "storage_full"
    assert "retry later" in err.value.message
    assert err.value.headers["Upload-Offset"] == "0"


# ------------------------------------------------------------------- (b) database full
def test_server_database_disk_full_during_push(private_tmpfs: None, tmp_path: Path) -> None:
    srv = TmpfsServer(tmp_path / "server", [AGENT, LEAD], size="8m", db_on_tmpfs=True)
    srv.start()
    agent = Agent("df-pusher", tmp_path, srv.url, AGENT)
    lead = Agent("df-lead2", tmp_path, srv.url, LEAD)
    try:
        agent.sign_in()
        lead.sign_in()
        agent.sync()
        lead.sync()
        with agent.db.transaction() as s:
            for i in range(300):
                s.add(Customer(name=f"满盘客户 {i}", name_key=f"满盘客户 {i}",
                               company="Disk Full Ltd " + "x" * 200, city="深圳"))
        queued = outbox_size(agent)
        assert queued == 300
        filler = fill(srv.inside)

        with pytest.raises(TransientError) as err:
            agent.sync()
        message = str(err.value)
        assert "507" in message and "disk is full" in message, message
        assert outbox_size(agent) == queued  # nothing dropped on the client
        # Still full: retrying fails the same clear way, nothing half-applied.
        with pytest.raises(TransientError):
            agent.sync()
        assert outbox_size(agent) == queued

        filler.unlink()
        assert agent.sync_until_ok(attempts=20, pause_s=0.2) == 0
        assert outbox_size(agent) == 0
        lead.sync()
        with lead.db.session() as s:
            names = s.scalars(select(Customer.name).where(Customer.deleted_at.is_(None))
                              ).all()
            uuids = s.scalars(select(Customer.uuid)).all()
        assert sorted(names) == sorted(f"满盘客户 {i}" for i in range(300))
        assert len(uuids) == len(set(uuids)) == 300  # exactly once each
        # The client's own rows carry the server's versions (acknowledged, not re-sent).
        agent.sync()
        assert outbox_size(agent) == 0
        log_text = srv.log_text()
        assert "database or disk is full" in log_text
    finally:
        agent.close()
        lead.close()
        srv.stop()


# --------------------------------------------------------------- (c) desktop disk full
def say_fact(key: str, value: object) -> None:
    os.write(1, f"FACT {key} {json.dumps(value, ensure_ascii=False)}\n".encode())


def worker(argv: list[str]) -> int:  # pragma: no cover - runs in the child process
    """The desktop's services on a data folder that fills up (see the module text)."""
    import argparse
    import sqlite3

    from PySide6.QtWidgets import QApplication

    from agent_desktop.calls import CallError, CallService
    from agent_desktop.customers import name_key
    from agent_desktop.dialplan import DialPlan
    from agent_desktop.phone import CallState, FakePhoneBackend
    from agent_desktop.phones import PhoneNormalizer
    from agent_desktop.settings import Settings
    from agent_desktop.store.db import Database
    from agent_desktop.wrapup import WrapupService
    from ui.wrapup_dialog import WrapupDialog

    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--copy-out", type=Path, required=True)
    args = p.parse_args(argv)
    app = QApplication([])
    db = Database.open(args.data / "agent.sqlite3")
    with db.transaction() as s:
        c = Customer(name="满盘 测试", name_key=name_key("满盘 测试"), city="深圳")
        s.add(c)
        s.flush()
        cid = c.id

    class NoCallers:
        def caller_id(self, number: str) -> int | None:
            return None

    phone = FakePhoneBackend()
    calls = CallService(db, phone, DialPlan(PhoneNormalizer("CN"), "sim.local"), NoCallers(),
                        recordings_dir=args.data / "recordings")
    lid = calls.dial(cid, "138 0013 8000")
    phone.simulate_state(1, CallState.CONNECTED, 200, "OK")
    phone.simulate_state(1, CallState.DISCONNECTED, 200, "Normal call clearing")
    say_fact("call_id", lid)
    wrapups = WrapupService(db, Settings.load(args.data / "settings.toml"), agent="df")
    dialog = WrapupDialog(wrapups)
    dialog.show_wrapup(lid)
    dialog.choose_disposition(0)  # "Interested"
    dialog.notes.insertPlainText("客户要报价 — wants a quote")
    dialog.flush_draft()

    def counts() -> list[int]:
        with db.engine.connect() as conn:
            return [int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one())
                    for t in ("customers", "call_logs", "outbox", "wrapup_drafts")]

    say_fact("rows_before_full", counts())
    with db.engine.connect() as conn:  # every next write must grow a file: no slack left
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    filler = fill(args.data)
    say_fact("calls_before_full", counts()[1])

    try:
        calls.dial(cid, "138 0013 8001")
        say_fact("dial_error", None)
    except CallError as exc:
        say_fact("dial_error", str(exc))
        say_fact("dial_cause", str(exc.__cause__))
    say_fact("hung_up", ("hangup", 2, None) in phone.requests)
    say_fact("calls_during_full", counts()[1])

    dialog.save()
    say_fact("save_banner", dialog.banner.text())
    say_fact("dialog_still_open", dialog.current_call() == lid)
    say_fact("dialog_kept_notes", dialog.notes.toPlainText())
    with db.engine.connect() as conn:
        say_fact("intact_during_full",
                 conn.exec_driver_sql("PRAGMA integrity_check").scalar_one())
    say_fact("rows_during_full", counts())

    filler.unlink()  # the agent frees space, then presses Save again
    saved: list[int] = []
    dialog.saved.connect(saved.append)
    dialog.save()
    say_fact("saved_after_free", saved == [lid])
    second = calls.dial(cid, "138 0013 8001")
    phone.simulate_state(2, CallState.DISCONNECTED, 486, "Busy Here")
    say_fact("second_call", second)
    db.close()
    src = sqlite3.connect(args.data / "agent.sqlite3")
    dst = sqlite3.connect(args.copy_out)
    src.backup(dst)
    src.close()
    dst.close()
    app.quit()
    return 0


def test_desktop_data_folder_full_while_saving(private_tmpfs: None, tmp_path: Path) -> None:
    data_dir = tmp_path / "agent-data"
    data_dir.mkdir()
    copy_out = tmp_path / "after.sqlite3"
    script = 'set -e; mount -t tmpfs -o size=6m tmpfs "$1"; shift; exec "$@"'
    cmd = ["unshare", "-rm", "sh", "-c", script, "sh", str(data_dir), sys.executable, "-m",
           "tests.integration.test_disk_full", "worker", "--data", str(data_dir),
           "--copy-out", str(copy_out)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=400,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                            "PYTHONPATH": str(REPO)})
    facts: dict[str, object] = {}
    for line in r.stdout.splitlines():
        if line.startswith("FACT "):
            key, _, value = line[5:].partition(" ")
            facts[key] = json.loads(value)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    # The disk really was full: SQLite said so.
    assert "database or disk is full" in str(facts["dial_cause"])
    # Dialling: refused in plain words, no half-written call log, the phone hung up.
    assert str(facts["dial_error"]).startswith("The call was stopped because it could not "
                                              "be written to the call log. The disk that "
                                              "holds your data is full.")
    assert facts["calls_during_full"] == facts["calls_before_full"]
    assert facts["hung_up"] is True
    # The wrap-up: the agent reads a plain sentence, the window keeps what was typed.
    banner = str(facts["save_banner"])
    assert "could not be saved because the disk is full" in banner
    assert "Nothing was lost" in banner
    assert facts["dialog_kept_notes"] == "客户要报价 — wants a quote"
    assert facts["dialog_still_open"] is True
    # Nothing already saved was lost while the disk was full.
    assert facts["intact_during_full"] == "ok"
    assert facts["rows_during_full"] == facts["rows_before_full"]
    # Space freed: the same save succeeds, and so does the next dial.
    assert facts["saved_after_free"] is True
    assert isinstance(facts["second_call"], int)

    from agent_desktop.store.db import Database

    db = Database.open(copy_out)
    try:
        with db.session() as s:
            call = s.get(CallLog, int(str(facts["call_id"])))
            assert call is not None and call.state == "ended"
            assert call.disposition == "Interested"
            assert call.wrapup_notes == "客户要报价 — wants a quote"
            assert call.wrapped_up_at is not None
            assert s.scalar(select(func.count()).select_from(CallLog)) == 2
            customer = s.scalar(select(Customer))
            assert customer is not None and customer.name == "满盘 测试"
            wrapup_outbox = [json.loads(o.changed_fields) for o in s.scalars(
                select(Outbox).where(Outbox.entity == "call_log",
                                     Outbox.entity_uuid == call.uuid))]
            assert any(o.get("disposition") == "Interested" for o in wrapup_outbox)
    finally:
        db.close()


# --------------------------------------------------- (d) desktop disk full during sync
def sync_worker(argv: list[str]) -> int:  # pragma: no cover - runs in the child process
    """A second install of the agent, its data folder on the tmpfs, syncing."""
    import argparse
    import sqlite3

    import keyring

    from sync.client import state
    from tests.conftest import MemoryKeyring

    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--copy-out", type=Path, required=True)
    args = p.parse_args(argv)
    keyring.set_keyring(MemoryKeyring())
    agent = Agent("laptop", args.data, args.url, SYNCER)
    agent.sign_in()
    with agent.db.transaction() as s:
        s.add(Customer(name="离线新客户", name_key="离线新客户", city="杭州"))

    def cursor() -> str | None:
        with agent.db.session() as s:
            return state.get(s, state.CURSOR)

    def customers() -> int:
        with agent.db.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM customers").scalar_one())

    say_fact("before", {"cursor": cursor(), "outbox": outbox_size(agent),
                        "customers": customers()})
    with agent.db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    filler = fill(args.data)
    for attempt in range(2):  # the worker would retry with backoff: still full, same answer
        try:
            agent.sync()
            say_fact(f"full_round_{attempt}", "no error")
        except Exception as exc:  # what SyncWorker.sync_now catches and shows
            say_fact(f"full_round_{attempt}", f"{type(exc).__name__}: {exc}")
    say_fact("during", {"cursor": cursor(), "outbox": outbox_size(agent),
                        "customers": customers()})
    filler.unlink()
    say_fact("failed_rounds_after_free", agent.sync_until_ok(attempts=10, pause_s=0.2))
    say_fact("after", {"cursor_moved": cursor() is not None, "outbox": outbox_size(agent),
                       "customers": customers()})
    agent.close()
    src = sqlite3.connect(args.data / "laptop.sqlite3")
    dst = sqlite3.connect(args.copy_out)
    src.backup(dst)
    src.close()
    dst.close()
    return 0


SYNCER = User("dfsync", "pw-dfsync-secret")


def test_desktop_data_folder_full_during_sync(private_tmpfs: None, tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "server", [SYNCER])
    srv.start(timeout_s=180)
    office = Agent("office", tmp_path, srv.url, SYNCER)
    try:
        office.sign_in()
        with office.db.transaction() as s:
            for i in range(300):
                s.add(Customer(name=f"同步客户 {i}", name_key=f"同步客户 {i}",
                               company="Sync Full Ltd", city="成都"))
        office.sync()
        data_dir = tmp_path / "laptop-data"
        data_dir.mkdir()
        copy_out = tmp_path / "laptop-after.sqlite3"
        script = 'set -e; mount -t tmpfs -o size=6m tmpfs "$1"; shift; exec "$@"'
        cmd = ["unshare", "-rm", "sh", "-c", script, "sh", str(data_dir), sys.executable,
               "-m", "tests.integration.test_disk_full", "sync-worker", "--data",
               str(data_dir), "--url", srv.url, "--copy-out", str(copy_out)]
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=400,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
        facts = {line[5:].partition(" ")[0]: json.loads(line[5:].partition(" ")[2])
                 for line in r.stdout.splitlines() if line.startswith("FACT ")}
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

        before, during, after = facts["before"], facts["during"], facts["after"]
        assert before == {"cursor": None, "outbox": 1, "customers": 1}
        for attempt in range(2):
            assert "database or disk is full" in facts[f"full_round_{attempt}"]
        # Nothing half-stored: no row and no cursor from the failed download, edit kept.
        assert during == before
        assert facts["failed_rounds_after_free"] == 0
        assert after == {"cursor_moved": True, "outbox": 0, "customers": 301}

        from agent_desktop.store.db import Database

        db = Database.open(copy_out)
        try:
            with db.session() as s:
                names = s.scalars(select(Customer.name)).all()
        finally:
            db.close()
        assert sorted(names) == sorted([f"同步客户 {i}" for i in range(300)] + ["离线新客户"])
        office.sync()  # the laptop's offline edit reached the server and the office
        with office.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Customer)
                            .where(Customer.name == "离线新客户")) == 1
    finally:
        office.close()
        srv.stop()


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(worker(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "sync-worker":
        sys.exit(sync_worker(sys.argv[2:]))
