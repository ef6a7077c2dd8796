"""Search warm-up: read the b-trees that list pages, searches and caller ID use into the
operating system's file cache, once, on a low-priority background thread after the first
paint.

Why: at 1M customers every query shows ~50 customers scattered over a 1.5 GB file, so its
first run reads 30-250 pages that nothing has read yet. With the file in the OS cache a page
costs a few microseconds (search p95 1-3 ms of CPU); from a cold disk each costs 2-14 ms
(measured: random 4 KiB reads p50 2 ms, p95 14 ms on the shared VM), which made the first
run of a query 27-350 ms. An agent's app runs for hours, so paying one sequential-ish pass
over the hot b-trees shortly after start-up buys instant searches for the rest of the day.

How, and what it must not do:
- its own read-only sqlite3 connection with `mmap_size = 0` and a 2 MiB page cache: pages
  pass through `pread` into the OS cache and are dropped from the process at once, so the
  process RSS does not grow (a memory map would put every touched page in RSS);
- `SELECT count(*)` over each b-tree: SQLite visits every page of it without decoding rows,
  in key order, which for these bulk-built b-trees is mostly file order (kernel read-ahead
  makes it sequential); the GIL is released while SQLite runs;
- the thread runs at nice 19 in the idle I/O class, so the GUI thread and a search typed
  meanwhile win every contest for a core or the disk;
- `stop()` interrupts the statement under way (`sqlite3.Connection.interrupt`), so quitting
  the app is never delayed by it; a reader never blocks writers in WAL mode.
Objects missing from the schema are skipped with a warning (warming is an optimisation:
nothing fails because of it).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# (what it serves, object, statement), most needed first: the list's display columns
# (browse, prefix tier and every tier's rows), caller ID's index, the trigram index and the
# rows it joins, digit checks, caller ID's row lookups (an incoming call wants its name in
# under 1 ms), and last the bigram index of 1-2 character queries (budget 70 ms, not 5).
# The second field names the b-tree read; a test checks each exists in a migrated database.
WARM_STEPS: tuple[tuple[str, str, str], ...] = (
    ("list rows", "ix_customers_list",
     "SELECT count(*) FROM customers INDEXED BY ix_customers_list"),
    ("list phones", "ix_phone_numbers_list",
     "SELECT count(*) FROM phone_numbers INDEXED BY ix_phone_numbers_list"),
    ("list tags", "ix_tags_list", "SELECT count(*) FROM tags INDEXED BY ix_tags_list"),
    ("caller ID index", "ix_phone_numbers_rev_digits",
     "SELECT count(*) FROM phone_numbers INDEXED BY ix_phone_numbers_rev_digits"),
    ("trigram terms", "customer_fts_idx", "SELECT count(*) FROM customer_fts_idx"),
    ("trigram index", "customer_fts_data", "SELECT count(*) FROM customer_fts_data"),
    ("customer rows", "customers", "SELECT count(*) FROM customers NOT INDEXED"),
    ("search documents", "customer_search_docs",
     "SELECT count(*) FROM customer_search_docs NOT INDEXED"),
    ("caller ID rows", "phone_numbers", "SELECT count(*) FROM phone_numbers NOT INDEXED"),
    ("bigram terms", "customer_grams_idx", "SELECT count(*) FROM customer_grams_idx"),
    ("bigram index", "customer_grams_data", "SELECT count(*) FROM customer_grams_data"),
)
# Warming a file bigger than this share of the machine's memory would only push other
# programs' pages (and its own earlier pages) out of the cache.
MAX_SHARE_OF_RAM = 0.5
_WARM_CACHE_KIB = 2048
# ioprio_set(2): no Python binding; the system call number depends on the architecture.
_IOPRIO_CLASS_IDLE = 3
_IOPRIO_WHO_PROCESS = 1
_SYS_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}


@dataclass
class WarmReport:
    """What one warm-up did (for the log, the benchmark and tests)."""

    warmed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # missing from the schema
    bytes_read: int | None = None  # bytes the thread read (Linux), cached or not
    wall_s: float = 0.0
    cpu_s: float = 0.0
    interrupted: bool = False
    refused: str = ""  # why nothing was warmed (file too big for memory, unreadable)
    current: str = ""  # label of the step under way ("" between steps and at the end)


class SearchWarmer:
    """Warms the search b-trees of one database file; start once, stop on close.

    `on_done(report)` runs on the warm-up thread when it ends (finished, stopped or
    refused): e.g. to start the full integrity check only then, so the two passes over
    the file do not compete for the disk.
    """

    def __init__(self, db_path: Path,
                 steps: Sequence[tuple[str, str, str]] = WARM_STEPS,
                 on_done: Callable[[WarmReport], None] | None = None) -> None:
        self._path = Path(db_path)
        self._steps = tuple(steps)
        self._on_done = on_done
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self.report = WarmReport()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the background pass (once; later calls and calls after stop do nothing)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="search-warm-up",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Interrupt the pass and wait for the thread (an app closing must not wait for it).

        The interrupt is repeated while waiting: one sent just before the thread starts its
        next statement would be lost (SQLite ignores an interrupt when nothing runs)."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            with self._lock:
                if self._conn is not None:
                    self._conn.interrupt()
            thread.join(0.05)
        if thread.is_alive():
            log.warning("search warm-up did not stop within %.1f s", timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the pass has ended (finished, stopped or refused)."""
        return self._done.wait(timeout)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        started, cpu_started = time.perf_counter(), time.thread_time()
        io_started = _thread_rchar()
        _lower_own_priority()
        try:
            self._warm()
        except sqlite3.OperationalError:
            if not self._stop.is_set():
                log.exception("search warm-up failed for %s", self._path)
                self.report.refused = self.report.refused or "failed (see the log)"
            else:  # stop() interrupted a set-up statement: quitting is not a failure
                self.report.interrupted = True
        except Exception:
            # An optimisation must never take the app down; say what happened.
            log.exception("search warm-up failed for %s", self._path)
            self.report.refused = self.report.refused or "failed (see the log)"
        finally:
            with self._lock:
                conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            rep = self.report
            rep.wall_s = time.perf_counter() - started
            rep.cpu_s = time.thread_time() - cpu_started
            io_now = _thread_rchar()
            if io_started is not None and io_now is not None:
                rep.bytes_read = io_now - io_started
            log.info("search warm-up %s: %d b-trees, %s read in %.1f s (CPU %.2f s)%s",
                     "stopped" if rep.interrupted else (rep.refused or "done"),
                     len(rep.warmed), _mib(rep.bytes_read), rep.wall_s, rep.cpu_s,
                     f"; missing: {', '.join(rep.skipped)}" if rep.skipped else "")
            self._done.set()
            if self._on_done is not None:
                try:
                    self._on_done(rep)
                except Exception:
                    log.exception("search warm-up: the on_done callback failed")

    def _warm(self) -> None:
        refusal = _too_big(self._path)
        if refusal:
            self.report.refused = refusal
            return
        conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=5.0,
                               check_same_thread=False)
        with self._lock:
            if self._stop.is_set():
                conn.close()
                self.report.interrupted = True
                return
            self._conn = conn
        conn.execute("PRAGMA mmap_size = 0")
        conn.execute(f"PRAGMA cache_size = -{_WARM_CACHE_KIB}")
        present = {str(r[0]) for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        for label, obj, sql in self._steps:
            if self._stop.is_set():
                self.report.interrupted = True
                return
            if obj not in present:
                self.report.skipped.append(obj)
                log.warning("search warm-up: %s (%s) is not in %s; skipped", label, obj,
                            self._path)
                continue
            step_started = time.perf_counter()
            self.report.current = label
            try:
                conn.execute(sql).fetchone()
            except sqlite3.OperationalError as exc:
                self.report.current = ""
                if self._stop.is_set():
                    self.report.interrupted = True
                    return
                log.warning("search warm-up: reading %s (%s) failed: %s", label, obj, exc)
                continue
            self.report.current = ""
            self.report.warmed.append(obj)
            log.debug("search warm-up: %s (%s) in %.2f s", label, obj,
                      time.perf_counter() - step_started)


def _too_big(path: Path) -> str:
    """A reason not to warm (file bigger than MAX_SHARE_OF_RAM of memory), else ''."""
    try:
        size = path.stat().st_size
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return ""
    if ram > 0 and size > MAX_SHARE_OF_RAM * ram:
        log.info("search warm-up skipped: %s is %s, more than %.0f %% of the %s of memory",
                 path, _mib(size), MAX_SHARE_OF_RAM * 100, _mib(ram))
        return "file too big for memory"
    return ""


def _lower_own_priority() -> None:
    """Nice 19 and the idle I/O class for this thread only (Linux applies both per thread).

    The idle class matters on a slow cold disk: measured at ~10 MB/s there (load ~5), the
    pass's 8 MiB read-ahead requests queued ahead of the random reads of searches typed
    meanwhile (prefix first-run p95 214 ms, max 4.7 s, while the pass took 94 s).
    mq-deadline serves idle-class requests only when the disk is otherwise free (with
    aging, so the pass is never starved for good). Its cost when the file is in the
    host's cache: 485 MiB in 6.4-7.4 s against 5.4-5.7 s."""
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 19)
    except (OSError, AttributeError) as exc:
        log.debug("search warm-up: could not lower the CPU priority: %s", exc)
    nr = _SYS_IOPRIO_SET.get(os.uname().machine) if sys.platform == "linux" else None
    if nr is None:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(nr, _IOPRIO_WHO_PROCESS, tid, _IOPRIO_CLASS_IDLE << 13) != 0:
        log.debug("search warm-up: idle I/O class refused (errno %d)", ctypes.get_errno())


def _thread_rchar() -> int | None:
    """Bytes this thread has read so far (Linux /proc), whether from cache or disk."""
    try:
        with open("/proc/thread-self/io", encoding="ascii") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split(":", 1)[1])
    except OSError:
        return None
    return None


def _mib(n: int | None) -> str:
    return "? MiB" if n is None else f"{n / 2**20:.0f} MiB"
