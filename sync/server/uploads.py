"""Recording audio: tus-style resumable upload, checksum-verified, and ranged download.

The upload's offset is simply the size of its partial file, so bytes that reached the disk
before a dropped connection or a server restart count, and `HEAD` tells the client where to
continue. The audio becomes available (and syncs to team leads as `audio_available`) only
after the whole file hashes to the sha256 declared at creation.

One request at a time may append to a recording, in any worker process: it holds a lease
in the recording's `uploads` row (owner + expiry), renewed while bytes arrive, so a worker
that dies mid-upload blocks the recording only until the lease expires. A second request
meanwhile gets 409 `upload_busy` with the current offset.
"""


import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from sync.server.auth import Principal
from sync.server.db import ServerDatabase, utcnow
from sync.server.errors import ApiError, forbidden
from sync.server.feed import Feed, can_see
from sync.server.models import Record, Upload

log = logging.getLogger(__name__)

UUID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
READ_CHUNK = 256 * 1024


class UploadStore:
    def __init__(self, db: ServerDatabase, feed: Feed, root: Path, max_length: int) -> None:
        self.db = db
        self.feed = feed
        self.root = root
        self.max_length = max_length
        (root / ".partial").mkdir(parents=True, exist_ok=True)

    LEASE_S = 120.0  # renewed every LEASE_S / 4 while bytes arrive

    def take_lease(self, uuid: str, owner: str, renew: bool = False,
                   clock: Callable[[], float] = time.time) -> bool:
        """Take (or, with `renew`, extend our own) lease on appending to `uuid`."""
        now = clock()
        cond = (Upload.lease_owner == owner) if renew else or_(
            Upload.lease_owner.is_(None), Upload.lease_until < now, Upload.lease_owner == owner)

        def txn(s: Session) -> bool:
            res = s.execute(update(Upload).where(Upload.recording_uuid == uuid, cond)
                            .values(lease_owner=owner, lease_until=now + self.LEASE_S))
            return int(getattr(res, "rowcount", 0) or 0) == 1

        return self.db.run_write(txn)

    @staticmethod
    def lease_holder(s: Session, uuid: str) -> str | None:
        """Who holds the append lease of `uuid` now (None if nobody); for tests and logs."""
        row = s.execute(select(Upload.lease_owner, Upload.lease_until)
                        .where(Upload.recording_uuid == uuid)).first()
        if row is None or row.lease_owner is None or (row.lease_until or 0) < time.time():
            return None
        return str(row.lease_owner)

    def drop_lease(self, uuid: str, owner: str) -> None:
        self.db.run_write(lambda s: s.execute(
            update(Upload).where(Upload.recording_uuid == uuid, Upload.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)))

    @asynccontextmanager
    async def lease(self, uuid: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        """Hold the append lease for one request; yields `keep()`, which renews it when a
        quarter of it has passed and raises 409 if it was lost (the request stalled longer
        than the lease and another request took over)."""
        owner = secrets.token_hex(8)
        if not await run_in_threadpool(self.take_lease, uuid, owner):
            raise ApiError(409, "upload_busy", "Another request is uploading this recording "
                           "right now; ask for the offset (HEAD) and continue after it.",
                           headers={"Upload-Offset": str(self.offset(uuid))},
                           offset=self.offset(uuid))
        renewed = time.monotonic()

        async def keep() -> None:
            nonlocal renewed
            if time.monotonic() - renewed < self.LEASE_S / 4:
                return
            if not await run_in_threadpool(self.take_lease, uuid, owner, True):
                log.warning("upload lease of %s lost mid-request; stopping", uuid)
                raise ApiError(409, "upload_busy", "This upload stalled and another request "
                               "took it over; ask for the offset (HEAD) and continue.")
            renewed = time.monotonic()

        try:
            yield keep
        finally:
            await run_in_threadpool(self.drop_lease, uuid, owner)

    def partial(self, uuid: str) -> Path:
        return self.root / ".partial" / f"{uuid}.part"

    def final(self, uuid: str) -> Path:
        return self.root / uuid[:2] / f"{uuid}.wav"

    def offset(self, uuid: str) -> int:
        path = self.partial(uuid)
        return path.stat().st_size if path.exists() else 0

    # -- database helpers (run in the thread pool) ----------------------------------------
    def recording(self, s: Session, p: Principal, uuid: str, *, upload: bool) -> Record:
        if not UUID_RE.match(uuid):
            raise ApiError(404, "not_found", "No such recording.")
        rec = s.execute(select(Record).where(Record.uuid == uuid)).scalar_one_or_none()
        if rec is None or rec.entity != "recording" or (not upload and not can_see(p, rec)):
            raise ApiError(404, "not_found", "No such recording (push its row before "
                           "uploading the audio).")
        if upload and rec.author_id != p.user_id and p.role != "admin":
            raise forbidden("Only the recording's author may upload its audio.")
        if rec.deleted_at is not None:
            raise ApiError(404, "not_found", "This recording was deleted.")
        return rec

    def create(self, p: Principal, uuid: str, length: int, sha256: str) -> tuple[int, int]:
        """(HTTP status, offset) for a create request."""
        if length <= 0 or length > self.max_length:
            raise ApiError(413, "too_large", f"A recording must be 1 to {self.max_length} "
                           "bytes.", limit_bytes=self.max_length)

        def txn(s: Session) -> tuple[int, int]:
            self.recording(s, p, uuid, upload=True)
            up = s.get(Upload, uuid, with_for_update=True)
            now = utcnow()
            if up is not None and up.complete:
                if up.length == length and up.sha256 == sha256:
                    return 200, length
                raise ApiError(409, "upload_conflict", "The audio of this recording is "
                               "already uploaded with a different checksum.")
            if up is not None and up.length == length and up.sha256 == sha256:
                return 200, self.offset(uuid)
            if up is None:
                s.add(Upload(recording_uuid=uuid, length=length, sha256=sha256,
                             complete=False, created_at=now, updated_at=now))
            else:
                up.length, up.sha256, up.updated_at = length, sha256, now
            self.partial(uuid).unlink(missing_ok=True)
            self.partial(uuid).touch()
            return 201, 0

        return self.db.run_write(txn)

    def state(self, p: Principal, uuid: str) -> Upload:
        with self.db.read() as s:
            self.recording(s, p, uuid, upload=True)
            up = s.get(Upload, uuid)
        if up is None:
            raise ApiError(404, "not_found", "No upload was created for this recording.")
        return up

    def verify(self, p: Principal, uuid: str, up: Upload) -> None:
        """Hash the whole file; publish it on a match, start over on a mismatch."""
        part = self.partial(uuid)
        digest = hashlib.sha256()
        with part.open("rb") as f:
            for block in iter(lambda: f.read(1024 * 1024), b""):
                digest.update(block)
        actual = digest.hexdigest()
        if actual != up.sha256:
            part.unlink(missing_ok=True)
            part.touch()
            log.warning("checksum mismatch on recording %s: expected %s got %s", uuid,
                        up.sha256, actual)
            raise ApiError(422, "checksum_mismatch", "The uploaded audio does not match its "
                           "sha256; the upload was reset to offset 0, send it again.",
                           expected=up.sha256, actual=actual)
        final = self.final(uuid)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)

        def txn(s: Session) -> None:
            row = s.get(Upload, uuid, with_for_update=True)
            rec = s.execute(select(Record).where(Record.uuid == uuid).with_for_update()
                            ).scalar_one()
            assert row is not None
            row.complete, row.updated_at = True, utcnow()
            rec.audio_available = True
            rec.version += 1
            rec.updated_at = utcnow()
            self.feed.emit(s, rec, "upsert")
            self.feed.drain(s)

        self.db.run_write(txn)
        log.info("recording %s uploaded and verified (%d bytes)", uuid, up.length)


def _int_header(value: str | None, name: str) -> int:
    if value is None:
        raise ApiError(400, "bad_header", f"The {name} header is required.")
    if not value.strip().isdigit():
        raise ApiError(400, "bad_header", f"The {name} header must be a whole number.")
    return int(value.strip())


def build_upload_router(store: UploadStore, current: object, schema_dep: object) -> APIRouter:
    router = APIRouter(prefix="/recordings", tags=["recordings"],
                       dependencies=[Depends(schema_dep)])  # type: ignore[arg-type]
    Current = Annotated[Principal, Depends(current)]

    @router.post("/{uuid}/upload", status_code=201)
    def create(uuid: str, principal: Current,
               upload_length: Annotated[str | None, Header()] = None,
               upload_sha256: Annotated[str | None, Header()] = None) -> Response:
        length = _int_header(upload_length, "Upload-Length")
        sha = (upload_sha256 or "").strip().lower()
        if not SHA_RE.match(sha):
            raise ApiError(400, "bad_header", "The Upload-Sha256 header must be 64 hex digits.")
        status, offset = store.create(principal, uuid, length, sha)
        return Response(status_code=status, headers={
            "Location": f"/recordings/{uuid}/upload", "Upload-Offset": str(offset),
            "Upload-Length": str(length)})

    @router.head("/{uuid}/upload")
    def head(uuid: str, principal: Current) -> Response:
        up = store.state(principal, uuid)
        offset = up.length if up.complete else store.offset(uuid)
        return Response(status_code=200, headers={
            "Upload-Offset": str(offset), "Upload-Length": str(up.length),
            "Upload-Complete": "true" if up.complete else "false",
            "Cache-Control": "no-store"})

    @router.patch("/{uuid}/upload", status_code=204)
    async def patch(uuid: str, request: Request, principal: Current,
                    upload_offset: Annotated[str | None, Header()] = None,
                    content_type: Annotated[str | None, Header()] = None) -> Response:
        offset = _int_header(upload_offset, "Upload-Offset")
        if (content_type or "").split(";")[0].strip() != "application/offset+octet-stream":
            raise ApiError(415, "unsupported_media_type", "Send upload bytes with Content-Type "
                           "application/offset+octet-stream.")
        up = await run_in_threadpool(store.state, principal, uuid)
        if up.complete:
            raise ApiError(409, "upload_conflict", "This upload is already complete.",
                           headers={"Upload-Offset": str(up.length)})
        async with store.lease(uuid) as keep:
            up = await run_in_threadpool(store.state, principal, uuid)
            if up.complete:
                raise ApiError(409, "upload_conflict", "This upload is already complete.",
                               headers={"Upload-Offset": str(up.length)})
            current = store.offset(uuid)
            if offset != current:
                raise ApiError(409, "offset_mismatch", f"The upload is at offset {current}, "
                               f"not {offset}; continue from there.",
                               headers={"Upload-Offset": str(current)}, offset=current)
            written = await _append(store.partial(uuid), request, up.length - current, keep)
            new_offset = current + written
            if new_offset == up.length:
                await run_in_threadpool(store.verify, principal, uuid, up)
                return Response(status_code=204, headers={
                    "Upload-Offset": str(new_offset), "Upload-Complete": "true"})
        return Response(status_code=204, headers={"Upload-Offset": str(new_offset),
                                                  "Upload-Complete": "false"})

    @router.get("/{uuid}/audio", response_class=Response,
                responses={200: {"content": {"audio/wav": {}}},
                           206: {"content": {"audio/wav": {}}}})
    def audio(uuid: str, principal: Current,
              range_: Annotated[str | None, Header(alias="Range")] = None) -> Response:
        with store.db.read() as s:
            rec = store.recording(s, principal, uuid, upload=False)
        path = store.final(uuid)
        if not rec.audio_available or not path.exists():
            raise ApiError(409, "not_available", "The audio of this recording has not been "
                           "uploaded yet.")
        size = path.stat().st_size
        start, end = 0, size - 1
        status = 200
        if range_ is not None:
            parsed = _parse_range(range_, size)
            if parsed is not None:
                start, end = parsed
                status = 206
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return StreamingResponse(_read(path, start, end), status_code=status,
                                 media_type="audio/wav", headers=headers)

    return router


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b` range (RFC 9110); None = ignore the header and send everything."""
    m = RANGE_RE.match(header.strip())
    if m is None:
        return None  # multi-range or another unit: a full 200 is a valid answer
    a, b = m.group(1), m.group(2)
    if not a and not b:
        return None
    if not a:  # suffix: the last b bytes
        n = int(b)
        if n == 0:
            raise _unsatisfiable(size)
        return max(size - n, 0), size - 1
    start = int(a)
    end = min(int(b), size - 1) if b else size - 1
    if start >= size or (b and int(b) < start):
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> ApiError:
    return ApiError(416, "range_not_satisfiable", f"The requested range is outside the "
                    f"{size}-byte file.", headers={"Content-Range": f"bytes */{size}"})


def _read(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        left = end - start + 1
        while left > 0:
            block = f.read(min(READ_CHUNK, left))
            if not block:
                return
            left -= len(block)
            yield block


async def _append(path: Path, request: Request, room: int,
                  keep: Callable[[], Awaitable[None]]) -> int:
    """Write the body to the partial file; keep what arrived even if the client drops.

    A body that runs past Upload-Length is refused whole (the file is cut back to where
    this request started), so a confused client cannot corrupt a good prefix.

    Unbuffered, counting what each write really stored: on a full disk a write stores part
    of a chunk and the next one fails, and a buffered file would then fail again while
    closing (a 500 instead of the 507 below) with `written` not matching the file.
    """
    written = 0
    stream: AsyncIterator[bytes] = request.stream()
    with path.open("ab", buffering=0) as f:
        start = f.tell()
        try:
            async for chunk in stream:
                await keep()  # still ours? (a 409 here keeps what was written before)
                if written + len(chunk) > room:
                    f.truncate(start)
                    raise ApiError(413, "too_large", "The bytes sent go past Upload-Length; "
                                   "nothing of this request was kept.",
                                   headers={"Upload-Offset": str(start)})
                view = memoryview(chunk)
                while view:
                    n = f.write(view) or 0
                    written += n
                    view = view[n:]
        except ClientDisconnect:
            log.info("upload to %s interrupted after %d bytes; resumable", path.name, written)
        except OSError as exc:
            log.error("cannot write upload %s at %d bytes: %s", path.name, start + written, exc)
            raise ApiError(507, "storage_full", "The server cannot store more audio right now "
                           f"({exc.strerror}); the {start + written} bytes received so far "
                           "are kept, retry later.",
                           headers={"Upload-Offset": str(start + written)}) from exc
        finally:
            try:
                os.fsync(f.fileno())
            except OSError as exc:  # the bytes are in the file; durability is the OS's now
                log.error("cannot fsync upload %s: %s", path.name, exc)
    return written
