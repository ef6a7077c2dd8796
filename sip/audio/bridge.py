"""AudioBridge: the agent's headset ↔ pjsua2, since the wheel has no sound devices.

The pjsua2 wheel runs on its null device (`setNullDev()`); this bridge creates two
`pj.AudioMediaPort`s per call — mic → call (`onFrameRequested` pulls 20 ms from the mic
ring) and call → headset (`onFrameReceived` pushes into the speaker ring) — and moves
audio between those rings and QtMultimedia on a dedicated TimeCritical QThread
(`sip.audio.qt_io.AudioIO`). Why QtMultimedia rather than sounddevice: docs/decisions.md.

Threads, and who may call what:
    GUI/composition root (main thread): `AudioBridge(...)`, `start()`, `shutdown()`,
        device listing and selection.
    pjsua2 thread (the engine's): `attach(call_media)` when the call's media becomes
        active, `detach()` before the call is torn down (and before the recorder's
        sources go away). `capture_media` is the agent's side for the recorder.
    pjmedia clock thread: only the port callbacks (one ring copy each).

Signals:
    device_lost(str): the chosen device vanished mid-call; audio moved to the default.
    device_changed(str): audio now goes through this device (chosen, or back again).
    no_device(str): no microphone/headset exists at all; the call goes on silently.
    counters(int, int): underruns and overruns so far in this call, once a second.
"""

from __future__ import annotations

import atexit
import functools
import logging
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pjsua2 as pj
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from sip.audio.devices import device_id, present_device_ids, qt_inputs, qt_outputs
from sip.audio.gc_guard import CallGcGuard
from sip.audio.native import load as load_native
from sip.audio.native.binding import (
    HEADSET,
    MIC,
    NativeLib,
    NativeMediaError,
    NativePort,
    NativeRing,
)
from sip.audio.native_io import NativeAudioIO
from sip.audio.ports import SinkPort, SourcePort
from sip.audio.priority import AudioThreadPriority
from sip.audio.qt_io import AudioIO
from sip.audio.ring import BYTES_PER_MS, ByteRing

log = logging.getLogger(__name__)

#: Kernel names of the threads that carry call audio: pjmedia's conference clock (calls
#: the ports) and RTP thread, Qt's PulseAudio engine, and the bridge's QThread.
#: The native path's PulseAudio threads are `audio-capture` and `audio-playback`.
AUDIO_THREADS = ("clock", "media", "QPulseAudioEngi", "audio-bridge", "audio-capture",
                 "audio-playback")

INPUT_KEY = "audio.input_device"
OUTPUT_KEY = "audio.output_device"


class SettingsLike(Protocol):
    """The part of `agent_desktop.settings.Settings` the bridge uses."""

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class BridgeConfig:
    """Ring sizes in ms. PulseAudio delivers the microphone in 64 ms bursts, so the mic
    ring needs room for a burst on top of its prebuffer. The headset side is pulled in
    steady 16 ms periods, but its producer is pjmedia's clock thread, which needs the GIL:
    with the machine loaded (load average ~9 on 2 cores) a 20 ms headset prebuffer gave
    17–19 underruns per 30–60 s call, 40 ms gave 0–1. Beyond the cap the oldest audio is
    dropped down to `*_keep_ms`, so latency can never creep (measured: a sink that
    starts late otherwise leaves the ring full, +120 ms, for the whole call)."""

    mic_ring_ms: int = 240
    mic_prebuffer_ms: int = 40
    mic_keep_ms: int = 80
    #: A ring that stays above this level for a second holds latency, not a burst: it is
    #: trimmed to `*_keep_ms` (ByteRing `high`). The capacity above it absorbs a producer
    #: catching up after a stall (session 3: 160/120 ms capacities turned such bursts
    #: into an overrun followed by an underrun).
    mic_high_ms: int = 120
    speaker_ring_ms: int = 240
    speaker_prebuffer_ms: int = 40
    speaker_keep_ms: int = 60
    speaker_high_ms: int = 100
    #: Adaptive prebuffers: each underrun adds half the initial prebuffer, up to this, for
    #: the rest of the call (ByteRing `grow_to`): +20 ms per step costs 20 ms of latency
    #: in that direction, only in calls that proved the machine jittery.
    mic_grow_to_ms: int = 80
    speaker_grow_to_ms: int = 80
    #: Clock-drift compensation (ByteRing `drift_window`): pjmedia's clock and the
    #: sound device's differ by ~350–400 ppm in the rig (20 ms a minute: one headset
    #: underrun per minute). Measured over 0.5 s windows, kept within ±6 ms.
    drift_compensation: bool = True
    drift_window_ms: int = 500
    drift_band_ms: int = 6
    #: Real-time scheduling for the audio threads where allowed (sip.audio.priority).
    realtime: bool = True
    #: Keep the pre-call heap out of garbage collection while audio flows
    #: (sip.audio.gc_guard: a full collection held the GIL for 97–228 ms).
    freeze_heap: bool = True
    #: The media path without the GIL (sip.audio.native: C rings, pjmedia ports and
    #: PulseAudio threads) when it builds and matches the wheel; else the Python ports.
    native: bool = True
    #: The native microphone arrives in steady 20 ms fragments (Qt's came in 64 ms
    #: bursts that kept the ring fuller on average): with the 40 ms prebuffer the clock's
    #: 20 ms reads had a 20 ms margin, and a fragment later than that was an underrun.
    native_mic_prebuffer_ms: int = 60
    #: Start-up of the streams (ByteRing `startup`): under/overruns before both sides
    #: of a ring have moved this much audio after the call's media started are counted
    #: apart (`startup_underruns`/`startup_overruns`): a PulseAudio stream opened when
    #: dialling runs irregularly at first, and a peer that answers at once leaves it no
    #: time to settle (measured: the capture paused 81 ms 0.42 s into the call, the
    #: playback stalled twice in its first second, leaving the ring 180 ms full; the
    #: Qt sink's start-up, `STARTUP_READS`, is 1.6 s).
    mic_startup_ms: int = 500
    speaker_startup_ms: int = 1000
    #: Native rings keep pauses of either side longer than this in `gaps`: both of
    #: their sides come every 10–20 ms, so a 50–80 ms pause — which the 80 ms default
    #: never showed — is the diagnosis of an underrun "without a gap" (decisions.md).
    native_gap_ms: int = 50

    def make_rings(self, clock: Callable[[], float] | None = None
                   ) -> tuple[ByteRing, ByteRing]:
        """The (mic, headset) rings these settings describe (`clock`: tests simulate)."""
        return self._rings(ByteRing, clock=clock)

    def make_native_rings(self, lib: NativeLib) -> tuple[NativeRing, NativeRing]:
        """The same rings in C (sip.audio.native), for the native media path."""
        return self._rings(functools.partial(NativeRing, lib),
                           max(self.mic_prebuffer_ms, self.native_mic_prebuffer_ms),
                           gap_s=self.native_gap_ms / 1000 if self.native_gap_ms else None)

    def _rings(self, make: Callable[..., Any], mic_prebuffer_ms: int | None = None,
               **extra: Any) -> tuple[Any, Any]:
        ms = BYTES_PER_MS
        mic_pre = self.mic_prebuffer_ms if mic_prebuffer_ms is None else mic_prebuffer_ms
        drift: dict[str, Any] = {
            "drift_window": self.drift_window_ms * ms if self.drift_compensation else 0,
            "drift_band": self.drift_band_ms * ms, **extra}
        mic = make(self.mic_ring_ms * ms, mic_pre * ms, self.mic_keep_ms * ms,
                   high=self.mic_high_ms * ms, grow_to=self.mic_grow_to_ms * ms,
                   startup=self.mic_startup_ms * ms, **drift)
        speaker = make(self.speaker_ring_ms * ms, self.speaker_prebuffer_ms * ms,
                       self.speaker_keep_ms * ms, high=self.speaker_high_ms * ms,
                       grow_to=self.speaker_grow_to_ms * ms,
                       startup=self.speaker_startup_ms * ms, **drift)
        return mic, speaker


@dataclass(frozen=True)
class BridgeStats:
    """Per-call counters: an underrun is a gap filled with silence, an overrun is old
    audio dropped to keep latency bounded."""

    mic_underruns: int = 0
    mic_overruns: int = 0
    speaker_underruns: int = 0
    speaker_overruns: int = 0
    port_errors: int = 0
    #: 1 ms repeats/cuts made by the rings' clock-drift compensation (not glitches).
    drift_adjustments: int = 0
    #: True when the call ran on the native media path (no GIL).
    native: bool = False
    #: Under/overruns while a stream was starting (BridgeConfig.*_startup_ms): not in
    #: `underruns`/`overruns`, reported so they are not lost either.
    startup_underruns: int = 0
    startup_overruns: int = 0

    @property
    def underruns(self) -> int:
        return self.mic_underruns + self.speaker_underruns

    @property
    def overruns(self) -> int:
        return self.mic_overruns + self.speaker_overruns


def _shutdown_at_exit(ref: weakref.ref[AudioBridge]) -> None:
    bridge = ref()
    if bridge is None:
        return
    log.warning("audio bridge still running at exit; shutting it down")
    try:
        bridge.shutdown()
    except RuntimeError as exc:  # its Qt objects are already gone
        log.warning("audio bridge shutdown at exit: %s", exc)


class AudioBridge(QObject):
    """Connects the OS microphone/headset to a pjsua2 call (see module docstring)."""

    device_lost = Signal(str)
    device_changed = Signal(str)
    no_device = Signal(str)
    counters = Signal(int, int)

    # Requests to the audio thread (queued: AudioIO lives there).
    _open_requested = Signal(str, str)
    _close_requested = Signal()
    _input_requested = Signal(str)
    _output_requested = Signal(str)
    _setup_requested = Signal()
    _teardown_requested = Signal()

    def __init__(self, settings: SettingsLike, config: BridgeConfig | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        # Qt creates its media back end on first use and that must happen on the main
        # thread: creating it from the audio thread while the GUI lists devices deadlocks
        # (measured with Qt 6.12). So touch it here, in the composition root's thread.
        qt_outputs()
        self._settings = settings
        cfg = config or BridgeConfig()
        self.native: NativeLib | None = load_native() if cfg.native else None
        self._thread = QThread()
        self._thread.setObjectName("audio-bridge")
        self.mic_ring: Any
        self.speaker_ring: Any
        if self.native is not None:
            self.mic_ring, self.speaker_ring = cfg.make_native_rings(self.native)
            self._io: AudioIO = NativeAudioIO(self.native, self.mic_ring, self.speaker_ring)
        else:
            self.mic_ring, self.speaker_ring = cfg.make_rings()
            self._io = AudioIO(self.mic_ring, self.speaker_ring)
        self._io.moveToThread(self._thread)
        self._open_requested.connect(self._io.open_streams)
        self._close_requested.connect(self._io.close_streams)
        self._input_requested.connect(self._io.select_input)
        self._output_requested.connect(self._io.select_output)
        self._setup_requested.connect(self._io.setup)
        # Blocking: the audio thread must have closed its streams and its pactl process
        # before `shutdown()` quits the thread, or they are destroyed from the wrong one.
        self._teardown_requested.connect(self._io.teardown,
                                         Qt.ConnectionType.BlockingQueuedConnection)
        self._io.device_lost.connect(self._on_device_lost)
        self._io.device_changed.connect(self.device_changed)
        self._io.no_device.connect(self.no_device)
        self._io.streams_ready.connect(self._on_streams_ready)
        self._priority = AudioThreadPriority(AUDIO_THREADS) if cfg.realtime else None
        self._gc_guard = CallGcGuard() if cfg.freeze_heap else None
        self._mic_port: SourcePort | NativePort | None = None
        self._spk_port: SinkPort | NativePort | None = None
        self._call_media: pj.AudioMedia | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._emit_counters)
        self._started = False
        self._prepared = False
        self._muted = False
        self._exit_hook: Callable[[], None] = lambda: None

    # -- lifetime (composition root) -------------------------------------------------

    def start(self) -> None:
        """Start the audio thread (TimeCritical) and the device watcher."""
        if self._started:
            return
        # Python threads hand over the GIL every 5 ms by default; audio callbacks waiting
        # that long lose blocks when the GUI is busy (measured: 0 lost blocks at 1 ms).
        if sys.getswitchinterval() > 0.001:
            sys.setswitchinterval(0.001)
        self._thread.start(QThread.Priority.TimeCriticalPriority)
        self._setup_requested.emit()
        self._started = True
        # A process that exits without shutdown() would destroy a running QThread (Qt
        # aborts) and run Python slots on it during interpreter finalization.
        self._exit_hook = functools.partial(_shutdown_at_exit, weakref.ref(self))
        atexit.register(self._exit_hook)

    def shutdown(self) -> None:
        """Close the streams and stop the audio thread (after `detach()`)."""
        if not self._started:
            return
        self._teardown_requested.emit()
        self._thread.quit()
        self._thread.wait()
        self._started = False
        atexit.unregister(self._exit_hook)

    # -- devices -----------------------------------------------------------------------

    def input_devices(self) -> list[str]:
        """Names of the microphones plugged in now (Qt alone would still list one that
        was unplugged)."""
        present = present_device_ids()
        return [d.description() for d in qt_inputs() if device_id(d) in present]

    def output_devices(self) -> list[str]:
        """Names of the headsets/speakers plugged in now."""
        present = present_device_ids()
        return [d.description() for d in qt_outputs() if device_id(d) in present]

    def input_device(self) -> str:
        """The chosen microphone's name; "" means the system default."""
        return str(self._settings.get(INPUT_KEY) or "")

    def output_device(self) -> str:
        return str(self._settings.get(OUTPUT_KEY) or "")

    def set_input_device(self, name: str) -> None:
        """Choose (and persist) the microphone by name; "" = system default. Takes effect
        at once in a running call."""
        self._check_name(name, self.input_devices(), "microphone")
        self._settings.set(INPUT_KEY, name)
        self._input_requested.emit(name)

    def set_output_device(self, name: str) -> None:
        self._check_name(name, self.output_devices(), "headset or speaker")
        self._settings.set(OUTPUT_KEY, name)
        self._output_requested.emit(name)

    @staticmethod
    def _check_name(name: str, known: list[str], what: str) -> None:
        if name and name not in known:
            raise ValueError(f"There is no {what} called {name!r}; "
                             f"available: {', '.join(known) or 'none'}.")

    # -- per call (pjsua2 thread) ----------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self._mic_port is not None

    @property
    def capture_media(self) -> pj.AudioMedia | NativePort | None:
        """The agent's microphone as conference-bridge media (the recorder's left side;
        on the native path a port with `getPortId()`)."""
        return self._mic_port

    def prepare(self) -> None:
        """Open the microphone and headset streams now (any thread).

        Opening a PulseAudio stream takes a few hundred ms; call this when a call starts
        ringing or dialling so the agent hears the first words when it is answered.
        `attach()` calls it when it was not called earlier."""
        if not self._started:
            log.warning("audio bridge used before start(); starting it now")
            self.start()
        if not self._prepared:
            self._prepared = True
            self._open_requested.emit(self.input_device(), self.output_device())

    def attach(self, call_media: pj.AudioMedia) -> None:
        """Connect the headset to `call_media` (call on the pjsua2 thread at media-active).

        Calling it again for the same call (codec re-INVITE fires media-active twice)
        re-points the ports to the new media."""
        if self._mic_port is not None:
            self._disconnect()
        else:
            self.mic_ring.clear()
            self.speaker_ring.clear()
            self.mic_ring.reset_counters()
            self.speaker_ring.reset_counters()
            self._mic_port, self._spk_port = self._make_ports()
            self.prepare()
            if self._gc_guard is not None:
                self._gc_guard.enter()
            QTimer.singleShot(0, self, self._timer.start)
        assert self._mic_port is not None and self._spk_port is not None
        if isinstance(self._mic_port, NativePort) and isinstance(self._spk_port, NativePort):
            assert self.native is not None
            slot = call_media.getPortId()
            self.native.connect(self._mic_port.slot, slot)
            self.native.connect(slot, self._spk_port.slot)
        else:
            assert isinstance(self._mic_port, SourcePort)
            assert isinstance(self._spk_port, SinkPort)
            self._mic_port.startTransmit(call_media)
            call_media.startTransmit(self._spk_port)
        self._call_media = call_media
        if self._priority is not None:
            self._priority.apply()
        log.info("audio bridge attached")

    def _make_ports(self) -> tuple[SourcePort | NativePort, SinkPort | NativePort]:
        """The mic and headset ports: native when the library is loaded (one fallback
        to the Python ports, logged, if it cannot create them)."""
        if self.native is not None:
            try:
                mic = NativePort(self.native, MIC, "bridge-mic", ring=self.mic_ring)
                try:
                    spk = NativePort(self.native, HEADSET, "bridge-speaker",
                                     ring=self.speaker_ring)
                except NativeMediaError:
                    mic.close()
                    raise
                mic.set_muted(self._muted)
                return mic, spk
            except NativeMediaError as exc:
                # The C rings and streams still work: Python ports read and write them.
                log.warning("native audio ports unavailable, using Python ports for this "
                            "call: %s", exc)
        pmic = SourcePort("bridge-mic", self.mic_ring)
        pspk = SinkPort("bridge-speaker", self.speaker_ring)
        pmic.muted = self._muted
        pmic.create()
        pspk.create()
        return pmic, pspk

    def detach(self) -> BridgeStats:
        """Disconnect and destroy the ports (pjsua2 thread, before the call goes away);
        returns and logs this call's counters. Also closes streams opened by `prepare()`
        for a call that never got media (busy, no answer)."""
        if self._prepared:
            self._prepared = False
            self._close_requested.emit()
        if self._mic_port is None or self._spk_port is None:
            return BridgeStats()
        self._disconnect()
        QTimer.singleShot(0, self, self._timer.stop)
        stats = self.stats()
        # Destroyed here, on the pjsua2 thread, while still referenced: see
        # sip.audio.ports._GuardedPort.close() for the crash this prevents.
        self._mic_port.close()
        self._spk_port.close()
        self._mic_port = None
        self._spk_port = None
        if self._gc_guard is not None:
            self._gc_guard.exit()
        log.info("audio bridge call stats (%s path): mic underruns %d overruns %d, headset "
                 "underruns %d overruns %d, drift adjustments %d, callback errors %d; while "
                 "the streams started: underruns %d overruns %d",
                 "native" if stats.native else "Python", stats.mic_underruns,
                 stats.mic_overruns, stats.speaker_underruns, stats.speaker_overruns,
                 stats.drift_adjustments, stats.port_errors, stats.startup_underruns,
                 stats.startup_overruns)
        return stats

    @property
    def muted(self) -> bool:
        return self._muted

    def set_muted(self, muted: bool) -> None:
        """Mute the agent's microphone at the source (any thread): silence goes to the
        customer *and* to the recording's left channel, unlike lowering the call's
        transmit level, which would still record what a muted agent says."""
        self._muted = muted
        if isinstance(self._mic_port, NativePort):
            self._mic_port.set_muted(muted)
        elif self._mic_port is not None:
            self._mic_port.muted = muted

    def stats(self) -> BridgeStats:
        errors = sum(p.errors for p in (self._mic_port, self._spk_port) if p is not None)
        # With no device on a side, its ring is never served: its counts mean nothing.
        mic = (self.mic_ring.underruns, self.mic_ring.overruns) if self._io.has_input \
            else (0, 0)
        spk = (self.speaker_ring.underruns, self.speaker_ring.overruns) \
            if self._io.has_output else (0, 0)
        drift = self.mic_ring.drift_adjustments + self.speaker_ring.drift_adjustments
        rings = [r for r, has in ((self.mic_ring, self._io.has_input),
                                  (self.speaker_ring, self._io.has_output)) if has]
        return BridgeStats(mic[0], mic[1], spk[0], spk[1], errors, drift,
                           self.native is not None,
                           sum(r.startup_underruns for r in rings),
                           sum(r.startup_overruns for r in rings))

    def _disconnect(self) -> None:
        media = self._call_media
        if media is None:
            return
        try:
            mic, spk = self._mic_port, self._spk_port
            if isinstance(mic, NativePort) and isinstance(spk, NativePort):
                assert self.native is not None
                slot = media.getPortId()
                self.native.connect(mic.slot, slot, connect=False)
                self.native.connect(slot, spk.slot, connect=False)
            else:
                assert isinstance(mic, SourcePort) and isinstance(spk, SinkPort)
                mic.stopTransmit(media)
                media.stopTransmit(spk)
        except NativeMediaError as exc:
            log.warning("audio bridge: disconnect failed: %s", exc)
        except pj.Error as exc:
            log.warning("audio bridge: stopTransmit failed: %s", exc.info())
        self._call_media = None

    @Slot()
    def _on_streams_ready(self) -> None:
        """Streams opened after media became active: what piled up meanwhile is stale,
        and drops while nobody consumed are not the call's overruns."""
        if self._priority is not None:
            self._priority.apply()  # Qt's PulseAudio thread exists from the first stream
        if self.attached:
            self.mic_ring.clear()
            self.speaker_ring.clear()
            self.mic_ring.reset_counters()
            self.speaker_ring.reset_counters()

    @Slot()
    def _emit_counters(self) -> None:
        s = self.stats()
        self.counters.emit(s.underruns, s.overruns)

    @Slot(str)
    def _on_device_lost(self, name: str) -> None:
        log.warning("audio device lost: %s; using the default device", name)
        self.device_lost.emit(name)
