"""The initial-sync fast path against the real server, with a real crash: a desktop process
downloading its first sync (search triggers suspended) is killed with SIGKILL mid-way; the
next process finds the index stale, rebuilds it, resumes at its cursor and ends with every
customer searchable and the triggers back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer
from sync.client import state
from sync.client.bulk_apply import SUSPENDED_KEY
from sync.server.db import ServerDatabase
from tests.bench.sync_client import Install
from tests.integration.fault_proxy import REPO, ServerProcess, User
from tests.integration.server.bench import seed_bulk
from tests.unit.test_sync_bulk_apply import index_sql

pytestmark = pytest.mark.integration

AGENT = User("fastpull", "pw-fastpull-secret")
CUSTOMERS = 300

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tests.bench.sync_client import Install, use_memory_keyring
    use_memory_keyring()
    root, url, user, password = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    install = Install(root, "victim", url, user, password, pull_limit=50)
    install.client.group_rows = 100  # two pages per transaction: several commits
    def progress(done, total):
        print("PAGE", done, total, flush=True)
        time.sleep(0.3)  # leave the parent time to kill us mid-download
    install.client.pull(progress)
    print("FINISHED", flush=True)
""")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("fastpull-server"), [AGENT])
    db = ServerDatabase(srv.db_url)
    try:
        seed_bulk(db, AGENT.username, CUSTOMERS)
    finally:
        db.dispose()
    srv.start()
    yield srv
    srv.kill()


def trigger_count(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
            " AND name LIKE '%\\_search\\_%' ESCAPE '\\'")).scalar_one())


def test_killed_initial_download_is_repaired_and_resumed(server: ServerProcess,
                                                         tmp_path: Path) -> None:
    err = (tmp_path / "child.err").open("w")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), server.url, AGENT.username,
         AGENT.password],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
        stderr=err, text=True)
    try:
        assert child.stdout is not None
        pages = 0
        for line in child.stdout:
            assert not line.startswith("FINISHED"), "the download ended before the kill"
            if line.startswith("PAGE"):
                pages += 1
                if pages == 3:
                    child.send_signal(signal.SIGKILL)
                    break
        assert child.wait(timeout=30) == -signal.SIGKILL, (
            (tmp_path / "child.err").read_text())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None
        child.stdout.close()
        err.close()

    # What the crash left: part of the download, triggers suspended, the key saying so.
    db = Database.open(tmp_path / "victim.sqlite3")
    try:
        assert trigger_count(db) == 0 and index_sql(db) == []
        with db.transaction() as s:
            assert state.get(s, SUSPENDED_KEY) is not None
            assert state.get(s, state.CURSOR) is not None
            assert state.get(s, state.INITIAL_DONE) is None
            partial = s.query(Customer).count()
        assert 0 < partial < CUSTOMERS
    finally:
        db.close()

    # The next start: same database file, a new process state; resumes at the cursor.
    install = Install(tmp_path, "victim", server.url, AGENT.username, AGENT.password,
                      pull_limit=50)
    try:
        result = install.client.pull()
        assert result.skipped == []
        assert install.count(Customer) == CUSTOMERS
        assert install.search_docs() == CUSTOMERS
        fresh = Database.open(tmp_path / "fresh.sqlite3")  # what the migrations install
        try:
            assert trigger_count(install.db) == trigger_count(fresh) > 0
            assert index_sql(install.db) == index_sql(fresh) != []
        finally:
            fresh.close()
        with install.db.transaction() as s:
            assert state.get(s, SUSPENDED_KEY) is None
            assert state.get(s, state.INITIAL_DONE) == "1"
            names = [n for (n,) in s.execute(text(
                "SELECT name FROM customers ORDER BY id LIMIT 1")).all()]
            last = s.execute(text("SELECT name FROM customers ORDER BY id DESC LIMIT 1")
                             ).scalar_one()
        search = CustomerSearch(install.db, PhoneNormalizer("DE"))
        for name in (names[0], last):  # one from before the crash, one from after
            hits = search.page(name, None, 50).rows
            assert name in [r.name for r in hits]
        # local edits are indexed again by the triggers
        with install.db.transaction() as s:
            s.add(Customer(name="Zelda Aftercrash"))
        assert [r.name for r in search.page("Zelda Aftercrash", None, 5).rows] == [
            "Zelda Aftercrash"]
    finally:
        install.close()
