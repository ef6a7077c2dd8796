"""The sync benchmark's machinery at tiny sizes, so it cannot rot: option checks, and a full
run (real server process, real client, real upload, a few simulated agents) on SQLite and
on PostgreSQL. Speed is not asserted here; the figures must exist and be measurements."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.bench.sync import parse, run, size_label

TINY = ["--customers", "300", "--push", "40", "--agents", "3", "--seconds", "6",
        "--rounds", "3", "--upload-mb", "1"]


def test_options_are_checked() -> None:
    with pytest.raises(SystemExit):
        parse(["--customers", "0"])
    with pytest.raises(SystemExit):
        parse(["--seconds", "0"])
    args = parse(["--no-pg", "--agents", "0"])
    assert args.no_pg and args.agents == 0 and args.customers == 100_000


def test_size_labels_match_the_issue_names() -> None:
    assert size_label(100_000) == "100k"
    assert size_label(10_000) == "10k"
    assert size_label(300) == "300"
    assert size_label(1500) == "1500"


def _check(result: dict[str, object], sfx: str) -> None:
    for key in ("pull_300_s", "pull_300_triggers_s", "baseline_full_pull_300_s",
                "push_40_s", "noop_round_ms", "noop_round_p95_ms", "upload_mb_s",
                "agents_3_p99_ms"):
        value = result[key + sfx]
        assert isinstance(value, float) and value > 0 and math.isfinite(value), key
    assert result["agents_3_errors" + sfx] == 0
    rounds = result["agents_3_rounds" + sfx]
    # each agent starts within one 5 s period, so each finishes at least one round
    assert isinstance(rounds, int) and rounds >= 3
    rows = result["server_rows" + sfx]
    assert isinstance(rows, int) and rows > 300  # customers plus their children


@pytest.mark.integration
def test_tiny_run_on_sqlite(tmp_path: Path) -> None:
    result = run([*TINY, "--no-pg"], tmp_path)
    _check(result, "")
    assert not any(k.endswith("_pg") for k in result)
    assert result["machine"]["cpus"] >= 1
    assert len(result["load_start"]) == 3
    assert set(result["meets_targets"]) == {"noop_round_ms"}
    assert list(tmp_path.iterdir()) == []  # the temporary server/client files are gone


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.slow
def test_tiny_run_on_postgres_too(tmp_path: Path) -> None:
    result = run([*TINY, "--no-before"], tmp_path)
    _check({**result, "pull_300_triggers_s": 1.0, "pull_300_triggers_s_pg": 1.0}, "")
    _check({**result, "pull_300_triggers_s_pg": 1.0}, "_pg")
    assert "pull_300_triggers_s" not in result


@pytest.mark.integration
def test_only_pull_measures_the_first_download_alone(tmp_path: Path) -> None:
    result = run(["--customers", "300", "--no-pg", "--agents", "0", "--only", "pull"],
                 tmp_path)
    assert isinstance(result["pull_300_s"], float) and result["pull_300_s"] > 0
    # CPU figures are rounded to 0.1 s: a 300-row pull's main thread can show 0.0.
    for key in ("pull_300_client_cpu_s", "pull_300_client_main_cpu_s"):
        value = result[key]
        assert isinstance(value, float) and value >= 0 and math.isfinite(value), key
    for figure in ("baseline_full_pull_300_s", "push_10k_s", "noop_round_ms", "upload_mb_s",
                   "server_workers"):
        assert figure not in result, figure
    assert list(tmp_path.iterdir()) == []
