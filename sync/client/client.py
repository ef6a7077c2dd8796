"""`SyncClient`: one push/pull round against the central server, no Qt, no threads.

Push (Replicache's contract): outbox rows go in `mutation_id` order with this install's
`client_id`; the server answers with the last mutation id it has processed (applied or
permanently rejected); rows up to it are deleted locally in one transaction. Resending a
batch whose answer was lost is harmless because the server skips ids it already has.

Pull (CouchDB-style checkpoints): each page is applied and its cursor stored in one
transaction, so an interrupted initial sync resumes at the last page instead of restarting.

Wire ids vs local ids: the local outbox key is SQLite's rowid, which restarts at 1 when the
table becomes empty (no AUTOINCREMENT). A persistent offset (bumped whenever a push empties
the table) keeps the ids the server sees strictly increasing for the life of the install.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from agent_desktop.store.db import Database
from agent_desktop.store.models import (
    SCHEMA_VERSION,
    Customer,
    Note,
    Outbox,
    PhoneNumber,
    SyncConflict,
    Tag,
    Task,
    utcnow,
)
from sync.client import state
from sync.client.apply import ApplyResult, ChangeFormatError, apply_changes, parse_change
from sync.client.bulk_apply import (
    resume_search_index,
    suspend_search_triggers,
    yield_to_writers,
)
from sync.client.errors import Forbidden, PermanentError, TooLarge, TransientError
from sync.client.initial_apply import apply_initial_page
from sync.client.pull_ahead import PageFetcher
from sync.client.transport import HttpTransport

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
StopCheck = Callable[[], bool]

PUSH_PATH = "/sync/push"
PULL_PATH = "/sync/pull"
CONFLICTS_PATH = "/sync/conflicts"
# Rows per pulled page unless `pull_limit` says otherwise. A first download uses the
# server's largest page (fewer round trips and commits: each commit of a page costs a
# WAL append and, now and then, a checkpoint); a caught-up client's pulls are small and
# a smaller page keeps each write transaction short.
INCREMENTAL_PAGE = 1000
INITIAL_PAGE = 5000
# A first download's pages that have already arrived share a transaction up to this many
# rows / seconds (see `_pull_pages`); the time bound keeps the write lock short for the
# agent's own edits on a slow machine.
GROUP_ROWS = 20_000
GROUP_SECONDS = 1.5


@dataclass
class PushResult:
    sent: int = 0
    acknowledged: int = 0
    rejected: int = 0
    conflicts: int = 0


@dataclass
class PullResult:
    pages: int = 0
    applied: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)
    reset: bool = False
    conflicts: int = 0


@dataclass
class RoundResult:
    push: PushResult
    pull: PullResult
    finished_at: str


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class _Page:
    """One pulled page, checked for the fields the client relies on."""

    changes: list[Any]
    next_cursor: str | None
    has_more: bool
    acked: Any  # the server's last processed mutation id (int when present)
    remaining: Any  # estimated rows still to come (int when known)

    @staticmethod
    def well_formed(body: dict[str, Any]) -> bool:
        cursor = body.get("next_cursor")
        return (isinstance(body.get("changes"), list) and isinstance(body.get("has_more"), bool)
                and (cursor is None or isinstance(cursor, str)))

    @classmethod
    def parse(cls, body: dict[str, Any]) -> _Page:
        if not cls.well_formed(body):
            raise TransientError("The sync server sent a malformed page of changes.")
        return cls(body["changes"], body.get("next_cursor"), body["has_more"],
                   body.get("last_mutation_id"), body.get("estimated_remaining"))


class SyncClient:
    """Runs sync rounds for one local database against one server transport."""

    def __init__(self, db: Database, transport: HttpTransport, *, push_batch: int = 500,
                 pull_limit: int | None = None) -> None:
        self._db = db
        self._transport = transport
        self.push_batch = push_batch
        self.pull_limit = pull_limit
        self.group_rows = GROUP_ROWS
        self.group_seconds = GROUP_SECONDS
        self._client_id: str | None = None
        # True until the first pull checked for search triggers left suspended by a crash,
        # and while this process's initial download has them suspended.
        self._search_maybe_suspended = True

    # --- state -------------------------------------------------------------------------
    def client_id(self) -> str:
        """Cached after the first read: it only changes through `_rotate_client_id`."""
        if self._client_id is None:
            with self._db.transaction() as s:
                self._client_id = state.ensure_client_id(s)
        return self._client_id

    def last_synced_at(self) -> str | None:
        with self._db.transaction() as s:
            return state.get(s, state.LAST_SYNCED_AT)

    def initial_sync_done(self) -> bool:
        with self._db.transaction() as s:
            return state.get(s, state.INITIAL_DONE) == "1"

    def pending_count(self) -> int:
        with self._db.transaction() as s:
            return int(s.scalar(select(func.count()).select_from(Outbox)) or 0)

    # --- round ---------------------------------------------------------------------------
    def sync_round(self, progress: Progress | None = None,
                   should_stop: StopCheck | None = None) -> RoundResult:
        """Push everything, then pull until caught up; records the finish time."""
        try:
            pushed = self.push(should_stop)
            pulled = self.pull(progress, should_stop)
        except Forbidden as exc:
            if "client_id" not in exc.reason:
                raise
            # Another user signed in on this install without bind_user noticing: this
            # client id is theirs. Start a new one with a fresh download (outbox kept).
            log.warning("client id belongs to another user; new client id and reset")
            self._rotate_client_id()
            raise TransientError("Switched sync identity for the signed-in user; "
                                 "will retry.") from exc
        if pushed.conflicts or pulled.applied or pulled.removed:
            pulled.conflicts = self.fetch_conflicts()
        now = utcnow()
        with self._db.transaction(applying_remote=True) as s:
            state.put(s, state.LAST_SYNCED_AT, now)
        return RoundResult(pushed, pulled, now)

    # --- push ----------------------------------------------------------------------------
    def push(self, should_stop: StopCheck | None = None) -> PushResult:
        result = PushResult()
        client_id = self.client_id()
        stalled = 0
        batch = self.push_batch
        while not (should_stop and should_stop()):
            with self._db.transaction() as s:
                offset = state.get_int(s, state.MUTATION_OFFSET)
                rows = list(s.scalars(select(Outbox).order_by(Outbox.mutation_id)
                                      .limit(batch)))
            if not rows:
                break
            mutations = [self._wire_mutation(r, offset) for r in rows]
            try:
                body = self._transport.json_request(
                    "POST", PUSH_PATH, what="the upload of local changes",
                    json={"client_id": client_id, "schema_version": SCHEMA_VERSION,
                          "mutations": mutations})
            except TooLarge:
                if batch == 1:
                    raise
                batch = max(1, batch // 2)
                log.warning("push: batch too large, retrying with %d mutations", batch)
                continue
            result.sent += len(rows)
            last = body.get("last_mutation_id")
            if not isinstance(last, int):
                raise TransientError("The sync server's answer to a push had no "
                                     "last_mutation_id.")
            first_wire = mutations[0]["mutation_id"]
            if last < first_wire:
                stalled += 1
                log.error("push: server processed up to %s, batch starts at %s", last,
                          first_wire)
                if stalled >= 2:
                    raise PermanentError(
                        "The sync server is not accepting this computer's changes (it "
                        "reports an older position). Contact support; nothing was deleted."
                    )
                continue
            stalled = 0
            by_wire = {m["mutation_id"]: r for m, r in zip(mutations, rows, strict=True)}
            with self._db.transaction(applying_remote=True) as s:
                rejected, conflicts = self._read_results(s, body.get("results"), by_wire)
                result.acknowledged += self._trim_outbox(s, last)
            result.rejected += rejected
            result.conflicts += conflicts
        return result

    @staticmethod
    def _wire_mutation(row: Outbox, offset: int) -> dict[str, Any]:
        try:
            fields = json.loads(row.changed_fields or "{}")
        except ValueError:
            fields = {}
            log.error("outbox %s has unreadable changed_fields; sent empty", row.mutation_id)
        return {"mutation_id": row.mutation_id + offset, "entity": row.entity,
                "entity_uuid": row.entity_uuid, "op": row.op, "changed_fields": fields,
                "base_version": row.base_version, "schema_version": row.schema_version}

    @staticmethod
    def _read_results(s: Any, results: Any, by_wire: dict[int, Outbox]) -> tuple[int, int]:
        """Keep rejections for the conflicts view (a refused change must not vanish
        unseen); field conflicts are fetched separately from the server's kept list."""
        rejected = conflicts = 0
        for item in results if isinstance(results, list) else []:
            if not isinstance(item, dict):
                continue
            if item.get("status") == "rejected":
                rejected += 1
                err = item.get("error")
                reason = (str(err.get("message") or err.get("code")) if isinstance(err, dict)
                          else str(err))
                log.warning("push: mutation %s rejected: %s", item.get("mutation_id"), reason)
                row = by_wire.get(item.get("mutation_id", -1))
                if row is not None:
                    s.add(SyncConflict(entity=row.entity, entity_uuid=row.entity_uuid,
                                       field="*", local_value=row.changed_fields,
                                       server_value=f"rejected: {reason}"))
            found = item.get("conflicts")
            if isinstance(found, list):
                conflicts += len(found)
        return rejected, conflicts

    @staticmethod
    def _trim_outbox(s: Any, last: int) -> int:
        """Delete rows the server has processed (wire id ≤ `last`)."""
        offset = state.get_int(s, state.MUTATION_OFFSET)
        done = s.execute(delete(Outbox).where(Outbox.mutation_id <= last - offset)).rowcount
        if done and not s.scalar(select(func.count()).select_from(Outbox)):
            # The table is empty: SQLite's next rowid is 1 again; keep wire ids above `last`.
            state.put(s, state.MUTATION_OFFSET, str(max(last, offset)))
        return int(done or 0)

    # --- conflicts -----------------------------------------------------------------------
    def fetch_conflicts(self) -> int:
        """Copy the server's kept conflicts (both sides' values) into `SyncConflict`."""
        stored = 0
        while True:
            with self._db.transaction() as s:
                after = state.get_int(s, state.CONFLICTS_AFTER)
            body = self._transport.json_request(
                "GET", CONFLICTS_PATH, what="the list of sync conflicts",
                params={"after_id": after, "limit": 200})
            items = body.get("conflicts")
            if not isinstance(items, list):
                raise TransientError("The sync server sent a malformed list of conflicts.")
            with self._db.transaction(applying_remote=True) as s:
                top = after
                for c in items:
                    if not isinstance(c, dict) or not isinstance(c.get("id"), int):
                        continue
                    top = max(top, c["id"])
                    kind = c.get("kind", "field")
                    s.add(SyncConflict(
                        entity=str(c.get("entity", "")),
                        entity_uuid=str(c.get("entity_uuid", "")),
                        field=str(c.get("field") or ("*" if kind == "delete" else "")),
                        local_value=_dump(c.get("losing_value")),
                        server_value=_dump(c.get("winning_value")),
                        created_at=str(c.get("created_at") or utcnow())))
                    stored += 1
                state.put(s, state.CONFLICTS_AFTER, str(top))
            if not body.get("has_more") or not items:
                break
        return stored

    def bind_user(self, username: str) -> bool:
        """Called after sign-in. A different user than before gets a new client id and a
        fresh download (client ids belong to one user); returns True when that happened."""
        with self._db.transaction(applying_remote=True) as s:
            previous = state.get(s, state.USERNAME)
            state.put(s, state.USERNAME, username)
            if previous is None or previous == username:
                state.ensure_client_id(s)
                return False
            log.warning("a different user signed in; new client id and full re-download")
        self._rotate_client_id()
        return True

    def _rotate_client_id(self) -> None:
        self._client_id = None
        with self._db.transaction(applying_remote=True) as s:
            state.put(s, state.CLIENT_ID, str(uuid.uuid4()))
            state.drop(s, state.MUTATION_OFFSET)
            state.drop(s, state.CONFLICTS_AFTER)
        self._start_reset()

    # --- pull ----------------------------------------------------------------------------
    def pull(self, progress: Progress | None = None,
             should_stop: StopCheck | None = None) -> PullResult:
        """Pull pages until caught up. A download that is not finished when this returns
        or raises leaves the search triggers in place (see sync/client/bulk_apply.py)."""
        result = PullResult()
        client_id = self.client_id()
        if self._search_maybe_suspended:
            # Once per process (and after an unfinished download): a crash may have left
            # the index stale. Rebuilt before any network call, so even offline search is
            # right after a restart.
            self._restore_search_if_suspended()
        try:
            self._pull_pages(result, client_id, progress, should_stop)
        finally:
            if self._search_maybe_suspended:
                self._restore_search_if_suspended()
        return result

    def _restore_search_if_suspended(self) -> None:
        """Put the search triggers and indexes back and rebuild the search index, in short
        transactions (`resume_search_index`): after the last page of an initial download,
        after an unfinished one, or after a crash left them suspended."""
        if resume_search_index(self._db):
            log.info("search index rebuilt after the initial download")
        self._search_maybe_suspended = False

    def _fetch_page(self, client_id: str, cursor: str | None, limit: int) -> dict[str, Any]:
        return self._transport.json_request(
            "POST", PULL_PATH, what="the download of changes",
            json={"client_id": client_id, "schema_version": SCHEMA_VERSION,
                  "cursor": cursor, "limit": limit})

    def _pull_pages(self, result: PullResult, client_id: str, progress: Progress | None,
                    should_stop: StopCheck | None) -> None:
        """Pages in order; every page is applied with its cursor in one transaction.

        The next page is requested on a helper thread while the current one is applied
        (`PageFetcher`). During a first download, pages that have already arrived join the
        open transaction, up to `GROUP_ROWS` rows or `GROUP_SECONDS`: each commit writes
        every b-tree page it touched to the WAL, and random uuids touch most pages of the
        uuid indexes, so one commit per 5000-row page wrote ~10x the final database size
        (measured: 1.36 GB of WAL for 130 MB at 100k customers; 0.48 GB with four pages
        per commit). A page that has not arrived yet is not waited for inside the
        transaction: the write lock is never held across a network wait.
        """
        fetcher = PageFetcher(lambda cursor, limit: self._fetch_page(client_id, cursor, limit),
                              lambda: self._transport.release_thread_session())
        try:
            while not (should_stop and should_stop()):
                with self._db.transaction() as s:
                    cursor = state.get(s, state.CURSOR)
                    done = state.get_int(s, state.PULLED_COUNT)
                    caught_up = state.get(s, state.INITIAL_DONE) == "1"
                    resetting = state.get(s, state.RESET_STARTED_AT) is not None
                    offset = state.get_int(s, state.MUTATION_OFFSET)
                    oldest = s.scalar(select(func.min(Outbox.mutation_id)))
                limit = self.pull_limit or (INCREMENTAL_PAGE if caught_up else INITIAL_PAGE)
                body = fetcher.get(cursor, limit)
                if body.get("reset_required") is True:
                    if cursor is None:
                        raise TransientError("The sync server asked for a reset of a fresh "
                                             "download; will retry.")
                    self._start_reset()
                    result.reset = True
                    continue
                page = _Page.parse(body)
                if (not page.changes and not page.has_more and caught_up
                        and page.next_cursor in (None, cursor)
                        and (oldest is None or not isinstance(page.acked, int)
                             or oldest + offset > page.acked)):
                    result.pages += 1  # nothing new: no write transaction (cheap no-op)
                    break
                fast = not caught_up and not resetting
                applied: list[tuple[_Page, ApplyResult, int]] = []
                with self._db.transaction(applying_remote=True) as s:
                    started = time.monotonic()
                    rows = 0
                    while True:
                        if page.has_more and page.next_cursor not in (None, cursor):
                            fetcher.prefetch(page.next_cursor, limit)
                        outcome = self._apply_page(s, page, done, initial=not caught_up,
                                                   fast=fast)
                        done += len(page.changes)
                        rows += len(page.changes)
                        applied.append((page, outcome, done))
                        if (not page.has_more or not fast or rows >= self.group_rows
                                or time.monotonic() - started >= self.group_seconds
                                or (should_stop and should_stop())):
                            break
                        cursor = page.next_cursor
                        ready = fetcher.ready(cursor)
                        if ready is None or ready.get("reset_required") is True \
                                or not _Page.well_formed(ready):
                            break  # not here yet, or for the outer loop to handle
                        page = _Page.parse(fetcher.get(cursor, limit))
                for page, outcome, done_then in applied:  # committed: count and report
                    result.pages += 1
                    result.applied += outcome.applied
                    result.removed += outcome.removed
                    result.skipped.extend(outcome.skipped)
                    if progress is not None:
                        total = done_then + page.remaining if isinstance(page.remaining, int) \
                            else done_then
                        progress(done_then, total if page.has_more else done_then)
                if not applied[-1][0].has_more:
                    break
                if fast:
                    yield_to_writers(self._db)  # an agent's save waiting for the lock
        finally:
            fetcher.close()

    def _apply_page(self, s: Session, page: _Page, done_before: int, *, initial: bool,
                    fast: bool) -> ApplyResult:
        """One page and its cursor, in the caller's transaction.

        `initial`: a first (or reset) download; `fast`: a first download, whose rows are
        almost all new (a reset's rows mostly exist already, so it skips the fast path).
        """
        if initial and page.has_more:
            # Initial download of more than one page: search triggers (and, for a first
            # download, secondary indexes) off until the last page (no-op when already
            # suspended).
            self._search_maybe_suspended = True
            suspend_search_triggers(s, drop_indexes=fast)
        applied = apply_initial_page(s, page.changes, utcnow()) if fast else None
        if applied is None:
            try:
                changes = [parse_change(c) for c in page.changes]
            except ChangeFormatError as exc:
                log.error("pull: %s", exc)
                raise TransientError("The sync server sent a change this app cannot read; "
                                     "will retry.") from exc
            applied = apply_changes(s, changes)
        if isinstance(page.acked, int):
            self._trim_outbox(s, page.acked)
        if page.next_cursor is not None:
            state.put(s, state.CURSOR, page.next_cursor)
        state.put(s, state.PULLED_COUNT, str(done_before + len(page.changes)))
        if not page.has_more:
            state.drop(s, state.PULLED_COUNT)
            state.put(s, state.INITIAL_DONE, "1")
            if state.get(s, state.RESET_STARTED_AT):
                self._finish_reset(s)
            # The search index is rebuilt after this commit, in short transactions (see
            # `pull`'s `finally`); until then its keys say it is incomplete.
        return applied

    # --- reset ---------------------------------------------------------------------------
    def _start_reset(self) -> None:
        """The server compacted past our cursor: download everything again, keep outbox."""
        log.warning("sync reset: re-downloading everything (outbox kept)")
        with self._db.transaction(applying_remote=True) as s:
            state.drop(s, state.CURSOR)
            state.drop(s, state.PULLED_COUNT)
            state.drop(s, state.INITIAL_DONE)
            if not state.get(s, state.RESET_STARTED_AT):
                state.put(s, state.RESET_STARTED_AT, utcnow())

    @staticmethod
    def _finish_reset(s: Any) -> None:
        """After a full re-download, drop rows the server did not send again.

        Rows touched by the re-download have `updated_at` ≥ the reset start; older rows
        are gone on the server (deleted or no longer ours) unless a local change to them
        is still queued. Call logs and recordings are insert-only and carry local upload
        state, so they are kept.
        """
        since = state.get(s, state.RESET_STARTED_AT) or ""
        queued = select(Outbox.entity_uuid)
        for model in (Note, Task, Tag, PhoneNumber):
            s.execute(delete(model).where(model.updated_at < since,
                                          model.uuid.not_in(queued)))
        kept_parents = select(Note.customer_id).union(
            select(Task.customer_id), select(Tag.customer_id),
            select(PhoneNumber.customer_id))
        n = s.execute(delete(Customer).where(
            Customer.updated_at < since, Customer.uuid.not_in(queued),
            Customer.id.not_in(kept_parents))).rowcount
        state.drop(s, state.RESET_STARTED_AT)
        log.info("sync reset finished; %s stale customers removed", n)
