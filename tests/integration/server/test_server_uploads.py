"""Recording uploads (tus-style) and ranged downloads over real HTTP (§5)."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.server.conftest import ServerHandle, start_server
from tests.integration.server.harness import Api, new_uuid

OCTETS = {"Content-Type": "application/offset+octet-stream"}


def _recording(server: ServerHandle, team: str | None = None) -> tuple[Api, Api, str, bytes]:
    team = team or server.team()
    agent = server.api(server.user("agent", team))
    lead = server.api(server.user("team_lead", team))
    cu, call, rec = new_uuid(), new_uuid(), new_uuid()
    audio = os.urandom(300_000)
    agent.push(("customer", cu, {"name": "Rec"}),
               ("call_log", call, {"customer_uuid": cu, "direction": "out", "number": "1"}),
               ("recording", rec, {"call_log_uuid": call, "path": "x.wav",
                                   "sha256": hashlib.sha256(audio).hexdigest(),
                                   "size_bytes": len(audio)}))
    return agent, lead, rec, audio


def _create(api: Api, rec: str, audio: bytes, sha: str | None = None) -> httpx.Response:
    return api.http.post(f"/recordings/{rec}/upload", headers=api.headers | {
        "Upload-Length": str(len(audio)),
        "Upload-Sha256": sha or hashlib.sha256(audio).hexdigest()})


def _offset(api: Api, rec: str) -> int:
    r = api.http.head(f"/recordings/{rec}/upload", headers=api.headers)
    assert r.status_code == 200
    return int(r.headers["Upload-Offset"])


def _patch(api: Api, rec: str, offset: int, data: bytes) -> httpx.Response:
    return api.http.patch(f"/recordings/{rec}/upload", content=data,
                          headers=api.headers | OCTETS | {"Upload-Offset": str(offset)})


def test_upload_in_chunks_then_lead_streams_ranges(server: ServerHandle) -> None:
    agent, lead, rec, audio = _recording(server)
    r = lead.http.get(f"/recordings/{rec}/audio", headers=lead.headers)
    assert (r.status_code, r.json()["error"]) == (409, "not_available")
    r = _create(agent, rec, audio)
    assert r.status_code == 201 and r.headers["Upload-Offset"] == "0"
    assert r.headers["Location"] == f"/recordings/{rec}/upload"
    r = _patch(agent, rec, 0, audio[:100_000])
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "100000"
    assert r.headers["Upload-Complete"] == "false"
    # Creating again with the same length and checksum resumes instead of restarting.
    r = _create(agent, rec, audio)
    assert r.status_code == 200 and r.headers["Upload-Offset"] == "100000"
    r = _patch(agent, rec, 0, audio[:10])
    assert r.status_code == 409 and r.headers["Upload-Offset"] == "100000"
    r = _patch(agent, rec, 100_000, audio[100_000:])
    assert r.status_code == 204 and r.headers["Upload-Complete"] == "true"
    rep = lead.fresh_replica()
    assert rep.live("recording")[rec]["audio_available"] is True
    full = lead.http.get(f"/recordings/{rec}/audio", headers=lead.headers)
    assert full.status_code == 200 and full.content == audio
    assert full.headers["accept-ranges"] == "bytes"
    part = lead.http.get(f"/recordings/{rec}/audio", headers=lead.headers | {
        "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == audio[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(audio)}"
    tail = lead.http.get(f"/recordings/{rec}/audio", headers=lead.headers | {
        "Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == audio[-500:]
    bad = lead.http.get(f"/recordings/{rec}/audio", headers=lead.headers | {
        "Range": f"bytes={len(audio)}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(audio)}"
    r = _create(agent, rec, audio, sha="0" * 64)
    assert (r.status_code, r.json()["error"]) == (409, "upload_conflict")


def test_checksum_mismatch_resets_and_upload_can_restart(server: ServerHandle) -> None:
    agent, lead, rec, audio = _recording(server)
    assert _create(agent, rec, audio).status_code == 201
    corrupted = audio[:-1] + bytes([audio[-1] ^ 0xFF])
    r = _patch(agent, rec, 0, corrupted)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "checksum_mismatch"
    assert body["expected"] == hashlib.sha256(audio).hexdigest()
    assert body["actual"] == hashlib.sha256(corrupted).hexdigest()
    assert _offset(agent, rec) == 0
    r = lead.http.get(f"/recordings/{rec}/audio", headers=lead.headers)
    assert r.status_code == 409
    assert _patch(agent, rec, 0, audio).status_code == 204
    assert lead.http.get(f"/recordings/{rec}/audio", headers=lead.headers).content == audio


def _cut_patch(server: ServerHandle, api: Api, rec: str, offset: int, data: bytes,
               send: int) -> None:
    """A PATCH that announces all of `data` but the connection dies after `send` bytes."""
    head = (f"PATCH /recordings/{rec}/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {api.headers['Authorization']}\r\nX-Schema-Version: 1\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.proc.port)) as sock:
        sock.sendall(head + data[:send])
        time.sleep(0.3)  # let the server read what was sent before the cut


def _wait_offset(api: Api, rec: str, expected: int) -> int:
    deadline = time.monotonic() + 30  # a loaded CI machine (PostgreSQL beside it)
    seen = -1
    while time.monotonic() < deadline:
        seen = _offset(api, rec)
        if seen == expected:
            break
        time.sleep(0.05)
    return seen


def test_interrupted_upload_keeps_received_bytes_and_resumes(server: ServerHandle) -> None:
    agent, lead, rec, audio = _recording(server)
    _create(agent, rec, audio)
    _cut_patch(server, agent, rec, 0, audio, 120_000)
    assert _wait_offset(agent, rec, 120_000) == 120_000
    r = _patch(agent, rec, 120_000, audio[120_000:])
    assert r.status_code == 204 and r.headers["Upload-Complete"] == "true"
    assert lead.http.get(f"/recordings/{rec}/audio", headers=lead.headers).content == audio


def test_only_the_author_uploads_and_only_team_sees_audio(server: ServerHandle) -> None:
    team = server.team()
    agent, _lead, rec, audio = _recording(server, team)
    peer = server.api(server.user("agent", team))
    other_lead = server.api(server.user("team_lead", server.team()))
    r = _create(peer, rec, audio)
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    r = _create(agent, new_uuid(), audio)
    assert r.status_code == 404
    _create(agent, rec, audio)
    _patch(agent, rec, 0, audio)
    for outsider in (peer, other_lead):
        r = outsider.http.get(f"/recordings/{rec}/audio", headers=outsider.headers)
        assert r.status_code == 404
    assert agent.http.get(f"/recordings/{rec}/audio", headers=agent.headers).content == audio


def test_upload_bad_headers_and_overflow(server: ServerHandle) -> None:
    agent, _lead, rec, audio = _recording(server)
    r = agent.http.post(f"/recordings/{rec}/upload", headers=agent.headers | {
        "Upload-Length": "ten", "Upload-Sha256": "0" * 64})
    assert (r.status_code, r.json()["error"]) == (400, "bad_header")
    r = agent.http.post(f"/recordings/{rec}/upload", headers=agent.headers | {
        "Upload-Length": "10", "Upload-Sha256": "xyz"})
    assert r.status_code == 400 and "64 hex" in r.json()["message"]
    r = agent.http.post(f"/recordings/{rec}/upload", headers=agent.headers | {
        "Upload-Length": str(3 * 1024**3), "Upload-Sha256": "0" * 64})
    assert r.status_code == 413
    _create(agent, rec, audio)
    r = _patch(agent, rec, 0, audio + b"extra")
    assert r.status_code == 413
    assert _offset(agent, rec) == 0
    r = agent.http.patch(f"/recordings/{rec}/upload", content=b"x",
                         headers=agent.headers | {"Upload-Offset": "0"})
    assert r.status_code == 415


def test_upload_resumes_after_server_restart(backend: str, request: pytest.FixtureRequest,
                                             tmp_path: Path) -> None:
    server = start_server(backend, request, tmp_path / "srv")
    try:
        agent, lead, rec, audio = _recording(server)
        _create(agent, rec, audio)
        assert _patch(agent, rec, 0, audio[:50_000]).status_code == 204
        server.proc.stop(kill=True)
        server.proc.start()
        agent = Api(server.url, agent.username, "correct horse battery", agent.client_id)
        assert _offset(agent, rec) == 50_000
        assert _patch(agent, rec, 50_000, audio[50_000:]).status_code == 204
        lead = Api(server.url, lead.username, "correct horse battery")
        assert lead.http.get(f"/recordings/{rec}/audio", headers=lead.headers).content == audio
    finally:
        server.proc.stop()
        server.db.dispose()
