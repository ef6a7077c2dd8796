"""The drift diagnostic and compensation in a real call: the real bridge in a private
PulseAudio against a real peer (the call benchmark's rig, no GUI load). What a real call
must show, not timed: one ring-level row a second for both rings; each side's producer
and consumer running at 32000 B/s within 2000 ppm (16 kHz mono; the rig measured
150–300 ppm between pjmedia's clock and PulseAudio's); counted adjustments that never
became under/overruns; and the peer's tone still on the recording."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.integration.audio_rig import PulseRig, TonePeer, pulse, tone_peer
from tests.integration.test_audio_under_scroll import check_call, run_call

pytestmark = pytest.mark.integration
__all__ = ["pulse", "tone_peer"]  # fixtures
SECONDS = 20


def test_a_real_call_reports_both_clocks_and_keeps_the_levels(
        pulse: PulseRig, tone_peer: TonePeer, tmp_path: Path) -> None:
    rep = run_call(pulse, tone_peer, tmp_path, "", seconds=SECONDS)
    check_call(rep)
    rows = rep["ring_levels"]
    assert SECONDS - 3 <= len(rows) <= SECONDS + 1
    assert all(a["t"] < b["t"] for a, b in itertools.pairwise(rows))
    for side in ("mic", "headset"):
        drift = rep["drift"][side]
        assert abs(drift["producer_ppm"]) < 2000, drift
        assert abs(drift["consumer_ppm"]) < 2000, drift
        assert len(drift["level_min_ms"]) == len(rows)
        level, low, written, read, adjustments = rows[-1][side]
        # Bytes flowed all call long on both ends of the ring.
        assert written > (SECONDS - 2) * 32000 and read > (SECONDS - 2) * 32000
        # The level stays below the latency guard (headset 100 ms, mic 120 ms): drift
        # is corrected by 1 ms slices, never left to pile up.
        assert 0 <= low <= level + 640 and level <= 120 * 32
        assert 0 <= adjustments <= SECONDS * 2  # at most one per 0.5 s window
