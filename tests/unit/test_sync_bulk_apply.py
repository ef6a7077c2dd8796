"""Initial-sync fast path (sync/client/bulk_apply.py) on a real SQLite store with the real
search: triggers suspended only during a multi-page first download, the index rebuilt at
the last page, and rebuilt after an interrupted download or a crash (a new process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer
from sync.client import state
from sync.client.bulk_apply import (
    REBUILD_KEY,
    SUSPENDED_KEY,
    SearchIndexError,
    recover_search_index,
    restore_search_index,
    suspend_search_triggers,
)
from sync.client.client import SyncClient
from sync.client.errors import TransientError


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "a.sqlite3")
    yield d
    d.close()


def trigger_count(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
            " AND name LIKE '%\\_search\\_%' ESCAPE '\\'")).scalar_one())


def index_sql(db: Database) -> list[tuple[str, str]]:
    """Explicit indexes of the synced tables (what a first download drops for a while)."""
    with db.engine.connect() as conn:
        return [(str(n), str(q)) for n, q in conn.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            " AND tbl_name IN ('customers', 'phone_numbers', 'tags', 'notes', 'tasks',"
            " 'call_logs', 'recordings') ORDER BY name")).all()]


def found(db: Database, query: str) -> list[str]:
    page = CustomerSearch(db, PhoneNormalizer("DE")).page(query, None, 50)
    return sorted(r.name for r in page.rows)


def customer_change(i: int, name: str) -> dict[str, Any]:
    return {"entity": "customer", "uuid": f"00000000-0000-4000-8000-{i:012d}",
            "op": "upsert", "version": 1, "fields": {"name": name, "city": "Hamburg"}}


def phone_change(i: int, number: str) -> dict[str, Any]:
    return {"entity": "phone", "uuid": f"00000000-0000-4000-9000-{i:012d}", "op": "upsert",
            "version": 1, "fields": {"customer_uuid": f"00000000-0000-4000-8000-{i:012d}",
                                     "raw": number, "e164": number, "position": 0}}


class PagedServer:
    """Serves `pages` in order by cursor; `on_request(n)` runs before answering request n
    (n = 0, 1, ...) so a test can look at the local store mid-download or fail a request."""

    def __init__(self, pages: list[list[dict[str, Any]]], on_request: Any = None) -> None:
        self.pages = pages
        self.on_request = on_request
        self.requests = 0

    def release_thread_session(self) -> None:
        """The pull's look-ahead thread ends (nothing to close here)."""

    def json_request(self, method: str, path: str, *, what: str, json: Any = None,
                     params: Any = None) -> dict[str, Any]:
        n = self.requests
        self.requests += 1
        if self.on_request is not None:
            self.on_request(n)
        assert path == "/sync/pull", path
        index = 0 if json["cursor"] is None else int(json["cursor"])
        if index >= len(self.pages):
            return {"changes": [], "next_cursor": str(index), "has_more": False}
        return {"changes": self.pages[index], "next_cursor": str(index + 1),
                "has_more": index + 1 < len(self.pages),
                "estimated_remaining": sum(len(p) for p in self.pages[index + 1:])}


PAGES = [
    [customer_change(1, "Anna Schmidt"), phone_change(1, "+4915112345671")],
    [customer_change(2, "Bernd Meyer"), phone_change(2, "+4915112345672")],
    [customer_change(3, "王小明"), phone_change(3, "+8613800138003")],
]


def test_multi_page_initial_pull_suspends_triggers_and_indexes_everything(
        db: Database) -> None:
    seen: list[int] = []
    server = PagedServer(PAGES, on_request=lambda n: seen.append(trigger_count(db)))
    client = SyncClient(db, server)  # type: ignore[arg-type]
    client.group_rows = 1  # one page per transaction: each commit is observable
    installed = trigger_count(db)
    indexes = index_sql(db)
    assert installed > 0 and len(indexes) >= 10

    after_page: list[int] = []
    indexes_after_page: list[list[tuple[str, str]]] = []

    def progress(done: int, total: int) -> None:
        after_page.append(trigger_count(db))
        indexes_after_page.append(index_sql(db))

    result = client.pull(progress)

    assert result.applied == 6 and result.pages == 3
    # Off for the whole download; restored after the last page's commit, in short
    # transactions of their own, before `pull` returns.
    assert after_page == [0, 0, 0]
    assert indexes_after_page == [[], [], []]
    assert index_sql(db) == indexes
    # before page 1: triggers on; page 2 is requested while page 1 is being applied
    # (look-ahead), so it may see either; page 3 after page 1's commit: suspended
    assert seen[0] == installed and seen[1] in (installed, 0) and seen[2] == 0
    assert trigger_count(db) == installed
    with db.transaction() as s:
        assert state.get(s, SUSPENDED_KEY) is None
        assert state.get(s, REBUILD_KEY) is None
        assert state.get(s, state.INITIAL_DONE) == "1"
    assert found(db, "Bernd") == ["Bernd Meyer"]
    assert found(db, "小明") == ["王小明"]
    assert found(db, "12345671") == ["Anna Schmidt"]
    assert found(db, "hamburg") == ["Anna Schmidt", "Bernd Meyer", "王小明"]


def test_single_page_and_incremental_pulls_keep_the_triggers(db: Database) -> None:
    seen: list[int] = []
    installed = trigger_count(db)
    server = PagedServer(PAGES[:1], on_request=lambda n: seen.append(trigger_count(db)))
    client = SyncClient(db, server)  # type: ignore[arg-type]
    client.pull()
    # incremental: two more pages after the first download completed
    server.pages = PAGES
    client.pull()
    assert set(seen) == {installed}
    assert found(db, "Meyer") == ["Bernd Meyer"]


def test_interrupted_download_restores_the_index_then_resumes_fast(db: Database) -> None:
    installed = trigger_count(db)

    def fail_second(n: int) -> None:
        if n == 1:
            raise TransientError("connection reset")

    server = PagedServer(PAGES, on_request=fail_second)
    client = SyncClient(db, server)  # type: ignore[arg-type]
    client.group_rows = 1
    with pytest.raises(TransientError):
        client.pull()
    # page 1 is committed and searchable; the triggers are back while offline
    assert trigger_count(db) == installed
    assert found(db, "Anna") == ["Anna Schmidt"]
    seen: list[int] = []
    server.on_request = lambda n: seen.append(trigger_count(db))
    after_page: list[int] = []
    client.pull(lambda done, total: after_page.append(trigger_count(db)))
    # resumed at page 2 with the triggers in place; its commit suspends them again for
    # the last page; after its commit the index is rebuilt and they are restored
    assert seen[0] == installed
    assert after_page == [0, 0]
    assert trigger_count(db) == installed
    assert found(db, "hamburg") == ["Anna Schmidt", "Bernd Meyer", "王小明"]


def test_crash_mid_download_is_repaired_by_the_next_process(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    db = Database.open(path)
    installed = trigger_count(db)
    indexes = index_sql(db)

    def die_on_second(n: int) -> None:
        if n == 1:
            raise KeyboardInterrupt  # stands for the process dying: no clean-up below runs

    client = SyncClient(db, PagedServer(PAGES, on_request=die_on_second))  # type: ignore[arg-type]
    client._search_maybe_suspended = False  # as if the `finally` never got to run
    original = client._restore_search_if_suspended
    client._restore_search_if_suspended = lambda: None  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        client.pull()
    client._restore_search_if_suspended = original  # type: ignore[method-assign]
    assert trigger_count(db) == 0 and index_sql(db) == []
    with db.transaction() as s:
        assert state.get(s, SUSPENDED_KEY) is not None
    db.close()

    # next start: a new process opens the database; the network is down
    db2 = Database.open(path)
    try:
        def offline(_n: int) -> None:
            raise TransientError("offline")

        client2 = SyncClient(db2, PagedServer(PAGES, on_request=offline))  # type: ignore[arg-type]
        with pytest.raises(TransientError):
            client2.pull()
        assert trigger_count(db2) == installed
        assert index_sql(db2) == indexes
        assert found(db2, "Anna") == ["Anna Schmidt"]
        # and local edits are indexed by the triggers again
        with db2.transaction() as s:
            s.add(Customer(name="Carla Neu"))
        assert found(db2, "Carla") == ["Carla Neu"]
    finally:
        db2.close()


def test_recover_at_start_up_and_idempotence(db: Database) -> None:
    installed = trigger_count(db)
    assert recover_search_index(db) is False
    with db.transaction(applying_remote=True) as s:
        assert suspend_search_triggers(s) is True
        assert suspend_search_triggers(s) is False  # already suspended: no-op
    with db.transaction() as s:
        s.add(Customer(name="Dora Unindexed"))
    assert trigger_count(db) == 0 and found(db, "Dora") == []
    assert recover_search_index(db) is True
    assert trigger_count(db) == installed
    assert found(db, "Dora") == ["Dora Unindexed"]
    assert recover_search_index(db) is False


def test_failed_transaction_keeps_the_triggers(db: Database) -> None:
    installed = trigger_count(db)
    with pytest.raises(RuntimeError, match="boom"), db.transaction() as s:
        suspend_search_triggers(s)
        raise RuntimeError("boom")
    assert trigger_count(db) == installed
    with db.transaction() as s:
        assert state.get(s, SUSPENDED_KEY) is None


def test_unreadable_saved_triggers_are_a_clear_error(db: Database) -> None:
    with db.transaction() as s:
        state.put(s, SUSPENDED_KEY, "not json")
    with pytest.raises(SearchIndexError, match="unreadable"), db.transaction() as s:
        restore_search_index(s)


def test_reset_download_keeps_the_indexes(db: Database) -> None:
    """A reset re-downloads rows that mostly exist (general path, lookups by uuid and by
    customer): only the triggers are suspended, the indexes stay."""
    client = SyncClient(db, PagedServer(PAGES))  # type: ignore[arg-type]
    client.pull()
    indexes = index_sql(db)
    installed = trigger_count(db)
    seen: list[tuple[int, int]] = []
    client._transport = PagedServer(  # type: ignore[assignment]
        PAGES, on_request=lambda n: seen.append((trigger_count(db), len(index_sql(db)))))
    client.group_rows = 1
    client._start_reset()
    result = client.pull()
    assert result.applied == 6
    assert (0, len(indexes)) in seen  # mid-download: triggers off, indexes on
    assert index_sql(db) == indexes and trigger_count(db) == installed
    assert found(db, "hamburg") == ["Anna Schmidt", "Bernd Meyer", "王小明"]


def test_saved_state_of_an_older_version_is_restored(db: Database) -> None:
    """Before indexes were suspended too, the key held a plain list of triggers; a crash
    of that version must still be repaired."""
    installed = trigger_count(db)
    with db.engine.connect() as conn:
        triggers = [list(r) for r in conn.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
            " AND name LIKE '%\\_search\\_%' ESCAPE '\\'")).all()]
    with db.transaction(applying_remote=True) as s:
        s.connection().exec_driver_sql("UPDATE sync_state SET value = value WHERE 0")
        state.put(s, SUSPENDED_KEY, json.dumps(triggers))
        s.flush()
        for name, _sql in triggers:
            s.connection().exec_driver_sql(f'DROP TRIGGER "{name}"')
    with db.transaction() as s:
        s.add(Customer(name="Olga Oldformat"))
    assert trigger_count(db) == 0 and found(db, "Olga") == []
    assert recover_search_index(db) is True
    assert trigger_count(db) == installed
    assert found(db, "Olga") == ["Olga Oldformat"]


def test_restore_puts_back_indexes_and_the_connections_page_cache(db: Database) -> None:
    indexes = index_sql(db)
    with db.transaction(applying_remote=True) as s:
        assert suspend_search_triggers(s, drop_indexes=True) is True
    assert index_sql(db) == []
    with db.transaction(applying_remote=True) as s:
        conn = s.connection()
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
        assert restore_search_index(s) is True
        # the restore's bigger cache is per connection: the pooled one gets its own back
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar_one() == before
    assert index_sql(db) == indexes
