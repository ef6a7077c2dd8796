"""A real call through the headset bridge while the real customer list scrolls: the
call benchmark's workload (tests/integration/rig/engine_audio.py), checked for what it
claims rather than timed — the list really scrolled by wheel events under
QApplication.exec(), pages were fetched lazily, the heap was kept out of garbage
collection during the call and handed back after it, the diagnostics are well-formed, and
the call's audio still arrived (1 kHz peer tone on the recording's right channel)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_desktop.demo import load_demo
from agent_desktop.store.db import Database
from tests.integration.audio_rig import (
    HEADSET,
    MIC,
    PulseRig,
    TonePeer,
    dominant_hz,
    pulse,
    read_wav,
    sine_wav,
    tone_peer,
)

pytestmark = pytest.mark.integration
__all__ = ["pulse", "tone_peer"]  # fixtures
REPO = Path(__file__).resolve().parents[2]
CUSTOMERS = 1500


def run_call(pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path, load: str,
             seconds: float = 6) -> dict[str, Any]:
    pulse.play_into_mic(sine_wav(tmp_path / "mic.wav", 440, 40))
    r = subprocess.run([sys.executable, "-m", "tests.integration.rig.engine_audio",
                        tone_peer.uri, str(tmp_path / "rec"), str(seconds), MIC, HEADSET,
                        load], env=pulse.env, cwd=REPO, capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    rep: dict[str, Any] = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])
    return rep


@pytest.fixture
def customers_db(tmp_path: Path) -> Path:
    path = tmp_path / "customers.sqlite3"
    db = Database.open(path)
    load_demo(db, CUSTOMERS, 11)
    db.close()
    return path


def check_call(rep: dict[str, Any]) -> None:
    assert rep["ended"] == ["answered", "Call ended by you"]
    channels, s = read_wav(Path(rep["recording"]["path"]))
    assert channels == 2
    assert dominant_hz(s[16000:48000, 1]) == pytest.approx(1000, abs=3)
    # Frozen while the call's audio flowed, everything handed back once it ended.
    frozen_in_call, frozen_after = rep["gc_frozen"]
    assert frozen_in_call > 10_000 and frozen_after == 0
    probe = rep["gil_probe"]
    assert probe["n"] > 100 and 0 <= probe["p50_ms"] <= probe["p99_ms"] <= probe["max_ms"]
    assert set(rep["gc"]) == {"gen0", "gen1", "gen2"}
    for ev in rep["events"]:
        assert ev["what"].split(" ")[0] in ("mic", "headset")
        assert ev["what"].split(" ")[1] in ("underrun", "overrun")
        assert isinstance(ev["gaps"], list)
    # The counters are sent once a second, the events read at hang-up: never fewer events.
    under, over = rep["counters"]
    assert under <= sum(1 for e in rep["events"] if e["what"].endswith("underrun"))
    assert over <= sum(1 for e in rep["events"] if e["what"].endswith("overrun"))


def test_wheel_scrolling_the_real_list_panel_during_a_call(
        pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path, customers_db: Path) -> None:
    rep = run_call(pulse, tone_peer, tmp_path, f"scroll={customers_db}")
    check_call(rep)
    # ~1800 rows/s for ~7 s over 1500 customers: the whole list went by, more than once,
    # fetched page by page (100 rows) as the view reached the end.
    assert rep["scroll_wraps"] >= 1
    assert rep["rows_loaded"] == CUSTOMERS
    assert rep["scrolled_rows"] > CUSTOMERS
    assert rep["scroll_ticks"] > 50


def test_repaint_harness_still_runs_for_comparison(
        pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path, customers_db: Path) -> None:
    rep = run_call(pulse, tone_peer, tmp_path, f"scroll-repaint={customers_db}")
    check_call(rep)
    assert rep["scrolled_rows"] > CUSTOMERS // 2
