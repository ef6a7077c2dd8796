"""Recording upload against the real server: interrupted mid-chunk (connection cut by the
proxy) and resumed by a fresh uploader ("after a restart") from the server's offset; the
server verifies sha256 and serves the audio (also by HTTP range) to the team lead."""

from __future__ import annotations

import hashlib
import random
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from agent_desktop.store.models import CallLog, Recording
from sync.client.errors import TransientError
from sync.client.uploads import RecordingUploader
from tests.integration.fault_proxy import Agent, FaultProxy, ServerProcess, User

pytestmark = pytest.mark.integration

AGENT = User("ua1", "pw-ua1-secret")
LEAD = User("ulead", "pw-ulead-secret", "team_lead")
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("upload-server"), [AGENT, LEAD])
    srv.start()
    yield srv
    srv.stop()


def write_wav(path: Path, seconds: float = 5.0) -> bytes:
    """A real 16 kHz stereo 16-bit WAV with noise (~640 kB for 5 s)."""
    rng = random.Random(3)
    frames = bytes(rng.getrandbits(8) for _ in range(int(16000 * seconds) * 4))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(frames)
    return path.read_bytes()


def record_call(agent: Agent, rec_dir: Path) -> tuple[str, bytes]:
    rec_dir.mkdir(parents=True, exist_ok=True)
    data = write_wav(rec_dir / "call-1.wav")
    with agent.db.transaction() as s:
        call = CallLog(direction="out", number="+8613800138000", state="ended",
                       agent=agent.user.username)
        rec = Recording(path="call-1.wav", state="complete", size_bytes=len(data),
                        sha256=hashlib.sha256(data).hexdigest(), duration_s=5.0)
        call.recordings.append(rec)
        s.add(call)
        s.flush()
        return rec.uuid, data


def upload_row(agent: Agent, uid: str) -> tuple[str, int]:
    with agent.db.transaction() as s:
        rec = s.scalar(select(Recording).where(Recording.uuid == uid))
        assert rec is not None
        return rec.upload_state, rec.upload_offset


def test_upload_waits_for_metadata_then_resumes_after_a_cut(server: ServerProcess,
                                                            tmp_path: Path) -> None:
    patches = {"n": 0}

    def decide(_n: int, method: str, _path: str) -> str | None:
        if method == "PATCH":
            patches["n"] += 1
            if patches["n"] == 4:
                return "cut_request"  # the 4th chunk is cut half-way through its body
        return None

    proxy = FaultProxy(server.port, decide=decide)
    agent = Agent("uploader", tmp_path, proxy.url, AGENT)
    lead = Agent("ulead", tmp_path, server.url, LEAD)
    rec_dir = tmp_path / "recordings"
    try:
        agent.sign_in()
        lead.sign_in()
        uid, data = record_call(agent, rec_dir)
        uploader = RecordingUploader(agent.db, agent.transport, rec_dir, chunk_size=CHUNK)
        # metadata still in the outbox: nothing to upload yet
        assert uploader.pending() == []
        agent.sync()
        assert [p[0] for p in uploader.pending()] == [uid]
        with pytest.raises(TransientError):
            uploader.upload_all()
        state, offset = upload_row(agent, uid)
        assert state == "uploading" and offset == 3 * CHUNK
        # "restart": a new uploader object, same database and files
        again = RecordingUploader(agent.db, agent.transport, rec_dir, chunk_size=CHUNK)
        report = again.upload_all()
        assert report.uploaded == [uid] and not report.failed
        assert report.bytes_sent <= len(data) - 3 * CHUNK  # resumed, not restarted
        assert upload_row(agent, uid) == ("done", len(data))
        assert again.pending() == []
        # the team lead streams it: whole file and a byte range
        lead.sync()
        token = lead.tokens.load()
        assert token is not None
        auth = {"Authorization": f"Bearer {token.access}", "X-Schema-Version": "1"}
        full = requests.get(f"{server.url}/recordings/{uid}/audio", headers=auth, timeout=10)
        assert full.status_code == 200 and full.content == data
        part = requests.get(f"{server.url}/recordings/{uid}/audio", timeout=10,
                            headers={**auth, "Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        with lead.db.transaction() as s:
            rec = s.scalar(select(Recording).where(Recording.uuid == uid))
            assert rec is not None and rec.upload_state == "done"  # audio_available seen
    finally:
        agent.close()
        lead.close()
        proxy.close()


def test_missing_file_is_reported_not_retried_forever(server: ServerProcess,
                                                      tmp_path: Path) -> None:
    agent = Agent("lostfile", tmp_path, server.url, AGENT)
    rec_dir = tmp_path / "recordings"
    try:
        agent.sign_in()
        uid, _ = record_call(agent, rec_dir)
        agent.sync()
        (rec_dir / "call-1.wav").unlink()
        report = RecordingUploader(agent.db, agent.transport, rec_dir).upload_all()
        assert uid in report.failed and "missing" in report.failed[uid]
        assert upload_row(agent, uid)[0] == "pending"
    finally:
        agent.close()


def test_already_available_audio_is_marked_done(server: ServerProcess, tmp_path: Path) -> None:
    agent = Agent("twice", tmp_path, server.url, AGENT)
    rec_dir = tmp_path / "recordings"
    try:
        agent.sign_in()
        uid, data = record_call(agent, rec_dir)
        agent.sync()
        RecordingUploader(agent.db, agent.transport, rec_dir).upload_all()
        with agent.db.transaction(applying_remote=True) as s:
            rec = s.scalar(select(Recording).where(Recording.uuid == uid))
            assert rec is not None
            rec.upload_state, rec.upload_offset = "pending", 0  # e.g. a restored backup
        report = RecordingUploader(agent.db, agent.transport, rec_dir).upload_all()
        assert report.uploaded == [uid] and report.bytes_sent == 0
        assert upload_row(agent, uid) == ("done", len(data))
    finally:
        agent.close()


def test_file_changed_mid_upload_checksum_mismatch_then_clean_upload(
        server: ServerProcess, tmp_path: Path) -> None:
    """The server rejects bytes that do not hash to the declared sha256 (422) and the
    uploader starts again from a fresh hash of the file as it now is."""
    agent = Agent("mismatch", tmp_path, server.url, AGENT)
    rec_dir = tmp_path / "recordings"
    try:
        agent.sign_in()
        uid, data = record_call(agent, rec_dir)
        agent.sync()
        path = rec_dir / "call-1.wav"
        changed = {"done": False}
        new_data = data[:44] + bytes(b ^ 0xFF for b in data[44:])  # same length

        def tamper(_uid: str, done: int, total: int) -> None:
            if not changed["done"] and done < total:
                path.write_bytes(new_data)  # e.g. a WAV repair rewrote the file
                changed["done"] = True

        report = RecordingUploader(agent.db, agent.transport, rec_dir,
                                   chunk_size=CHUNK).upload_all(progress=tamper)
        assert changed["done"] and report.uploaded == [uid]
        token = agent.tokens.load()
        assert token is not None
        got = requests.get(f"{server.url}/recordings/{uid}/audio", timeout=10,
                           headers={"Authorization": f"Bearer {token.access}",
                                    "X-Schema-Version": "1"})
        assert got.status_code == 200 and got.content == new_data
        assert hashlib.sha256(got.content).hexdigest() != hashlib.sha256(data).hexdigest()
    finally:
        agent.close()
