"""`serve --workers N`: several real worker processes share one database, so the state that
used to live in one process's memory (login rate limit, one upload at a time, the SQLite
writer queue) must hold across them. Runs on SQLite and PostgreSQL like the whole suite.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from sync.server.auth import DbLoginLimiter
from sync.server.models import ChangeLog, LoginFailure, Record
from sync.server.uploads import UploadStore
from tests.integration.server.conftest import PASSWORD, ServerHandle, start_server
from tests.integration.server.harness import Api, new_uuid

WORKERS = 2


@pytest.fixture(scope="module")
def multi(backend: str, request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server(backend, request, tmp_path_factory.mktemp(f"workers_{backend}"),
                          ["--workers", str(WORKERS)])
    yield handle
    handle.proc.stop()
    handle.db.dispose()
    log = handle.proc.log_text()
    assert "Traceback" not in log, f"the server logged an unexpected error:\n{log[-4000:]}"


def _workers(handle: ServerHandle) -> list[psutil.Process]:
    assert handle.proc.proc is not None
    kids = psutil.Process(handle.proc.proc.pid).children()
    return [k for k in kids if "multiprocessing" in " ".join(k.cmdline())
            and "resource_tracker" not in " ".join(k.cmdline())]


def test_the_server_runs_the_requested_worker_processes(multi: ServerHandle) -> None:
    assert len(_workers(multi)) == WORKERS
    assert httpx.get(multi.url + "/health", timeout=30).json()["status"] == "ok"


def test_wrong_passwords_are_limited_across_workers(
        multi: ServerHandle) -> None:
    name = multi.user()

    def attempt(_: int) -> int:
        # A new connection each time, so the kernel spreads them over the workers.
        return httpx.post(multi.url + "/auth/login", timeout=60,
                          json={"username": name, "password": "wrong guess"}).status_code

    codes = [attempt(i) for i in range(5)]  # new connections: both workers answer
    assert codes == [401] * 5
    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(attempt, range(6))) == [429] * 6
    r = httpx.post(multi.url + "/auth/login", json={"username": name, "password": PASSWORD},
                   timeout=60)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    with multi.db.read() as s:
        kept = s.execute(select(func.count()).select_from(LoginFailure)
                         .where(LoginFailure.username == name.lower())).scalar_one()
    assert kept == 5


def test_a_correct_login_clears_the_failures_for_every_worker(multi: ServerHandle) -> None:
    name = multi.user()
    for _ in range(4):
        assert httpx.post(multi.url + "/auth/login", timeout=60, json={
            "username": name, "password": "nope"}).status_code == 401
    assert httpx.post(multi.url + "/auth/login", timeout=60, json={
        "username": name, "password": PASSWORD}).status_code == 200
    for _ in range(4):  # the window starts again: four more failures are still answered
        assert httpx.post(multi.url + "/auth/login", timeout=60, json={
            "username": name, "password": "nope"}).status_code == 401


def test_limiter_window_with_a_clock(multi: ServerHandle) -> None:
    now = [1_000_000.0]
    lim = DbLoginLimiter(multi.db, 3, 60, clock=lambda: now[0])
    user = f"clock{new_uuid()[:8]}"
    for i in range(3):
        assert lim.reserve(user, "10.0.0.1") == (0, i)
        lim.failed(user, "10.0.0.1")
    wait, _ = lim.reserve(user.upper(), "10.0.0.1")  # usernames are case-blind
    assert 1 <= wait <= 61
    assert lim.reserve(user, "10.0.0.2")[0] == 0, "per user and IP"
    now[0] += 61
    assert lim.reserve(user, "10.0.0.1")[0] == 0
    lim.failed(user, "10.0.0.1")
    with multi.db.read() as s:  # the stale rows of this key were swept on the way
        rows = s.execute(select(func.count()).select_from(LoginFailure).where(
            LoginFailure.username == user, LoginFailure.ip == "10.0.0.1")).scalar_one()
    assert rows == 1


def test_concurrent_agents_push_through_both_workers_without_loss(multi: ServerHandle) -> None:
    team = multi.team()
    names = [multi.user("agent", team) for _ in range(6)]

    def agent(name: str) -> set[str]:
        api = Api(multi.url, name, PASSWORD)
        made = set()
        for i in range(15):
            u = new_uuid()
            api.push(("customer", u, {"name": f"{name} {i}"}))
            made.add(u)
        assert set(api.sync_down().live("customer")) == made
        return made

    with ThreadPoolExecutor(len(names)) as pool:
        made = set().union(*pool.map(agent, names))
    with multi.db.read() as s:
        stored = set(s.execute(select(Record.uuid).where(Record.uuid.in_(made))).scalars())
        logged = s.execute(select(func.count()).select_from(ChangeLog).join(
            Record, Record.id == ChangeLog.record_id).where(Record.uuid.in_(made))
        ).scalar_one()
    assert stored == made and logged == len(made)


def _recording(handle: ServerHandle) -> tuple[Api, str, bytes]:
    agent = handle.api(handle.user("agent", handle.team()))
    cu, call, rec = new_uuid(), new_uuid(), new_uuid()
    audio = os.urandom(200_000)
    agent.push(("customer", cu, {"name": "Rec"}),
               ("call_log", call, {"customer_uuid": cu, "direction": "out", "number": "1"}),
               ("recording", rec, {"call_log_uuid": call, "path": "x.wav",
                                   "sha256": hashlib.sha256(audio).hexdigest(),
                                   "size_bytes": len(audio)}))
    r = agent.http.post(f"/recordings/{rec}/upload", headers=agent.headers | {
        "Upload-Length": str(len(audio)), "Upload-Sha256": hashlib.sha256(audio).hexdigest()})
    assert r.status_code == 201
    return agent, rec, audio


def test_a_second_patch_while_one_is_streaming_is_refused_by_any_worker(
        multi: ServerHandle) -> None:
    agent, rec, audio = _recording(multi)
    head = (f"PATCH /recordings/{rec}/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {agent.headers['Authorization']}\r\nX-Schema-Version: 1\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(audio)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", multi.proc.port)) as slow:
        slow.sendall(head + audio[:50_000])  # the first request holds the lease...
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # ...once the server has read its first bytes
            with multi.db.read() as s:
                if UploadStore.lease_holder(s, rec) is not None:
                    break
            time.sleep(0.05)
        busy = []
        for _ in range(4):  # new connections: both workers get a chance to answer
            with httpx.Client(base_url=multi.url, timeout=60) as other:
                r = other.patch(f"/recordings/{rec}/upload", content=audio[:10],
                                headers=agent.headers | {
                                    "Content-Type": "application/offset+octet-stream",
                                    "Upload-Offset": "0"})
            busy.append((r.status_code, r.json()["error"]))
        assert busy == [(409, "upload_busy")] * 4
        slow.sendall(audio[50_000:])
        reply = slow.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 204") and "upload-complete: true" in reply.lower()
    r = agent.http.head(f"/recordings/{rec}/upload", headers=agent.headers)
    assert r.headers["Upload-Complete"] == "true"
    with multi.db.read() as s:
        assert UploadStore.lease_holder(s, rec) is None  # released at the end


def test_an_expired_lease_can_be_taken_over_and_the_old_holder_cannot_renew(
        multi: ServerHandle) -> None:
    _agent, rec, _audio = _recording(multi)
    store = UploadStore(multi.db, None, multi.proc.recordings, 10**9)  # type: ignore[arg-type]
    now = [time.time()]
    assert store.take_lease(rec, "first", clock=lambda: now[0])
    assert not store.take_lease(rec, "second", clock=lambda: now[0])
    now[0] += store.LEASE_S + 1  # the first holder's worker died without releasing
    assert store.take_lease(rec, "second", clock=lambda: now[0])
    assert not store.take_lease(rec, "first", renew=True, clock=lambda: now[0])
    store.drop_lease(rec, "first")  # not the holder: changes nothing
    with multi.db.read() as s:
        assert UploadStore.lease_holder(s, rec) == "second"
    store.drop_lease(rec, "second")


def test_killing_the_server_process_takes_its_workers_down(
        backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    handle = start_server(backend, request, tmp_path_factory.mktemp(f"kill_{backend}"),
                          ["--workers", str(WORKERS)])
    try:
        workers = _workers(handle)
        assert len(workers) == WORKERS
        handle.proc.stop(kill=True)  # SIGKILL: no chance to stop its children itself
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert alive == [] and len(gone) == WORKERS
        with pytest.raises(httpx.ConnectError):
            httpx.get(handle.url + "/health", timeout=5)
    finally:
        handle.proc.stop()
        handle.db.dispose()
