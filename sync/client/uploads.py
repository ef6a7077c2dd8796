"""Recording upload over the server's resumable protocol (docs/sync-protocol.md §5).

Why resumable: a 30-minute call is ~100 MB of stereo WAV and agents work on trains. The
server keeps every byte it received; after a cut or an app restart we ask for its offset
(`POST` create-or-resume answers with it) and continue from there. A recording is marked
`done` locally only when the server says the whole file hashed to the declared sha256.

The recording's metadata row must reach the server first (it is an ordinary outbox row);
until then the server answers 404 and the upload waits for the next round.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import select

from agent_desktop.store.db import Database
from agent_desktop.store.models import Outbox, Recording
from sync.client.errors import PermanentError, TransientError
from sync.client.transport import HttpTransport

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
FINAL_STATES = ("complete", "repaired")


@dataclass
class UploadReport:
    uploaded: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # row not on the server yet
    failed: dict[str, str] = field(default_factory=dict)
    bytes_sent: int = 0


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1024 * 1024):
            h.update(block)
    return h.hexdigest()


class RecordingUploader:
    """Uploads every finished recording that is not yet available on the server."""

    def __init__(self, db: Database, transport: HttpTransport, recordings_dir: Path, *,
                 chunk_size: int = CHUNK) -> None:
        self._db = db
        self._transport = transport
        self._dir = Path(recordings_dir)
        self.chunk_size = chunk_size

    def pending(self) -> list[tuple[str, str, int]]:
        """(uuid, relative path, stored offset) of recordings still to upload, oldest first,
        skipping rows whose metadata is still queued in the outbox."""
        with self._db.transaction() as s:
            queued = select(Outbox.entity_uuid).where(Outbox.entity == "recording")
            rows = s.execute(
                select(Recording.uuid, Recording.path, Recording.upload_offset)
                .where(Recording.upload_state != "done", Recording.state.in_(FINAL_STATES),
                       Recording.deleted_at.is_(None), Recording.uuid.not_in(queued))
                .order_by(Recording.id))
            return [(u, p, o) for u, p, o in rows]

    def upload_all(self, should_stop: Callable[[], bool] | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> UploadReport:
        report = UploadReport()
        for uid, rel, _offset in self.pending():
            if should_stop and should_stop():
                break
            try:
                outcome = self.upload_one(uid, self._dir / rel, should_stop, progress, report)
            except PermanentError as exc:
                log.error("recording %s: upload refused: %s", uid, exc)
                report.failed[uid] = str(exc)
                continue
            if outcome == "done":
                report.uploaded.append(uid)
            elif outcome == "waiting":
                report.waiting.append(uid)
        return report

    def _set(self, uid: str, *, state: str, offset: int) -> None:
        with self._db.transaction(applying_remote=True) as s:
            rec = s.scalar(select(Recording).where(Recording.uuid == uid))
            if rec is not None:
                rec.upload_state = state
                rec.upload_offset = offset

    def upload_one(self, uid: str, path: Path, should_stop: Callable[[], bool] | None = None,
                   progress: Callable[[str, int, int], None] | None = None,
                   report: UploadReport | None = None) -> str:
        """Returns "done", "waiting" (server has no row yet) or "stopped"; raises
        TransientError on network trouble (the caller retries later).

        A checksum mismatch (the server hashed something other than what we declared, e.g.
        the file changed on disk mid-upload) restarts from a fresh hash of the file; after
        three mismatches in a row the recording is reported as failing.
        """
        for _attempt in range(3):
            outcome = self._attempt(uid, path, should_stop, progress, report)
            if outcome != "mismatch":
                return outcome
        raise PermanentError("The server keeps receiving a damaged copy of the recording "
                             f"{path.name}; it will be retried later.")

    def _attempt(self, uid: str, path: Path, should_stop: Callable[[], bool] | None,
                 progress: Callable[[str, int, int], None] | None,
                 report: UploadReport | None) -> str:
        if not path.is_file():
            raise PermanentError(f"The recording file {path} is missing, so it cannot be "
                                 "uploaded.")
        size = path.stat().st_size
        digest = file_sha256(path)
        url = f"/recordings/{uid}/upload"
        resp = self._transport.request(
            "POST", url, what="starting a recording upload", ok_status=(404, 409),
            headers={"Upload-Length": str(size), "Upload-Sha256": digest})
        if resp.status_code == 404:
            log.info("recording %s not on the server yet; upload waits", uid)
            return "waiting"
        if resp.status_code == 409:  # upload_conflict: audio already available
            self._set(uid, state="done", offset=size)
            return "done"
        offset = self._offset(resp)
        self._set(uid, state="uploading", offset=offset)
        with path.open("rb") as f:
            while True:
                if offset >= size and size > 0:
                    # Everything is there but the server has not confirmed: ask it.
                    head = self._transport.request("HEAD", url, what="checking an upload")
                    if head.headers.get("Upload-Complete") == "true":
                        self._set(uid, state="done", offset=size)
                        return "done"
                    offset = self._offset(head)
                    if offset >= size:
                        raise TransientError("The server has the whole recording but has "
                                             "not confirmed it yet.")
                if should_stop and should_stop():
                    return "stopped"
                f.seek(offset)
                chunk = f.read(self.chunk_size)
                resp = self._transport.request(
                    "PATCH", url, what="uploading a recording", data=chunk,
                    ok_status=(409, 422),
                    headers={"Upload-Offset": str(offset),
                             "Content-Type": "application/offset+octet-stream"})
                if resp.status_code == 409:
                    offset = self._offset(resp)
                    log.info("recording %s: server offset is %d; continuing there", uid, offset)
                    continue
                if resp.status_code == 422:
                    log.error("recording %s: server checksum mismatch; starting again", uid)
                    self._set(uid, state="uploading", offset=0)
                    return "mismatch"
                new_offset = self._offset(resp)
                if report is not None:
                    report.bytes_sent += max(0, new_offset - offset)
                offset = new_offset
                if resp.headers.get("Upload-Complete") == "true":
                    self._set(uid, state="done", offset=size)
                    if progress:
                        progress(uid, size, size)
                    return "done"
                self._set(uid, state="uploading", offset=offset)
                if progress:
                    progress(uid, offset, size)

    @staticmethod
    def _offset(resp: requests.Response) -> int:
        value = resp.headers.get("Upload-Offset")
        try:
            return int(value or "")
        except (TypeError, ValueError) as exc:
            raise TransientError("The server's upload answer had no valid Upload-Offset."
                                 ) from exc
