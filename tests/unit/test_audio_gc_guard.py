"""The call-audio GC guard and the ring's diagnostic timestamps (sip.audio)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sip.audio import ring as ring_module
from sip.audio.gc_guard import CallGcGuard
from sip.audio.ring import GAP_S, ByteRing


@pytest.fixture
def unfrozen_heap() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (the guard changes process state)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen_heap")
def test_guard_freezes_during_the_call_and_gives_everything_back_after() -> None:
    guard = CallGcGuard()
    before = object()  # exists before the call: must not be walked during it
    guard.enter()
    assert guard.active
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert gc.is_tracked([before])  # still a normal object, just not collected now
    guard.enter()  # a second media-active event (codec re-INVITE) changes nothing
    assert gc.get_freeze_count() == frozen
    guard.exit()
    assert not guard.active
    assert gc.get_freeze_count() == 0
    guard.exit()  # idempotent
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("unfrozen_heap")
def test_garbage_made_before_the_call_is_collected_after_it() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: only the collector frees it

    gc.collect()
    Node()  # unreachable garbage, not collected yet
    guard = CallGcGuard()
    guard.enter()
    gc.collect()
    assert not any(type(o) is Node for o in gc.get_objects())  # frozen: out of sight
    guard.exit()
    assert gc.collect() >= 1  # handed back: the cycle is found now


@pytest.mark.usefixtures("unfrozen_heap")
def test_a_heap_frozen_by_someone_else_stays_frozen() -> None:
    gc.freeze()  # e.g. the composition root after start-up
    guard = CallGcGuard()
    guard.enter()
    guard.exit()
    assert gc.get_freeze_count() > 0


def test_ring_notes_when_underruns_and_overruns_happen(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(ring_module.time, "monotonic", lambda: now[0])
    ring = ByteRing(8, keep=4)
    ring.read(4)
    now[0] = 100.01
    ring.write(b"0123456789")
    assert list(ring.underrun_times) == [100.0]
    assert list(ring.overrun_times) == [100.01]
    ring.reset_counters()
    assert not ring.underrun_times and not ring.overrun_times


def test_ring_notes_long_pauses_of_each_side(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [10.0]
    monkeypatch.setattr(ring_module.time, "monotonic", lambda: now[0])
    ring = ByteRing(1000)
    ring.write(b"ab")
    ring.read(2)
    now[0] += 0.02  # normal pace: nothing noted
    ring.write(b"ab")
    ring.read(2)
    now[0] += GAP_S + 0.05  # both sides stalled
    ring.write(b"ab")
    now[0] += 0.01
    ring.read(2)
    assert [(side, round(length, 3)) for side, _at, length in ring.gaps] == [
        ("write", round(GAP_S + 0.05, 3)), ("read", round(GAP_S + 0.06, 3))]
    ring.clear()  # a new call: the pause since the last one is not a gap
    now[0] += 5
    ring.write(b"ab")
    ring.read(2)
    assert len(ring.gaps) == 2
