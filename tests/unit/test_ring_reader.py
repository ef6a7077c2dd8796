"""The headset side's pieces that need no sound server: the pull-mode reader over the
speaker ring (start-up and stall handling) and the device choice after a hot-plug."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QByteArray, QIODevice, QObject

from sip.audio.qt_io import STALL_S, STARTUP_READS, RingReader, find_device
from sip.audio.ring import BYTES_PER_MS, ByteRing


@pytest.fixture
def reader(qapp: object) -> tuple[RingReader, ByteRing]:
    ring = ByteRing(120 * BYTES_PER_MS, prebuffer=40 * BYTES_PER_MS)
    owner = QObject()
    r = RingReader(ring, owner)
    r._owner = owner  # type: ignore[attr-defined]  # keep the parent alive
    assert r.open(QIODevice.OpenModeFlag.ReadOnly | QIODevice.OpenModeFlag.Unbuffered)
    return r, ring


def test_silence_until_the_prebuffer_is_filled_then_audio(
        reader: tuple[RingReader, ByteRing]) -> None:
    r, ring = reader
    assert r.isSequential()
    assert r.bytesAvailable() >= 10 * BYTES_PER_MS  # Qt keeps pulling even when empty
    assert r.readData(512) == bytes(10 * BYTES_PER_MS)
    ring.write(b"\x01\x02" * (20 * BYTES_PER_MS))  # 40 ms
    assert r.readData(512) == b"\x01\x02" * 256
    assert ring.underruns == 0


def test_a_stalled_sink_drops_the_backlog_down_to_the_prebuffer(
        reader: tuple[RingReader, ByteRing]) -> None:
    r, ring = reader
    ring.write(bytes(40 * BYTES_PER_MS))
    r.readData(512)
    time.sleep(STALL_S * 1.5)  # the sink stops pulling; audio keeps arriving
    ring.write(b"\x07\x00" * (40 * BYTES_PER_MS))  # +80 ms
    assert len(ring) > 100 * BYTES_PER_MS
    out = r.readData(512)
    assert out == b"\x07\x00" * 256
    assert len(ring) == 40 * BYTES_PER_MS - 512  # backlog trimmed to the prebuffer


def test_counters_restart_once_the_stream_has_started(
        reader: tuple[RingReader, ByteRing]) -> None:
    r, ring = reader
    ring.write(bytes(40 * BYTES_PER_MS))
    for _ in range(STARTUP_READS - 1):  # start-up: the server pulls fast, ring runs dry
        r.readData(1280)
    assert ring.underruns > 0
    r.readData(1280)
    assert ring.underruns == 0
    ring.write(bytes(40 * BYTES_PER_MS))
    r.readData(40 * BYTES_PER_MS)
    r.readData(640)  # empty now: a real underrun, counted
    assert ring.underruns == 1


class FakeDevice:
    def __init__(self, name: str, dev_id: str, null: bool = False) -> None:
        self._name, self._id, self._null = name, dev_id, null

    def description(self) -> str:
        return self._name

    def id(self) -> QByteArray:
        return QByteArray(self._id.encode())

    def isNull(self) -> bool:
        return self._null


HEADSET = FakeDevice("USB Headset", "alsa_output.usb")
SPEAKERS = FakeDevice("Speakers", "alsa_output.pci")
NULL = FakeDevice("", "", null=True)


def test_chosen_device_when_present() -> None:
    devs = [SPEAKERS, HEADSET]
    present = frozenset({"alsa_output.usb", "alsa_output.pci"})
    assert find_device(devs, "USB Headset", present, SPEAKERS) == (HEADSET, True)  # type: ignore[arg-type]
    assert find_device(devs, "", present, SPEAKERS) == (SPEAKERS, True)  # type: ignore[arg-type]


def test_unplugged_device_still_listed_by_qt_falls_back_to_default() -> None:
    devs = [SPEAKERS, HEADSET]  # Qt keeps listing the unplugged headset
    present = frozenset({"alsa_output.pci"})
    assert find_device(devs, "USB Headset", present, SPEAKERS) == (SPEAKERS, False)  # type: ignore[arg-type]


def test_unplugged_default_falls_back_to_any_present_device() -> None:
    devs = [HEADSET, SPEAKERS]
    present = frozenset({"alsa_output.pci"})
    assert find_device(devs, "", present, HEADSET) == (SPEAKERS, True)  # type: ignore[arg-type]


def test_no_device_at_all() -> None:
    assert find_device([], "USB Headset", frozenset(), NULL) == (None, False)  # type: ignore[arg-type]
    assert find_device([], "", frozenset(), NULL) == (None, True)  # type: ignore[arg-type]
