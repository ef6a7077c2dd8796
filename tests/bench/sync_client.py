"""Client-side pieces of the sync benchmark: a real desktop install (local SQLite database,
`SyncClient` over `HttpTransport`) against a real server process.

Each measurement opens its own local database under the bench's temporary folder, so one
figure never warms another's cache or indexes.
"""

from __future__ import annotations

import logging
import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import keyring
import requests
from keyring.backend import KeyringBackend
from sqlalchemy import func, select, text

from agent_desktop.credentials import CredentialStore
from agent_desktop.store.db import Database
from agent_desktop.store.models import CallLog, Customer, PhoneNumber, Recording
from sync.client import client as client_module
from sync.client.apply import apply_changes, parse_change
from sync.client.client import SyncClient
from sync.client.tokens import TokenStore
from sync.client.transport import HttpTransport, ServerConfig
from sync.client.uploads import RecordingUploader, file_sha256

log = logging.getLogger(__name__)


class MemoryKeyring(KeyringBackend):
    """Tokens of bench installs live in memory: a benchmark must not write to the user's
    real keyring, and a headless machine may have none."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


def use_memory_keyring() -> None:
    keyring.set_keyring(MemoryKeyring())


class Install:
    """One desktop install signed in as `username` (own database, own client id)."""

    def __init__(self, root: Path, name: str, url: str, username: str, password: str,
                 *, pull_limit: int | None = None, push_batch: int = 500) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.db = Database.open(root / f"{name}.sqlite3")
        self.tokens = TokenStore(CredentialStore(f"agent-desktop-bench-{name}"), scope=url)
        self.transport = HttpTransport(
            ServerConfig(url, connect_timeout_s=10.0, read_timeout_s=120.0), self.tokens)
        self.client = SyncClient(self.db, self.transport, pull_limit=pull_limit,
                                 push_batch=push_batch)
        self.transport.login(username, password)
        self.client.bind_user(username)

    def count(self, model: Any) -> int:
        with self.db.transaction() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    def search_docs(self) -> int:
        """Rows in the search documents table: equal to the customer count when the index
        is complete (checks the fast path really rebuilt it)."""
        with self.db.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM customer_search_docs"))
                       .scalar_one())

    def close(self) -> None:
        self.transport.close()
        self.db.close()


@contextmanager
def triggers_always_on() -> Iterator[None]:
    """The client as it was before the fast path: search triggers fire for every pulled
    row (the 'before' figure of the initial pull)."""
    with mock.patch.object(client_module, "suspend_search_triggers",
                           lambda _s, **_kw: False):
        yield


@dataclass
class PullFigures:
    """The initial pull's time and, as diagnostics, where it went."""

    seconds: float
    client_cpu_s: float  # this process, every thread (pull, look-ahead fetch, probe)
    main_cpu_s: float  # the pulling thread: decode-free apply, commits, index rebuild
    lag_p99_ms: float  # how late a 5 ms timer of another Python thread woke (GIL + run
    lag_max_ms: float  # queue): what the GUI thread would feel during the pull


class LagProbe:
    """A thread that sleeps 5 ms in a loop and records how late it wakes. It stands for
    the GUI thread: a pull that held the GIL in long stretches would show here."""

    PERIOD_S = 0.005

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-lag-probe",
                                        daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            time.sleep(self.PERIOD_S)
            self.lags_ms.append((time.perf_counter() - started - self.PERIOD_S) * 1000)

    def __enter__(self) -> LagProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measured_initial_pull(install: Install, expected_customers: int) -> PullFigures:
    """`timed_initial_pull` with CPU and responsiveness diagnostics beside the time."""
    cpu0, main0 = time.process_time(), time.thread_time()
    with LagProbe() as probe:
        seconds = timed_initial_pull(install, expected_customers)
    lags = probe.lags_ms or [0.0]
    return PullFigures(seconds, time.process_time() - cpu0, time.thread_time() - main0,
                       _p(lags, 99), max(lags))


def timed_initial_pull(install: Install, expected_customers: int) -> float:
    """Seconds from the start of the pull to the last page applied and searchable (the
    index rebuilt in the last page's transaction, inside `pull`)."""
    started = time.perf_counter()
    result = install.client.pull()
    elapsed = time.perf_counter() - started
    got = install.count(Customer)
    if got != expected_customers or result.skipped:
        raise RuntimeError(f"initial pull got {got} customers (expected "
                           f"{expected_customers}), {len(result.skipped)} skipped")
    docs = install.search_docs()
    if docs != got:
        raise RuntimeError(f"search index holds {docs} customers after the pull, not {got}")
    return elapsed


def timed_naive_full_pull(install: Install, url: str, expected_customers: int) -> float:
    """What a naive client does on every sync: download every page again (no cursor kept)
    and replace its local tables with the result, search triggers firing per row."""
    token = install.tokens.load()
    assert token is not None
    headers = {"Authorization": f"Bearer {token.access}", "X-Schema-Version": "1"}
    started = time.perf_counter()
    changes: list[Any] = []
    cursor: str | None = None
    with requests.Session() as http:
        while True:
            r = http.post(f"{url}/sync/pull", headers=headers, timeout=120, json={
                "client_id": install.client.client_id(), "schema_version": 1,
                "cursor": cursor, "limit": 1000})
            r.raise_for_status()
            page = r.json()
            changes.extend(parse_change(c) for c in page["changes"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
    with install.db.transaction(applying_remote=True) as s:
        for table in ("tasks", "notes", "tags", "phone_numbers", "customers"):
            s.execute(text(f"DELETE FROM {table}"))
        apply_changes(s, changes)
    elapsed = time.perf_counter() - started
    got = install.count(Customer)
    if got != expected_customers:
        raise RuntimeError(f"naive pull left {got} customers, expected {expected_customers}")
    return elapsed


def timed_push(install: Install, n: int) -> float:
    """n local customer creations (n outbox mutations, not timed), then one push."""
    with install.db.transaction() as s:
        for i in range(n):
            s.add(Customer(name=f"Bench push {i}", company="Bench", city="Loopback"))
    started = time.perf_counter()
    result = install.client.push()
    elapsed = time.perf_counter() - started
    if result.acknowledged < n or result.rejected:
        raise RuntimeError(f"push acknowledged {result.acknowledged}/{n}, "
                           f"{result.rejected} rejected")
    return elapsed


def noop_rounds_ms(install: Install, rounds: int) -> tuple[float, float]:
    """Full sync rounds (push + pull) with nothing to do: median and p95 in ms."""
    install.client.sync_round()  # catch up first
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = install.client.sync_round()
        times.append((time.perf_counter() - started) * 1000)
        if result.push.sent or result.pull.applied:
            raise RuntimeError("a no-change round moved data")
    return statistics.median(times), _p(times, 95)


def timed_upload(install: Install, megabytes: int) -> float:
    """One recording of `megabytes` MB through the resumable upload; MB/s."""
    rec_dir = install.root / "recordings"
    rec_dir.mkdir(exist_ok=True)
    path = rec_dir / "bench-call.wav"
    size = megabytes * 1_000_000
    with path.open("wb") as f:
        block = os.urandom(1 << 20)
        written = 0
        while written < size:
            chunk = block[: min(len(block), size - written)]
            f.write(chunk)
            written += len(chunk)
    with install.db.transaction() as s:
        call = CallLog(direction="out", number="+8613800138000", state="ended",
                       agent="bench")
        call.recordings.append(Recording(path=path.name, state="complete", size_bytes=size,
                                         sha256=file_sha256(path), duration_s=600.0))
        s.add(call)
    install.client.sync_round()  # the metadata goes first; audio follows
    uploader = RecordingUploader(install.db, install.transport, rec_dir)
    started = time.perf_counter()
    report = uploader.upload_all()
    elapsed = time.perf_counter() - started
    if report.failed or len(report.uploaded) != 1:
        raise RuntimeError(f"upload failed: {report.failed}")
    return size / 1_000_000 / elapsed


def _p(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100)[pct - 1]


def phone_count(install: Install) -> int:
    return install.count(PhoneNumber)
