"""The benchmark's own machinery: output parsing, query sampling, the naive baseline window.

Speed is not asserted here (benchmarks measure it); these check that the figures the
benchmark reports come from real measurements and are parsed correctly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from agent_desktop.demo import load_demo
from agent_desktop.store.db import Database
from tests.bench.customers import launch, p95, sample_queries
from tests.bench.naive_search import NaiveSearch


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "agent.sqlite3"
    db = Database.open(path)
    load_demo(db, 400, seed=5)
    db.close()
    return path


def test_launch_parses_the_first_paint_line_among_other_output() -> None:
    code = ("print('starting'); print('FIRST_PAINT {\"ms\": 123.4, \"rss_mib\": 80.5}');"
            "print('NAIVE_FILTER {\"ms\": 9.0, \"rows\": 3}')")
    out = launch([sys.executable, "-c", code], dict(os.environ))
    assert out["FIRST_PAINT"] == {"ms": 123.4, "rss_mib": 80.5}
    assert out["NAIVE_FILTER"]["rows"] == 3
    assert "error" not in out


def test_launch_reports_a_process_that_never_paints() -> None:
    code = "import sys; print('oops', file=sys.stderr); sys.exit(3)"
    out = launch([sys.executable, "-c", code], dict(os.environ))
    assert "FIRST_PAINT" not in out
    assert "exit code 3" in out["error"] and "oops" in out["error"]


def test_p95_picks_the_95th_percentile() -> None:
    assert p95([float(i) for i in range(1, 101)]) == 95.0
    assert p95([7.0]) == 7.0


def test_sampled_queries_are_varied_and_match_their_kind(small_db: Path) -> None:
    q = sample_queries(small_db, 40, seed=1)
    assert set(q) == {"prefix", "substring", "digits", "cjk2", "caller_id"}
    assert all(len(x) == 2 and all("\u4e00" <= ch <= "\u9fff" for ch in x)
               for x in q["cjk2"]), q["cjk2"]
    assert all(x.isdigit() and 4 <= len(x) <= 7 for x in q["digits"])
    assert all(len(x) >= 3 for x in q["substring"])
    assert len(set(q["prefix"])) > 10
    naive = NaiveSearch(str(small_db))
    try:
        # Drawn from the data: every caller-ID sample belongs to someone.
        assert all(naive.caller_id(n) is not None for n in q["caller_id"])
        assert all(naive.page(x) for x in q["substring"])
    finally:
        naive.close()


def test_naive_window_really_paints_and_filters(small_db: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = launch([sys.executable, "-m", "tests.bench.naive_window", str(small_db),
                  "--filter", "北京"], env)
    assert "error" not in out, out
    assert out["FIRST_PAINT"]["ms"] > 0 and out["FIRST_PAINT"]["rss_mib"] > 0
    assert 0 < out["NAIVE_FILTER"]["rows"] < 400
