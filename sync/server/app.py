"""`create_app(config)`: the one place that builds the server's objects and routes.

`worker_app()` is the same for each process of `serve --workers N`: uvicorn spawns the
workers and each builds its own app from the configuration the parent put in the
environment (the parent has already migrated the database).
"""


import ctypes
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Header, Query
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from sync.server.auth import NO_NUL, AuthService, Principal, build_auth_router
from sync.server.config import LOG_FORMAT, LOG_LEVEL_ENV, ServerConfig, config_from_env
from sync.server.db import ServerDatabase, utcnow
from sync.server.errors import ApiError, BodyLimitMiddleware, install_error_handlers
from sync.server.feed import Feed
from sync.server.pull import ConflictsOut, PullIn, PullOut, PullService
from sync.server.push import PushIn, PushOut, PushService
from sync.server.uploads import UploadStore, build_upload_router

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who sent a push or pull: the principal when it was looked up on the event loop,
    else the Authorization header to look up on the worker thread (see `caller`)."""

    principal: Principal | None
    authorization: str | None


class ServerContext:
    """Everything a request handler needs; kept on `app.state.ctx` for tests and the CLI."""

    def __init__(self, config: ServerConfig, db: ServerDatabase | None = None) -> None:
        self.config = config
        self.db = db or ServerDatabase(config.database_url, config.db_pool, config.db_overflow)
        self.feed = Feed(self.db.is_postgres)
        self.auth = AuthService(self.db, config)
        self.push = PushService(self.db, self.feed, config.schema_versions,
                                config.max_mutations)
        self.pull = PullService(self.db, config.default_page, config.max_page)
        self.uploads = UploadStore(self.db, self.feed, config.recordings_dir,
                                   config.max_recording_bytes)


def create_app(config: ServerConfig) -> FastAPI:
    config.recordings_dir.mkdir(parents=True, exist_ok=True)
    ctx = ServerContext(config)
    if config.migrate_on_start:
        ctx.db.migrate()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync handlers run on this many threads. More threads than the database pool
        # only queue on the pool (PostgreSQL) or the write lock (SQLite) while costing
        # GIL switches; fewer leave the CPU idle while a query waits.
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.threads
        try:
            warmed = await run_in_threadpool(ctx.db.warm_pool)
            log.debug("%d database connections opened", warmed)
        except SQLAlchemyError as exc:  # serve anyway: requests answer 503 until it is back
            log.warning("could not open database connections at start: %s", exc)
        freeze_startup_objects()
        yield
        ctx.db.dispose()

    app = FastAPI(title="Agent Desktop sync server", version="1", lifespan=lifespan,
                  description="Push/pull sync, auth and recording uploads. The contract is "
                              "docs/sync-protocol.md.")
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, json_limit=config.max_json_bytes,
                       chunk_limit=config.max_chunk_bytes)

    # async: on SQLite the token lookup is one driver-level read (~0.03 ms), cheaper than
    # the hop to a worker thread (~0.3 ms of CPU per request, measured), so it runs on the
    # event loop. On PostgreSQL it is a network round trip, which must not stall the loop:
    # a worker thread waits for it (500 agents: p50 6 s with the lookup on the loop of a
    # loaded machine). Push and pull do not use this dependency on PostgreSQL: see `Caller`.
    inline_auth = not ctx.db.is_postgres

    async def current(authorization: Annotated[str | None, Header()] = None) -> Principal:
        if inline_auth:
            return ctx.auth.authenticate(authorization)
        return await run_in_threadpool(ctx.auth.authenticate, authorization)

    async def caller(authorization: Annotated[str | None, Header()] = None) -> Caller:
        """Push and pull: on SQLite the principal, looked up on the loop as above; on
        PostgreSQL the header, checked in the same worker-thread call as the handler.

        Why: a hop to a worker thread and back is two GIL hand-offs and wake-ups; with the
        token lookup and the handler each on its own hop, an agent's push + pull made four,
        and under 500 agents those waits (not the work) made most of the tail."""
        if inline_auth:
            return Caller(ctx.auth.authenticate(authorization), None)
        return Caller(None, authorization)

    def as_principal(who: Caller) -> Principal:
        return who.principal or ctx.auth.authenticate(who.authorization)

    lo, hi = config.schema_versions

    def check_version(version: int, where: str) -> None:
        if not lo <= version <= hi:
            raise ApiError(409, "schema_mismatch",
                           f"This app's data schema (version {version}) does not match the "
                           f"server (accepts {lo}..{hi}); update the app (or the server).",
                           server_schema_versions=[lo, hi], client_schema_version=version,
                           where=where)

    # async: a pure check runs on the event loop instead of costing a thread-pool hop
    async def schema_header(x_schema_version: Annotated[str | None, Header()] = None) -> None:
        if x_schema_version is None:
            raise ApiError(400, "bad_header", "The X-Schema-Version header is required.")
        if not x_schema_version.strip().isdigit() or len(x_schema_version.strip()) > 9:
            raise ApiError(400, "bad_header", "X-Schema-Version must be a whole number.")
        check_version(int(x_schema_version), "X-Schema-Version header")

    Current = Annotated[Principal, Depends(current)]
    Who = Annotated[Caller, Depends(caller)]

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, object]:
        return {"status": "ok", "schema_versions": [lo, hi], "server_time": utcnow()}

    app.include_router(build_auth_router(ctx.auth, current))

    sync = APIRouter(prefix="/sync", tags=["sync"], dependencies=[Depends(schema_header)])

    # push and pull are async: the every-few-seconds round of an agent is answered on the
    # event loop when it can be without waiting (`push_now`/`pull_now`), the rest (big
    # batches, first downloads, PostgreSQL, a busy SQLite writer) on a worker thread, in
    # one call with the token lookup when that is still to do (PostgreSQL).
    def push_in_thread(who: Caller, body: PushIn) -> PushOut:
        return ctx.push.push(as_principal(who), body)

    def pull_in_thread(who: Caller, body: PullIn) -> str:
        return ctx.pull.pull(as_principal(who), body)

    @sync.post("/push", response_model=PushOut)
    async def push(body: PushIn, who: Who) -> Response:
        check_version(body.schema_version, "body")
        out = None if who.principal is None else ctx.push.push_now(who.principal, body)
        if out is None:
            out = await run_in_threadpool(push_in_thread, who, body)
        return Response(out.model_dump_json(), media_type="application/json")

    async def _pull(who: Caller, body: PullIn) -> Response:
        check_version(body.schema_version, "body")
        page = None if who.principal is None else ctx.pull.pull_now(who.principal, body)
        if page is None:
            page = await run_in_threadpool(pull_in_thread, who, body)
        return Response(page, media_type="application/json")

    @sync.post("/pull", response_model=PullOut)
    async def pull_post(body: PullIn, who: Who) -> Response:
        return await _pull(who, body)

    @sync.get("/pull", response_model=PullOut)
    async def pull_get(who: Who,
                 client_id: Annotated[str, Query(min_length=1, max_length=64, pattern=NO_NUL)],
                 cursor: Annotated[str | None, Query(max_length=1024, pattern=NO_NUL)] = None,
                 limit: Annotated[int | None, Query(ge=1, le=5000)] = None,
                 schema_version: Annotated[int | None, Query(ge=0, le=2**31)] = None,
                 ) -> Response:
        body = PullIn(client_id=client_id, cursor=cursor, limit=limit,
                      schema_version=schema_version if schema_version is not None else lo)
        return await _pull(who, body)

    @sync.get("/conflicts", response_model=ConflictsOut)
    def conflicts(principal: Current, after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> ConflictsOut:
        return ctx.pull.conflicts(principal, after_id, limit)

    app.include_router(sync)
    app.include_router(build_upload_router(ctx.uploads, current, schema_header))

    return app


def freeze_startup_objects() -> None:
    """Move everything alive after start-up (modules, FastAPI routes, SQLAlchemy mappers
    and pydantic models: hundreds of thousands of objects) out of the garbage collector's
    reach, so a full collection walks only what requests created since.

    Why: a full collection walked them all, 100-140 ms with the GIL held, stalling every
    request of that worker process at once; under 500 agents each one was a visible
    step in the latency tail (matched by timestamps, py `gc.callbacks`). They live as
    long as the process anyway."""
    gc.collect()
    gc.freeze()
    log.debug("%d start-up objects frozen out of the garbage collector", gc.get_freeze_count())


def _exit_with_parent() -> None:
    """Linux: this worker gets SIGTERM when the `serve` process that spawned it dies, even
    by SIGKILL; an orphaned worker would keep serving on the port."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("cannot ask to exit with the parent (errno %d)", ctypes.get_errno())
        elif os.getppid() == 1:  # the parent died before the request above
            raise SystemExit("the server process that started this worker is gone")


def worker_app() -> FastAPI:
    """App factory for the worker processes of `serve --workers N` (see module docstring)."""
    _exit_with_parent()
    logging.basicConfig(level=os.environ.get(LOG_LEVEL_ENV, "INFO"), format=LOG_FORMAT)
    return create_app(config_from_env())
