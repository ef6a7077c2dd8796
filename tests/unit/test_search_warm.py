"""SearchWarmer against a real migrated SQLite file and the real kernel: every search b-tree
read, nothing written or memory-mapped, low priority, prompt stop, writers never blocked."""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_desktop import search_warm
from agent_desktop.demo import load_demo
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.search_warm import WARM_STEPS, SearchWarmer, WarmReport
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer

# Never ends by itself: only stop() (sqlite3 interrupt) ends it. Named after a real table
# so the schema check lets it run.
ENDLESS = ("endless", "customers",
           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)"
           " SELECT count(*) FROM n")


@pytest.fixture
def db_path(tmp_path: Path) -> Iterator[Path]:
    """A migrated file with demo customers, closed again (no connection maps it)."""
    path = tmp_path / "warm.sqlite3"
    db = Database.open(path)
    load_demo(db, 60)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    yield path


def wait_for_step(warmer: SearchWarmer, label: str) -> None:
    """Wait (bounded, generously: the thread runs at nice 19 on busy CI machines) until
    the warm-up thread is inside the step `label`."""
    for _ in range(3000):
        if warmer.report.current == label:
            return
        time.sleep(0.02)
    raise AssertionError(f"the warm-up never reached {label!r}: {warmer.report}")


def mapped(path: Path) -> bool:
    """Whether the file itself (not its small WAL index, -shm) is memory-mapped here."""
    return any(line.endswith(" " + str(path))
               for line in Path("/proc/self/maps").read_text().splitlines())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reads_every_search_btree_and_writes_nothing(db_path: Path) -> None:
    before = sha256(db_path)
    reports: list[WarmReport] = []
    warmer = SearchWarmer(db_path, on_done=reports.append)
    warmer.start()
    assert warmer.wait(60)
    rep = warmer.report
    # Every object the steps name exists in a migrated database (a renamed index in a
    # migration must be renamed here too) and was read to the end.
    assert rep.warmed == [obj for _label, obj, _sql in WARM_STEPS]
    assert rep.skipped == [] and rep.refused == "" and not rep.interrupted
    assert rep.bytes_read is not None and rep.bytes_read > 0
    assert reports == [rep]
    assert not warmer.running
    assert sha256(db_path) == before


@pytest.mark.parametrize(("step", "skipped", "words"), [
    (("old index", "ix_gone", "SELECT count(*) FROM customers INDEXED BY ix_gone"),
     ["ix_gone"], ("ix_gone", "skipped")),
    (("broken", "customers", "SELECT count(*) FROM customers WHERE nope = 1"),
     [], ("broken", "nope")),
], ids=["missing from the schema", "statement fails"])
def test_a_bad_step_is_logged_and_the_rest_still_warmed(
        db_path: Path, caplog: pytest.LogCaptureFixture, step: tuple[str, str, str],
        skipped: list[str], words: tuple[str, str]) -> None:
    warmer = SearchWarmer(db_path, steps=[step, WARM_STEPS[0]])
    with caplog.at_level(logging.WARNING, logger="agent_desktop.search_warm"):
        warmer.start()
        assert warmer.wait(60)
    assert warmer.report.skipped == skipped
    assert warmer.report.warmed == [WARM_STEPS[0][1]]
    assert any(all(w in r.getMessage() for w in words) for r in caplog.records)


def test_stop_interrupts_the_statement_under_way(db_path: Path) -> None:
    done: list[WarmReport] = []
    warmer = SearchWarmer(db_path, steps=[ENDLESS, WARM_STEPS[0]], on_done=done.append)
    warmer.start()
    wait_for_step(warmer, "endless")
    warmer.stop(timeout=30)
    assert not warmer.running
    assert warmer.wait(0)
    assert warmer.report.interrupted
    assert warmer.report.warmed == []  # the step after the interrupted one never ran
    assert len(done) == 1 and done[0].interrupted


def test_runs_at_the_lowest_cpu_and_io_priority_and_leaves_other_threads_alone(
        db_path: Path) -> None:
    def nice_of(tid: int) -> int:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[16])  # field 19: nice

    own = nice_of(threading.get_native_id())
    warmer = SearchWarmer(db_path, steps=[ENDLESS])
    warmer.start()
    try:
        wait_for_step(warmer, "endless")
        thread = next(t for t in threading.enumerate() if t.name == "search-warm-up")
        assert thread.native_id is not None
        assert nice_of(thread.native_id) == 19
        assert nice_of(threading.get_native_id()) == own
        if os.uname().machine == "x86_64":  # ioprio_get(2) is system call 252 there
            libc = ctypes.CDLL(None, use_errno=True)
            idle_class = 3 << 13
            assert libc.syscall(252, 1, thread.native_id) == idle_class
            assert libc.syscall(252, 1, threading.get_native_id()) != idle_class
    finally:
        warmer.stop(timeout=30)


def test_the_file_is_never_memory_mapped(db_path: Path) -> None:
    """Pages pass through the OS cache only: a map would count every page in our RSS."""
    warmer = SearchWarmer(db_path, steps=[*WARM_STEPS, ENDLESS])
    warmer.start()
    try:
        wait_for_step(warmer, "endless")
        assert len(warmer.report.warmed) == len(WARM_STEPS)
        assert not mapped(db_path)
        # The check can fail: a connection with a memory map does show up there.
        other = sqlite3.connect(db_path)
        try:
            other.execute("PRAGMA mmap_size = 268435456")
            other.execute("SELECT count(*) FROM customers NOT INDEXED").fetchone()
            assert mapped(db_path)
        finally:
            other.close()
    finally:
        warmer.stop(timeout=30)


def test_writes_and_searches_go_on_while_it_reads(db_path: Path) -> None:
    db = Database.open(db_path)
    warmer = SearchWarmer(db_path, steps=[ENDLESS])
    warmer.start()
    try:
        wait_for_step(warmer, "endless")
        with db.transaction() as s:
            s.add(Customer(name="Warm Writer"))
        page = CustomerSearch(db, PhoneNormalizer("CN")).page("warm writer", None, 10)
        assert [r.name for r in page.rows] == ["Warm Writer"]
    finally:
        warmer.stop(timeout=30)
        db.close()


def test_starts_once_and_never_after_stop(db_path: Path) -> None:
    stopped_first = SearchWarmer(db_path)
    stopped_first.stop()
    stopped_first.start()
    assert not stopped_first.running and not stopped_first.wait(0)

    warmer = SearchWarmer(db_path, steps=[ENDLESS])
    warmer.start()
    warmer.start()
    try:
        wait_for_step(warmer, "endless")
        assert [t.name for t in threading.enumerate()].count("search-warm-up") == 1
    finally:
        warmer.stop(timeout=30)


def test_refuses_a_file_too_big_for_memory(db_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_warm, "MAX_SHARE_OF_RAM", 1e-12)
    done: list[WarmReport] = []
    warmer = SearchWarmer(db_path, on_done=done.append)
    warmer.start()
    assert warmer.wait(60)
    assert warmer.report.refused == "file too big for memory"
    assert warmer.report.warmed == [] and done == [warmer.report]


def test_an_unreadable_file_is_reported_not_raised(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "not-a-database.sqlite3"
    path.write_bytes(b"this is not SQLite" * 1000)
    warmer = SearchWarmer(path)
    with caplog.at_level(logging.ERROR, logger="agent_desktop.search_warm"):
        warmer.start()
        assert warmer.wait(60)
    assert warmer.report.refused == "failed (see the log)"
    assert any(str(path) in r.getMessage() for r in caplog.records)


def test_quitting_during_set_up_is_a_stop_not_a_failure(
        db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """stop() can interrupt the connection's set-up statements (the PRAGMAs) as well as a
    step; that is the app quitting, not an error worth a traceback in the agent's log."""
    warmer = SearchWarmer(db_path)
    in_set_up = threading.Event()

    def set_up_interrupted() -> None:
        in_set_up.set()
        warmer._stop.wait(30)  # held in "set-up" until the app quits
        raise sqlite3.OperationalError("interrupted")

    monkeypatch.setattr(warmer, "_warm", set_up_interrupted)
    caplog.set_level(logging.INFO, logger="agent_desktop.search_warm")
    warmer.start()
    assert in_set_up.wait(30)
    warmer.stop(timeout=30)
    assert warmer.report.interrupted and not warmer.report.refused
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("search warm-up stopped" in r.getMessage() for r in caplog.records)


def test_a_set_up_error_without_stop_is_logged_as_a_failure(
        db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    warmer = SearchWarmer(db_path)

    def broken() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(warmer, "_warm", broken)
    warmer.start()
    assert warmer.wait(30)
    assert warmer.report.refused == "failed (see the log)"
    assert not warmer.report.interrupted
    assert any(r.levelno == logging.ERROR and "disk I/O error" in (r.exc_text or "")
               for r in caplog.records)
