"""Which audio devices exist right now, including removals Qt does not report.

Measured with Qt 6.12 on PulseAudio: `QMediaDevices.audioInputsChanged/OutputsChanged`
fire when a device is added but not when it is removed, and `QMediaDevices.audioOutputs()`
keeps listing an unplugged headset; PulseAudio silently moves the stream to the fallback
device while the Qt sink stays Active. So presence is read from the sound server itself
(`pactl list short sinks|sources`, which also works on PipeWire's pulse layer), woken by
`pactl subscribe` events (a poll takes over if that process is missing or ends). Where
`pactl` is absent Qt's own lists are used.
"""

from __future__ import annotations

import logging
import shutil
import subprocess

from PySide6.QtCore import QObject, QProcess, QTimer, Signal
from PySide6.QtMultimedia import QAudioDevice, QMediaDevices

log = logging.getLogger(__name__)

POLL_MS = 2000


def _qt_id(dev: QAudioDevice) -> str:
    return bytes(dev.id().data()).decode("utf-8", "replace")


def qt_inputs() -> list[QAudioDevice]:
    return list(QMediaDevices.audioInputs())


def qt_outputs() -> list[QAudioDevice]:
    return list(QMediaDevices.audioOutputs())


def device_id(dev: QAudioDevice) -> str:
    """Stable id (the sound server's device name, e.g. `alsa_output.usb-...`)."""
    return _qt_id(dev)


def present_device_ids(pactl: str | None = None) -> frozenset[str]:
    """Ids of the sinks and sources that exist now, from the sound server when `pactl`
    is there (Qt keeps listing unplugged devices), else from Qt's lists."""
    pactl = pactl or shutil.which("pactl")
    if pactl:
        ids: set[str] = set()
        for kind in ("sinks", "sources"):
            try:
                out = subprocess.run([pactl, "list", "short", kind], capture_output=True,
                                     text=True, timeout=2, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.debug("pactl list %s failed: %s", kind, exc)
                break
            if out.returncode != 0:
                break
            for line in out.stdout.splitlines():
                parts = line.split("\t")
                if len(parts) > 1:
                    ids.add(parts[1])
        else:
            return frozenset(ids)
    return frozenset(_qt_id(d) for d in qt_inputs() + qt_outputs())


class DeviceWatcher(QObject):
    """Emits `changed()` whenever a sink or source appears or disappears.

    Lives on the audio thread. `present_ids()` answers from the sound server when it can.

    Signals:
        changed(): the set of devices may have changed; re-check the open devices.
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pactl = shutil.which("pactl")
        self._proc: QProcess | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._last: frozenset[str] | None = None
        self._media = QMediaDevices(self)
        self._media.audioInputsChanged.connect(self.changed)
        self._media.audioOutputsChanged.connect(self.changed)

    def start(self) -> None:
        """Listen to `pactl subscribe`; poll only where that is impossible (no pactl, or
        it exited), since each poll spawns two `pactl` processes."""
        if self._pactl:
            proc = QProcess(self)
            proc.setProgram(self._pactl)
            proc.setArguments(["subscribe"])
            proc.readyReadStandardOutput.connect(self._on_events)
            proc.finished.connect(self._on_subscribe_ended)
            proc.start()
            self._proc = proc
        self._last = self.present_ids()
        if self._proc is None or not self._proc.waitForStarted(2000):
            self._timer.start()

    def _on_subscribe_ended(self) -> None:
        log.info("pactl subscribe ended; polling the device list every %d ms", POLL_MS)
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        if self._proc is not None:
            self._proc.finished.disconnect(self._on_subscribe_ended)
            self._proc.kill()
            self._proc.waitForFinished(1000)
            self._proc = None

    def present_ids(self) -> frozenset[str]:
        """Ids of the sinks and sources that exist now."""
        return present_device_ids(self._pactl)

    def _on_events(self) -> None:
        assert self._proc is not None
        text = bytes(self._proc.readAllStandardOutput().data()).decode("utf-8", "replace")
        if any(("'new'" in ln or "'remove'" in ln) and (" sink " in ln or " source " in ln)
               for ln in text.splitlines()):
            self._last = self.present_ids()
            self.changed.emit()

    def _poll(self) -> None:
        now = self.present_ids()
        if now != self._last:
            self._last = now
            self.changed.emit()
