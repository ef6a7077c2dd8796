"""ByteRing: bounded, drop-oldest with hysteresis, prebuffer, counters, thread safety."""

from __future__ import annotations

import itertools
import struct
import threading

import pytest

from sip.audio.ring import ByteRing


def frame(n: int, size: int = 8) -> bytes:
    """`size` bytes tagged with the number n (so order and loss are visible)."""
    return struct.pack("<I", n) + bytes(size - 4)


def test_fifo_order_and_exact_reads() -> None:
    ring = ByteRing(64)
    ring.write(b"abcd")
    ring.write(b"efgh")
    assert ring.read(6) == b"abcdef"
    assert ring.read(2) == b"gh"
    assert len(ring) == 0
    assert ring.underruns == 0


def test_short_read_is_padded_with_silence_and_counted() -> None:
    ring = ByteRing(64)
    ring.write(b"\x01\x02")
    assert ring.read(6) == b"\x01\x02\x00\x00\x00\x00"
    assert ring.underruns == 1
    assert ring.read(4) == bytes(4)
    assert ring.underruns == 2


def test_overflow_drops_oldest_down_to_keep_and_counts_once() -> None:
    ring = ByteRing(32, keep=16)
    for i in range(4):
        ring.write(frame(i))  # 32 bytes: exactly full, no drop
    assert ring.overruns == 0
    dropped = ring.write(frame(4))  # 40 > 32 → keep newest 16
    assert dropped == 24
    assert ring.overruns == 1
    assert len(ring) == 16
    assert struct.unpack_from("<I", ring.read(8))[0] == 3
    assert struct.unpack_from("<I", ring.read(8))[0] == 4


def test_ring_never_exceeds_capacity_under_a_flood() -> None:
    ring = ByteRing(100)
    for _ in range(1000):
        ring.write(bytes(7 * 2))
        assert len(ring) <= 100
        assert len(ring) % 2 == 0


def test_prebuffer_returns_uncounted_silence_until_filled_and_after_underrun() -> None:
    ring = ByteRing(64, prebuffer=8)
    ring.write(b"\x05" * 4)
    assert ring.read(4) == bytes(4)       # not primed: silence, audio kept
    assert ring.underruns == 0
    assert len(ring) == 4
    ring.write(b"\x06" * 4)                # 8 bytes: primed
    assert ring.read(4) == b"\x05" * 4
    assert ring.primed
    assert ring.read(8) == b"\x06" * 4 + bytes(4)  # short → underrun, re-arm
    assert ring.underruns == 1
    assert not ring.primed
    ring.write(b"\x07" * 2)
    assert ring.read(2) == bytes(2)        # waiting for the prebuffer again
    assert ring.underruns == 1


def test_clear_trim_and_reset_counters() -> None:
    ring = ByteRing(16, keep=8)
    ring.write(bytes(20))
    ring.read(40)
    assert ring.reset_counters() == (1, 1)
    assert (ring.underruns, ring.overruns) == (0, 0)
    ring.write(bytes(range(12)))
    assert ring.trim_to(4) == 8
    assert ring.read(4) == bytes(range(8, 12))
    assert ring.overruns == 0
    ring.write(b"xx")
    ring.clear()
    assert len(ring) == 0


@pytest.mark.parametrize(("capacity", "prebuffer", "keep", "word"), [
    (0, 0, None, "capacity"),
    (8, 9, None, "prebuffer"),
    (8, 0, 9, "keep"),
])
def test_bad_sizes_are_rejected_with_a_clear_message(
        capacity: int, prebuffer: int, keep: int | None, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        ByteRing(capacity, prebuffer, keep)


def test_concurrent_producer_and_consumer_keep_order_without_corruption() -> None:
    """A producer thread writes numbered frames while a consumer reads: every frame read
    is whole (never torn) and numbers only go up (drops allowed, reordering never)."""
    size = 8
    ring = ByteRing(size * 64)
    total = 20000
    seen: list[int] = []
    done = threading.Event()

    def produce() -> None:
        for i in range(1, total + 1):
            ring.write(frame(i, size))
        done.set()

    def consume() -> None:
        while not (done.is_set() and len(ring) == 0):
            data = ring.read_available(size * 5)
            for off in range(0, len(data) - len(data) % size, size):
                chunk = data[off:off + size]
                assert chunk[4:] == bytes(size - 4), "torn frame"
                seen.append(struct.unpack_from("<I", chunk)[0])

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert seen, "consumer saw nothing"
    assert all(a < b for a, b in itertools.pairwise(seen))
    assert seen[-1] == total
    if len(seen) < total:
        assert ring.overruns > 0, "frames vanished without an overrun being counted"
