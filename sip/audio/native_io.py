"""The OS side of the native media path: PulseAudio streams run by C threads.

`NativeAudioIO` keeps everything `AudioIO` decides — which device (by name, the saved
choice or the default), hot-plug through the device watcher, falling back and coming
back, no device at all — and replaces only how a stream is opened: instead of a
QAudioSource/QAudioSink whose callbacks need the GIL, a `NativeStream` (libpulse-simple,
one blocking pthread per direction, `sip/audio/native/nm_pulse.c`) on the device's
PulseAudio name, which is what Qt's `QAudioDevice.id()` holds. A device switch reopens
that thread's stream on the new name.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from PySide6.QtMultimedia import QMediaDevices

from sip.audio.devices import device_id, qt_inputs, qt_outputs
from sip.audio.native.binding import NativeLib, NativeMediaError, NativeRing, NativeStream
from sip.audio.qt_io import AudioIO, find_device

log = logging.getLogger(__name__)

#: PulseAudio blocks: the microphone in 20 ms (one conference frame), the headset in
#: 10 ms so the 40 ms server buffer is topped up in small steps.
MIC_BLOCK_MS = 20
HEADSET_BLOCK_MS = 10


class NativeAudioIO(AudioIO):
    """AudioIO with native PulseAudio streams (audio thread only, like AudioIO)."""

    def __init__(self, lib: NativeLib, mic_ring: NativeRing, speaker_ring: NativeRing) -> None:
        super().__init__(cast(Any, mic_ring), cast(Any, speaker_ring))
        self._lib = lib
        self._nmic = mic_ring
        self._nspk = speaker_ring
        self._in_stream: NativeStream | None = None
        self._out_stream: NativeStream | None = None

    def _stream_open(self, is_input: bool) -> bool:
        return (self._in_stream if is_input else self._out_stream) is not None

    def stream_counters(self) -> dict[str, dict[str, int]]:
        """Blocks moved, I/O errors, PulseAudio latency, real-time granted, per side."""
        return {side: s.counters() for side, s in (("mic", self._in_stream),
                                                    ("headset", self._out_stream)) if s}

    def _open_side(self, is_input: bool) -> None:
        devices = qt_inputs() if is_input else qt_outputs()
        default = (QMediaDevices.defaultAudioInput() if is_input
                   else QMediaDevices.defaultAudioOutput())
        want = self._want_in if is_input else self._want_out
        dev, found = find_device(devices, want, self._present(), default)
        what = "microphone" if is_input else "headset"
        if is_input:
            self._on_fallback_in, self.has_input = not found, dev is not None
        else:
            self._on_fallback_out, self.has_output = not found, dev is not None
        if dev is None:
            return
        try:
            stream = NativeStream(self._lib, not is_input,
                                  self._nmic if is_input else self._nspk,
                                  MIC_BLOCK_MS if is_input else HEADSET_BLOCK_MS)
        except NativeMediaError as exc:
            log.warning("%s stream could not start: %s", what, exc)
            self._set_side(is_input, None, False)
            return
        try:
            stream.open(device_id(dev))
        except NativeMediaError as exc:
            log.warning("%s %s could not be opened: %s", what, dev.description(), exc)
            stream.close()
            self._set_side(is_input, None, False)
            return
        self._set_side(is_input, stream, True)
        if is_input:
            self._in_id, self._in_name = device_id(dev), dev.description()
        else:
            self._out_id, self._out_name = device_id(dev), dev.description()
        log.info("%s opened (native): %s", what, dev.description())

    def _set_side(self, is_input: bool, stream: NativeStream | None, ok: bool) -> None:
        if is_input:
            self._in_stream, self.has_input = stream, ok
        else:
            self._out_stream, self.has_output = stream, ok

    def _open_input(self) -> None:
        self._open_side(True)

    def _open_output(self) -> None:
        self._open_side(False)

    def _close_input(self) -> None:
        stream, self._in_stream = self._in_stream, None
        if stream is not None:
            stream.close()

    def _close_output(self) -> None:
        stream, self._out_stream = self._out_stream, None
        if stream is not None:
            stream.close()
