"""Engine, migrations and transactions for SQLite (embedded default) and PostgreSQL.

SQLite write transactions start with `BEGIN IMMEDIATE`: two pushes that both read a
client's `last_mutation_id` and then write would otherwise dead-end in "database is
locked" at upgrade time instead of queueing on the busy timeout. SQLite writers queue
first on a thread lock and then on an exclusive `flock` of a file beside the database,
so the writers of several worker processes wait in the kernel and are woken the moment
the lock is free, instead of polling in SQLite's busy handler (whose growing sleeps
starved some writers: 100 agents, p99 8.5 s with the busy handler alone). PostgreSQL
transactions lock the rows they change (`SELECT … FOR UPDATE`) and are retried on
deadlock or serialization failure.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import select as select_mod
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, select
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

try:
    import fcntl
except ImportError:  # Windows: one worker process only (see `ServerDatabase.write`)
    fcntl = None  # type: ignore[assignment]

from sync.server.models import ServerState

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
T = TypeVar("T")
# `:name` parameters (not the `::` of a PostgreSQL cast) in hot-path statements.
_NAMED_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (psycopg2 is not installed)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://"):]
    return url


def _sqlite_connect(dbapi_conn: Any, _record: object) -> None:
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see module docstring)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    if conn.get_execution_options().get("write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


class _FileLock:
    """An exclusive `flock` shared by every process that opens the same SQLite file.

    Held only inside the thread lock, so one thread per process waits here; the file
    descriptor is opened lazily (after a fork, each worker opens its own)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self.acquire(wait=True)

    def acquire(self, wait: bool) -> bool:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *_exc: object) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


# Connections older than this are replaced at checkout (a bound on what a silently dead
# connection can cost, now that checkout does not ping: see `_pg_checkout`).
PG_RECYCLE_S = 1800


def _pg_checkout(dbapi_conn: Any, _record: object, _proxy: object) -> None:
    """Refuse a pooled PostgreSQL connection the server has already closed, without a
    round trip: an idle connection's socket has nothing to read unless the backend went
    away (restart, `pg_terminate_backend`, idle timeout: it sends a FATAL message and
    closes). `DisconnectionError` makes the pool open a fresh connection instead.

    Why not `pool_pre_ping`: its `SELECT 1` is a network round trip per checkout; with the
    token lookup and the handler each checking out, that was two extra round trips and
    ~0.4 ms of server CPU per agent round. A connection that dies without a word (a cut
    network) still fails its first statement; `_driver` then invalidates it and the
    client's retry gets a fresh one.
    """
    if dbapi_conn.closed or dbapi_conn.broken:
        log.info("a pooled database connection was closed: opening another")
        raise DisconnectionError("the pooled connection is closed")
    poller = select_mod.poll()
    poller.register(dbapi_conn.fileno(), select_mod.POLLIN | select_mod.POLLPRI)
    if poller.poll(0):
        log.info("the database closed an idle pooled connection: opening another")
        raise DisconnectionError("the database closed this idle connection")


class WriterBusy(Exception):
    """Another writer holds SQLite's write queue (`driver_write(wait=False)`)."""


class ServerDatabase:
    """Owns the engine; hands out read and write sessions.

    `pool_size` is per process: a server with several workers opens up to
    workers × (pool_size + max_overflow) PostgreSQL connections, which must stay under the
    cluster's `max_connections`. Size the pool to the threads that use it (`ServerConfig`):
    an overflow connection is closed when it is checked in to a full pool, and on
    PostgreSQL every new connection forks a backend that warms its caches (500 agents:
    319 connections opened in 60 s with a pool of 10 for 20 threads, each new backend's
    first statements 100-250 ms).
    """

    def __init__(self, url: str, pool_size: int = 10, max_overflow: int = 10) -> None:
        self.url = normalise_url(url)
        self.is_postgres = self.url.startswith("postgresql")
        self._file_lock: _FileLock | None = None
        if self.is_postgres:
            can_poll = hasattr(select_mod, "poll")  # not on Windows: ping there instead
            self.engine: Engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=max_overflow,
                pool_pre_ping=not can_poll, pool_recycle=PG_RECYCLE_S, pool_use_lifo=True)
            if can_poll:
                event.listen(self.engine, "checkout", _pg_checkout)
        else:
            self.engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=pool_size, max_overflow=max_overflow,
            )
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
            path = _sqlite_file(self.url)
            if path is not None and fcntl is not None:
                self._file_lock = _FileLock(path.with_name(path.name + "-writer.lock"))
        self._write_engine = self.engine.execution_options(write=True)
        self._sqlite_write_lock = threading.RLock()
        self._held = threading.local()
        # ORM reads keep their transaction (it ends in COMMIT, so psycopg keeps its
        # prepared statements): a snapshot page sets `SET LOCAL` options in it. The hot
        # path's reads run in autocommit (`driver_read`).
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)

    def warm_pool(self) -> int:
        """Open the pool's connections now (PostgreSQL), so the first burst of requests
        does not pay for them: a new connection forks a backend that then loads its
        catalog caches, and 500 agents' first rounds arriving together opened ~40 of
        them in their first second. Returns how many connections the pool holds."""
        if not self.is_postgres:
            return 0
        held = []
        try:
            for _ in range(self.engine.pool.size()):  # type: ignore[attr-defined]
                held.append(self.engine.raw_connection())
        finally:
            for fairy in held:
                fairy.close()
        return len(held)

    def sql(self, text: str) -> str:
        """A statement written with `:name` parameters, in the driver's own style
        (sqlite3 takes `:name`; psycopg wants `%(name)s` and literal `%` doubled)."""
        if self.is_postgres:
            return _NAMED_PARAM.sub(r"%(\1)s", text.replace("%", "%%"))
        return text

    @contextmanager
    def driver_read(self) -> Iterator[Any]:
        """A cursor of a pooled driver connection (sqlite3 / psycopg) inside one read
        transaction, for the statements every sync round runs.

        Why below SQLAlchemy: its session, statement-cache and result layers cost
        ~0.1-0.46 ms a statement here (Core / ORM, measured) against ~0.013 ms for the
        same indexed read on the driver, and a sync round runs a handful of such reads.
        Driver errors are re-raised as SQLAlchemy's (`OperationalError`, `DataError`, ...)
        so the error handlers answer 503/507/400 exactly as for the ORM paths, and a
        connection the database dropped is invalidated instead of going back to the pool.

        On PostgreSQL the read runs in autocommit: under READ COMMITTED every statement
        takes its own snapshot anyway, so a transaction around reads adds nothing but a
        `BEGIN` and a `ROLLBACK` round trip, and psycopg answers every `ROLLBACK` with
        `DEALLOCATE ALL` (a third round trip) and forgets its prepared statements, so the
        hot statements were parsed and planned anew on every request.
        """
        with self._driver(None if self.is_postgres else "BEGIN", commit=False) as cur:
            yield cur

    @contextmanager
    def driver_transaction(self) -> Iterator[Any]:
        """`driver_read` inside one read transaction, for reads that need `SET LOCAL`
        (the first snapshot page's plan). PostgreSQL ends it with `COMMIT`, not
        `ROLLBACK`: psycopg answers a `ROLLBACK` with `DEALLOCATE ALL` and would forget the
        prepared statements; SQLite rolls its read back."""
        with self._driver(None if self.is_postgres else "BEGIN",
                          commit=self.is_postgres) as cur:
            yield cur

    @contextmanager
    def driver_write(self, wait: bool = True) -> Iterator[Any]:
        """`driver_read` for a write: the same writer queue as `write` (SQLite), committed
        when the block ends without an exception, rolled back otherwise. `wait=False`
        raises `WriterBusy` at once instead of queueing (SQLite; a caller on the event
        loop must not sleep there)."""
        begin = None if self.is_postgres else "BEGIN IMMEDIATE"
        with self._writer_queue(wait), self._driver(begin, commit=True) as cur:
            yield cur

    @contextmanager
    def _driver(self, begin: str | None, commit: bool) -> Iterator[Any]:
        fairy = self.engine.raw_connection()
        conn: Any = fairy.driver_connection
        dialect = self.engine.dialect
        autocommit = self.is_postgres and not commit
        cur = None
        try:
            ok = False
            try:
                if autocommit:
                    conn.autocommit = True
                cur = conn.cursor()
                if begin:
                    cur.execute(begin)
                yield cur
                ok = True
            finally:
                if cur is not None:
                    cur.close()
                if autocommit:
                    if not conn.closed:
                        conn.autocommit = False
                elif ok and commit:
                    conn.commit()
                else:  # a read keeps nothing; a failed write keeps nothing
                    conn.rollback()
        except dialect.loaded_dbapi.Error as exc:
            gone = dialect.is_disconnect(exc, fairy, cur)
            if gone:
                fairy.invalidate(exc)
            raise DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error,
                                      hide_parameters=True, connection_invalidated=gone,
                                      dialect=dialect) from exc
        finally:
            fairy.close()

    def migrate(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with self.write() as s:
            if s.get(ServerState, "instance_id") is None:
                s.add(ServerState(key="instance_id", value=secrets.token_hex(8)))

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as s, s.begin():
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._writer_queue(), self._write() as s, s.begin():
            yield s

    @contextmanager
    def _writer_queue(self, wait: bool = True) -> Iterator[None]:
        """SQLite has one writer at a time: queue on locks, not in the busy handler (see
        the module docstring). The thread lock is re-entrant; the file lock is taken once,
        by the outermost writer of this thread. PostgreSQL: nothing to wait for here."""
        if self.is_postgres:
            yield
            return
        if not self._sqlite_write_lock.acquire(blocking=wait):
            raise WriterBusy
        try:
            depth = getattr(self._held, "depth", 0)
            lock = self._file_lock if depth == 0 else None
            if lock is not None and not lock.acquire(wait):
                raise WriterBusy
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
                if lock is not None:
                    lock.__exit__()
        finally:
            self._sqlite_write_lock.release()

    def run_write(self, fn: Callable[[Session], T], attempts: int = 5) -> T:
        """Run `fn` in a write transaction, retrying PostgreSQL deadlocks/serialization
        failures and a lost insert race on a unique key (the retry then sees the row)."""
        return self._retrying(lambda: self._in_session(fn), attempts)

    def run_driver_write(self, fn: Callable[[Any], T], attempts: int = 5) -> T:
        """`run_write` for a function of a driver cursor (`driver_write`)."""
        return self._retrying(lambda: self._in_driver(fn), attempts)

    def _in_session(self, fn: Callable[[Session], T]) -> T:
        with self.write() as s:
            return fn(s)

    def _in_driver(self, fn: Callable[[Any], T]) -> T:
        with self.driver_write() as cur:
            return fn(cur)

    def _retrying(self, attempt_once: Callable[[], T], attempts: int) -> T:
        for attempt in range(1, attempts + 1):
            try:
                return attempt_once()
            except (IntegrityError, DBAPIError) as exc:
                code = getattr(getattr(exc, "orig", None), "sqlstate", None)
                retryable = isinstance(exc, IntegrityError) or code in ("40001", "40P01")
                if not retryable or attempt == attempts:
                    raise
                log.info("retrying write transaction after %s (attempt %d)", code, attempt)
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    def state(self, session: Session, key: str) -> str | None:
        row = session.execute(select(ServerState.value).where(ServerState.key == key)).first()
        return None if row is None else str(row[0])

    def dispose(self) -> None:
        self.engine.dispose()
        if self._file_lock is not None:
            self._file_lock.close()
