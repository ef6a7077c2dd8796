"""The OS side of the audio bridge: QtMultimedia streams on a dedicated audio thread.

`AudioIO` is moved to its own QThread (TimeCritical) by `AudioBridge`; every method here
runs on that thread. The microphone is a push-mode `QAudioSource` whose chunks go into
the mic ring; the headset is a pull-mode `QAudioSink` reading the speaker ring through
`RingReader`. Streams are open only while a call has media (no microphone indicator and
no CPU between calls).

Qt 6.12 facts this code depends on (measured, ARCHITECTURE §3): a source buffer smaller
than PulseAudio's 2048-byte chunk silently loses half the audio; a pull-mode sink device
must be opened Unbuffered and report `bytesAvailable()` or Qt reads 0.5 s at once or
never pulls; a lambda connected to `QAudioSink.stateChanged` raises TypeError, so only
bound methods are connected.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QCoreApplication, QEvent, QIODevice, QObject, Signal, Slot
from PySide6.QtMultimedia import QAudio, QAudioDevice, QAudioFormat, QAudioSink, QAudioSource

from sip.audio.devices import DeviceWatcher, device_id, qt_inputs, qt_outputs
from sip.audio.ring import BYTES_PER_MS, ByteRing

log = logging.getLogger(__name__)

SOURCE_BUFFER_BYTES = 4096   # ≥ PulseAudio's 2048-byte chunk (see module doc)
SINK_BUFFER_BYTES = 40 * BYTES_PER_MS
STALL_S = 0.1          # a sink that did not pull for this long has stalled
STARTUP_READS = 100    # ~1.6 s of 16 ms periods: the stream is still starting


def pcm_format() -> QAudioFormat:
    fmt = QAudioFormat()
    fmt.setSampleRate(16000)
    fmt.setChannelCount(1)
    fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
    return fmt


class RingReader(QIODevice):
    """Sequential read-only device over the speaker ring for a pull-mode QAudioSink.

    When the ring is empty it hands out a little silence instead of 0 bytes, so the
    sound server never starves the stream into Idle; that gap is an underrun (counted by
    the ring only once the call's audio has started flowing)."""

    def __init__(self, ring: ByteRing, parent: QObject) -> None:
        super().__init__(parent)
        self._ring = ring
        self._last_read = time.monotonic()
        self._reads = 0

    def isSequential(self) -> bool:
        return True

    def bytesAvailable(self) -> int:
        return max(len(self._ring), 10 * BYTES_PER_MS) + super().bytesAvailable()

    def readData(self, maxlen: int) -> bytes:
        ring = self._ring
        now = time.monotonic()
        stalled = now - self._last_read > STALL_S
        self._last_read = now
        self._reads += 1
        if stalled and self._reads > 1:
            # The sink stopped pulling for a while (PulseAudio starting a stream can
            # take 0.5–2 s; a suspended device resuming): whatever piled up is stale and
            # would otherwise stay as latency for the rest of the call. Drops during
            # the stream's start-up are not the call's overruns; later ones are.
            dropped = ring.trim_to(ring.prebuffer, count=self._reads > STARTUP_READS)
            log.debug("headset sink resumed after a stall; %d stale bytes dropped", dropped)
        if self._reads == STARTUP_READS:
            # While a stream starts, the sound server pulls faster than real time to fill
            # its own buffer (silence is handed out) and may stall: neither is a glitch
            # in the call's audio, so the headset counters start from here.
            ring.reset_counters()
        avail = len(ring) & ~1
        if avail > 0 and (ring.primed or avail >= ring.prebuffer):
            return ring.read(min(maxlen, avail) & ~1, maxlen & ~1)
        return ring.read(min(maxlen, 10 * BYTES_PER_MS) & ~1)

    def writeData(self, data: bytes | bytearray | memoryview, maxlen: int, /) -> int:
        return -1


def find_device(devices: list[QAudioDevice], name: str, present: frozenset[str],
                default: QAudioDevice) -> tuple[QAudioDevice | None, bool]:
    """The device called `name` if it exists now, else the default (or any present one).

    Returns (device or None if there is none at all, True if `name` was found)."""
    live = [d for d in devices if device_id(d) in present] if present else devices
    if name:
        for d in live:
            if d.description() == name:
                return d, True
    if not default.isNull() and (not present or device_id(default) in present):
        return default, not name
    return (live[0] if live else None), not name


class AudioIO(QObject):
    """Owns QAudioSource/QAudioSink and the device watcher (audio thread only).

    Signals:
        device_lost(str): the chosen device vanished; now on the default device.
        device_changed(str): now using this device (picked up again, or newly chosen).
        no_device(str): no microphone and/or headset at all; the call goes on silent.
    """

    device_lost = Signal(str)
    device_changed = Signal(str)
    no_device = Signal(str)
    streams_ready = Signal()

    def __init__(self, mic_ring: ByteRing, speaker_ring: ByteRing) -> None:
        super().__init__()
        self._mic_ring = mic_ring
        self._spk_ring = speaker_ring
        self._want_in = ""
        self._want_out = ""
        self._source: QAudioSource | None = None
        self._source_dev: QIODevice | None = None
        self._sink: QAudioSink | None = None
        self._reader: RingReader | None = None
        self._in_id = ""
        self._out_id = ""
        self._in_name = ""
        self._out_name = ""
        self._active = False  # streams wanted (between open_streams and close_streams)
        self._on_fallback_in = False
        self._on_fallback_out = False
        self._watcher: DeviceWatcher | None = None
        self.has_input = False
        self.has_output = False

    @Slot()
    def setup(self) -> None:
        self._watcher = DeviceWatcher(self)
        self._watcher.changed.connect(self._recheck)
        self._watcher.start()

    @Slot()
    def teardown(self) -> None:
        """Close everything this thread owns, then hand this object back to the main
        thread so that Python can destroy it there once the audio thread is gone."""
        self.close_streams()
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher.setParent(None)
            self._watcher.deleteLater()
            self._watcher = None
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())

    @Slot(str, str)
    def open_streams(self, input_name: str, output_name: str) -> None:
        self._want_in, self._want_out = input_name, output_name
        self._active = True
        if self._stream_open(True) or self._stream_open(False):
            self.streams_ready.emit()
            return
        self._open_input()
        self._open_output()
        # A device chosen earlier (saved in settings) that is not plugged in now: the call
        # runs on the default device, and the agent is told which one is missing.
        if self._want_in and self._on_fallback_in and self.has_input:
            self.device_lost.emit(self._want_in)
        if self._want_out and self._on_fallback_out and self.has_output:
            self.device_lost.emit(self._want_out)
        self.streams_ready.emit()
        missing = [what for what, ok in (("microphone", self.has_input),
                                         ("headset or speaker", self.has_output)) if not ok]
        if missing:
            msg = (f"No audio device: no {' and no '.join(missing)} found. The call "
                   "continues without sound on this computer.")
            log.warning(msg)
            self.no_device.emit(msg)

    @Slot()
    def close_streams(self) -> None:
        self._active = False
        self._close_input()
        self._close_output()

    @Slot(str)
    def select_input(self, name: str) -> None:
        self._want_in = name
        if self._stream_open(True):
            self._close_input()
            self._open_input()
            self.device_changed.emit(name or self.tr("default microphone"))

    @Slot(str)
    def select_output(self, name: str) -> None:
        self._want_out = name
        if self._stream_open(False):
            self._close_output()
            self._open_output()
            self.device_changed.emit(name or self.tr("default headset"))

    # -- streams -------------------------------------------------------------------------

    def _stream_open(self, is_input: bool) -> bool:
        """Whether that side has a stream now (overridden by the native streams)."""
        return (self._source if is_input else self._sink) is not None

    def _present(self) -> frozenset[str]:
        return self._watcher.present_ids() if self._watcher else frozenset()

    def _open_input(self) -> None:
        from PySide6.QtMultimedia import QMediaDevices

        dev, found = find_device(qt_inputs(), self._want_in, self._present(),
                                 QMediaDevices.defaultAudioInput())
        self._on_fallback_in = not found
        self.has_input = dev is not None
        if dev is None:
            return
        src = QAudioSource(dev, pcm_format(), self)
        src.setBufferSize(SOURCE_BUFFER_BYTES)
        self._source = src
        self._source_dev = src.start()
        if src.error().name != "NoError" or self._source_dev is None:
            log.warning("microphone %s could not be opened: %s", dev.description(),
                        src.error().name)
            self._close_input()
            self.has_input = False
            return
        self._source_dev.readyRead.connect(self._on_mic_data)
        self._in_id = device_id(dev)
        self._in_name = dev.description()
        log.info("microphone opened: %s", dev.description())

    def _close_input(self) -> None:
        if self._source is not None:
            self._source.stop()
            self._source.deleteLater()
        self._source = None
        self._source_dev = None

    def _open_output(self) -> None:
        from PySide6.QtMultimedia import QMediaDevices

        dev, found = find_device(qt_outputs(), self._want_out, self._present(),
                                 QMediaDevices.defaultAudioOutput())
        self._on_fallback_out = not found
        self.has_output = dev is not None
        if dev is None:
            return
        sink = QAudioSink(dev, pcm_format(), self)
        sink.setBufferSize(SINK_BUFFER_BYTES)
        sink.stateChanged.connect(self._on_sink_state)
        reader = RingReader(self._spk_ring, self)
        reader.open(QIODevice.OpenModeFlag.ReadOnly | QIODevice.OpenModeFlag.Unbuffered)
        sink.start(reader)
        self._sink, self._reader = sink, reader
        if sink.error().name != "NoError":
            log.warning("headset %s could not be opened: %s", dev.description(),
                        sink.error().name)
            self._close_output()
            self.has_output = False
            return
        self._out_id = device_id(dev)
        self._out_name = dev.description()
        log.info("headset opened: %s", dev.description())

    def _close_output(self) -> None:
        if self._sink is not None:
            self._sink.stop()
            self._sink.deleteLater()
        if self._reader is not None:
            self._reader.close()
            self._reader.deleteLater()
        self._sink = None
        self._reader = None

    @Slot()
    def _on_mic_data(self) -> None:
        # read(n), not readAll(): PySide6 releases the GIL around readAll() (allow-thread)
        # and this thread would then queue for it a second time per chunk.
        dev = self._source_dev
        if dev is not None:
            n = dev.bytesAvailable()
            if n > 0:
                self._mic_ring.write(dev.read(n).data())

    @Slot(QAudio.State)
    def _on_sink_state(self, state: QAudio.State) -> None:
        if self._sink is None:
            return
        err = self._sink.error()
        if err.name != "NoError":
            log.warning("headset stream %s: %s", state.name, err.name)
        else:
            log.debug("headset stream %s", state.name)

    # -- hot-plug ----------------------------------------------------------------------

    @Slot()
    def _recheck(self) -> None:
        """A device came or went: leave a vanished one, return to a wanted one, and pick
        up any device at all when the call has been running without one."""
        present = self._present()
        if not self._active or not present:
            return
        self._recheck_side(True, present)
        self._recheck_side(False, present)

    def _recheck_side(self, is_input: bool, present: frozenset[str]) -> None:
        is_open = self._stream_open(is_input)
        cur_id = self._in_id if is_input else self._out_id
        want = self._want_in if is_input else self._want_out
        fallback = self._on_fallback_in if is_input else self._on_fallback_out
        if is_open and cur_id not in present:
            self._reopen(is_input)
            self.device_lost.emit(want or (self.tr("default microphone") if is_input
                                           else self.tr("default headset")))
        elif not is_open:
            # No device at all so far in this call: take whatever has appeared.
            if self._reopen(is_input):
                self.device_changed.emit(self._in_name if is_input else self._out_name)
        elif fallback and want:
            devices = qt_inputs() if is_input else qt_outputs()
            if any(d.description() == want and device_id(d) in present for d in devices):
                self._reopen(is_input)
                log.info("audio device back: %s", want)
                self.device_changed.emit(want)

    def _reopen(self, is_input: bool) -> bool:
        """Close and open one side again; True if it now has a device."""
        if is_input:
            self._close_input()
            self._open_input()
            return self._stream_open(True)
        self._close_output()
        self._open_output()
        return self._stream_open(False)
