"""ByteRing's latency guard (`high`/`settle_s`): bursts are absorbed, a backlog that
stays is trimmed once and counted; trims after a consumer stall count when asked."""

from __future__ import annotations

import pytest

from sip.audio import ring as ring_module
from sip.audio.ring import BYTES_PER_MS, ByteRing

MS = BYTES_PER_MS
FRAME = 20 * MS


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 50.0
        monkeypatch.setattr(ring_module.time, "monotonic", lambda: self.now)

    def tick(self, ms: float = 20) -> None:
        self.now += ms / 1000


def headset_ring() -> ByteRing:
    return ByteRing(240 * MS, 40 * MS, 60 * MS, high=100 * MS, settle_s=1.0)


def steady(ring: ByteRing, clock: Clock, frames: int, extra_read: int = 0) -> None:
    for _ in range(frames):
        clock.tick()
        ring.write(bytes(FRAME))
        ring.read(FRAME + extra_read)


def test_a_catch_up_burst_fits_and_drains_without_any_drop(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    clock = Clock(monkeypatch)
    ring = headset_ring()
    ring.write(bytes(40 * MS))
    steady(ring, clock, 50)
    ring.write(bytes(120 * MS))  # the clock thread ran six missed ticks back to back
    assert ring.overruns == 0 and len(ring) == 160 * MS
    steady(ring, clock, 12, extra_read=10 * MS)  # the sink refills its own buffer
    steady(ring, clock, 100)
    assert ring.overruns == 0 and ring.underruns == 0
    assert len(ring) == 40 * MS


def test_a_backlog_that_stays_is_trimmed_once_and_counted(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    clock = Clock(monkeypatch)
    ring = headset_ring()
    ring.write(bytes(40 * MS))
    steady(ring, clock, 50)
    ring.write(bytes(120 * MS))  # nobody catches up: +120 ms for the rest of the call
    steady(ring, clock, 150)
    assert ring.overruns == 1 and ring.underruns == 0
    assert len(ring) <= 60 * MS
    assert len(ring.overrun_times) == 1


def test_without_high_a_burst_over_capacity_still_drops_to_keep() -> None:
    ring = ByteRing(120 * MS, 40 * MS, 60 * MS)
    ring.write(bytes(100 * MS))
    ring.write(bytes(40 * MS))
    assert ring.overruns == 1 and len(ring) == 60 * MS


def test_high_outside_keep_and_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="high must be between keep"):
        ByteRing(100, 10, 50, high=20)
    with pytest.raises(ValueError, match="high must be between keep"):
        ByteRing(100, 10, 50, high=120)


def test_trim_counts_only_when_asked() -> None:
    ring = ByteRing(1000)
    ring.write(bytes(600))
    assert ring.trim_to(200) == 400 and ring.overruns == 0
    ring.write(bytes(600))
    assert ring.trim_to(200, count=True) == 600 and ring.overruns == 1
    assert len(ring.overrun_times) == 1


def test_prebuffer_grows_after_each_underrun_up_to_its_cap_and_resets_per_call() -> None:
    ring = ByteRing(240 * MS, 40 * MS, 60 * MS, high=100 * MS, grow_to=80 * MS)
    assert ring.prebuffer == 40 * MS
    sizes = []
    for _ in range(4):
        ring.write(bytes(ring.prebuffer))
        ring.read(ring.prebuffer + FRAME)  # the producer was late: an underrun
        sizes.append(ring.prebuffer)
    assert sizes == [60 * MS, 80 * MS, 80 * MS, 80 * MS]
    assert ring.underruns == 4
    ring.write(bytes(60 * MS))
    assert ring.read(FRAME) == bytes(FRAME) and len(ring) == 60 * MS  # still filling to 80
    ring.clear()  # the next call starts with the low latency again
    assert ring.prebuffer == 40 * MS


def test_grow_to_outside_prebuffer_and_high_is_refused() -> None:
    with pytest.raises(ValueError, match="grow_to must be between prebuffer"):
        ByteRing(240, 40, 60, high=100, grow_to=20)
    with pytest.raises(ValueError, match="grow_to must be between prebuffer"):
        ByteRing(240, 40, 60, high=100, grow_to=120)


def test_counter_reset_also_forgets_growth_from_a_stream_start() -> None:
    ring = ByteRing(240 * MS, 40 * MS, 60 * MS, grow_to=80 * MS)
    ring.write(bytes(40 * MS))
    ring.read(60 * MS)
    assert ring.prebuffer == 60 * MS
    assert ring.reset_counters() == (1, 0)
    assert ring.prebuffer == 40 * MS
