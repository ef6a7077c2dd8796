"""The phone as the rest of the app sees it: an abstract backend with typed signals.

Why an interface: the UI and the call workflow must never import pjsua2 (a misuse of it can
abort the process, and it allows only one Endpoint per process), so they talk to
`PhoneBackend`. `sip.engine.SipEngine` is the real implementation; `FakePhoneBackend`
drives unit tests of the layers above without any SIP stack.

Call ids are the backend's own small integers, unique for the backend's lifetime (pjsua's
ids are reused), so a late signal for an old call can never be taken for a new one.
Signals are emitted on the thread that owns the backend (the GUI thread), never from
inside a pjsua2 callback: the real engine queues them and emits after the callback returns.

Signals:
    registration_changed(state, sip_code, text): `RegState` value, last SIP code, a sentence.
    call_state_changed(call_id, state, sip_code, reason): `CallState` value, SIP code, reason.
    incoming_call(call_id, remote_number, display_name): a call is ringing for us.
    media_stats(call_id, MediaStats): live quality of a connected call, about once a second.
    hold_changed(call_id, held) / mute_changed(call_id, muted): confirmed hold/mute state.
    recording_started(call_id, path) / recording_finished(call_id, RecordingInfo).
    recording_paused(call_id, paused): the recording stopped/restarted keeping audio.
    error(message): a plain sentence for the agent (details are in the log).
"""

from __future__ import annotations

import ctypes
import itertools
import sys
from dataclasses import dataclass, field
from enum import StrEnum

from PySide6.QtCore import QObject, Signal

_PINNED = 1 << 60


def _emit_leaks_a_true_reference() -> bool:
    """Each Python-side `emit()` drops one reference to the `True` it returns."""

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    return sys.getrefcount(True) < before


def _void_call_leaks_none() -> bool:
    """Each call of a C++ method returning void drops one reference to `None`."""
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(8):
        probe.setObjectName("probe")
    return sys.getrefcount(None) < before


def install_emit_refcount_fix() -> bool:
    """Survive the PySide6 6.12.0 reference-count bugs on Python 3.11; idempotent.

    Measured here (shiboken6 6.12.0): every call of a void C++ method (`setText`,
    `setInterval`, `processEvents`, ...) drops one reference to `None`, and every
    Python-side `emit()` one to `True`. On Python 3.11 these objects are not immortal, so
    after a few thousand calls the interpreter aborts ("none_dealloc: deallocating None",
    rc 134). PySide6 6.11.0 was measured clean, and Python 3.12 makes the objects
    immortal. This does what 3.12 does: it pins the counts of None/True/False far above
    anything a process can drop. Returns True when the bug was found and the pin applied.
    The composition root and the test conftest should call it first thing; importing this
    module calls it too.
    """
    if sys.version_info >= (3, 12):
        return False
    if not (_void_call_leaks_none() or _emit_leaks_a_true_reference()):
        return False
    for obj in (None, True, False):
        cell = ctypes.c_ssize_t.from_address(id(obj))
        if cell.value < _PINNED:
            cell.value += _PINNED
    return True


install_emit_refcount_fix()


class RegState(StrEnum):
    DIRECT = "direct"  # no registrar configured: calls go straight to the dialled URI
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"
    UNREGISTERED = "unregistered"


class CallState(StrEnum):
    CALLING = "calling"  # INVITE sent, nothing back yet
    INCOMING = "incoming"  # ringing here
    RINGING = "ringing"  # the far end is ringing (18x)
    CONNECTING = "connecting"  # answered, waiting for ACK
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class PhoneError(RuntimeError):
    """A phone request that cannot be carried out; `str()` is a sentence for the agent."""


@dataclass(frozen=True)
class MediaStats:
    """Live call quality, from pjsua2's stream info/stats."""

    codec: str
    clock_rate: int
    rx_jitter_ms: float
    rx_loss_percent: float
    rx_packets: int
    tx_packets: int
    rtt_ms: float = 0.0


@dataclass(frozen=True)
class RecordingInfo:
    """A finished recording as written by the recorder."""

    path: str
    duration_s: float
    size_bytes: int
    sha256: str
    paused_spans: list[tuple[float, float]] = field(default_factory=list)


class PhoneBackend(QObject):
    """Abstract phone. Subclasses implement every method; all run on the owner thread."""

    registration_changed = Signal(str, int, str)
    call_state_changed = Signal(int, str, int, str)
    incoming_call = Signal(int, str, str)
    media_stats = Signal(int, object)
    hold_changed = Signal(int, bool)
    mute_changed = Signal(int, bool)
    recording_started = Signal(int, str)
    recording_finished = Signal(int, object)
    recording_paused = Signal(int, bool)
    error = Signal(str)

    @property
    def registrar(self) -> str:
        """Registrar host ("" = direct calls, e.g. the simulated line)."""
        raise NotImplementedError

    def registration_state(self) -> tuple[RegState, int, str]:
        raise NotImplementedError

    def dial(self, uri: str) -> int:
        """Start an outgoing call to a SIP URI; returns the call id. Raises PhoneError."""
        raise NotImplementedError

    def answer(self, call_id: int) -> None:
        raise NotImplementedError

    def reject(self, call_id: int, code: int = 486) -> None:
        """Decline a ringing incoming call (486 Busy Here by default, 603 Decline)."""
        raise NotImplementedError

    def hangup(self, call_id: int) -> None:
        """End a call in any state (CANCEL while ringing, BYE when connected)."""
        raise NotImplementedError

    def hold(self, call_id: int) -> None:
        raise NotImplementedError

    def resume(self, call_id: int) -> None:
        raise NotImplementedError

    def set_mute(self, call_id: int, muted: bool) -> None:
        raise NotImplementedError

    def send_dtmf(self, call_id: int, digits: str) -> None:
        """Send digits as RFC 4733 telephone-events."""
        raise NotImplementedError

    def transfer(self, call_id: int, uri: str) -> None:
        """Blind transfer (REFER) of a connected call to `uri`."""
        raise NotImplementedError

    def pause_recording(self, call_id: int, paused: bool) -> None:
        """Stop keeping audio (card numbers) or keep it again; the paused span is
        silence in the file and marked, so the timeline stays true."""
        raise NotImplementedError


DTMF_DIGITS = frozenset("0123456789*#ABCD")


def check_dtmf(digits: str) -> str:
    """Return the digits upper-cased, or raise PhoneError naming the bad character."""
    up = digits.upper()
    if not up:
        raise PhoneError("No keypad digit given.")
    bad = [c for c in up if c not in DTMF_DIGITS]
    if bad:
        raise PhoneError(f"'{bad[0]}' is not a keypad key (use 0–9, * or #).")
    return up


class FakePhoneBackend(PhoneBackend):
    """A scripted phone for unit tests: records requests, emits what the test tells it.

    Requests append `(method, call_id, argument)` to `requests`; `simulate_*` helpers emit
    the signals a real engine would, synchronously.
    """

    def __init__(self, registrar: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._registrar = registrar
        self._ids = itertools.count(1)
        self.requests: list[tuple[str, int, object]] = []
        self.calls: dict[int, str] = {}  # call id -> remote URI
        self.states: dict[int, CallState] = {}
        self.fail_next_dial: str = ""
        self.recording = True  # pause_recording() refuses when False
        self._reg: tuple[RegState, int, str] = (
            (RegState.REGISTERED, 200, "Registered") if registrar
            else (RegState.DIRECT, 0, "Direct calls (no registrar)")
        )

    @property
    def registrar(self) -> str:
        return self._registrar

    def registration_state(self) -> tuple[RegState, int, str]:
        return self._reg

    def _known(self, call_id: int) -> None:
        if self.states.get(call_id, CallState.DISCONNECTED) == CallState.DISCONNECTED:
            raise PhoneError("That call has already ended.")

    def dial(self, uri: str) -> int:
        if self.fail_next_dial:
            msg, self.fail_next_dial = self.fail_next_dial, ""
            raise PhoneError(msg)
        call_id = next(self._ids)
        self.calls[call_id] = uri
        self.states[call_id] = CallState.CALLING
        self.requests.append(("dial", call_id, uri))
        return call_id

    def answer(self, call_id: int) -> None:
        self._known(call_id)
        self.requests.append(("answer", call_id, None))

    def reject(self, call_id: int, code: int = 486) -> None:
        self._known(call_id)
        self.requests.append(("reject", call_id, code))

    def hangup(self, call_id: int) -> None:
        self._known(call_id)
        self.requests.append(("hangup", call_id, None))

    def hold(self, call_id: int) -> None:
        self._known(call_id)
        self.requests.append(("hold", call_id, None))
        self.hold_changed.emit(call_id, True)

    def resume(self, call_id: int) -> None:
        self._known(call_id)
        self.requests.append(("resume", call_id, None))
        self.hold_changed.emit(call_id, False)

    def set_mute(self, call_id: int, muted: bool) -> None:
        self._known(call_id)
        self.requests.append(("mute", call_id, muted))
        self.mute_changed.emit(call_id, muted)

    def send_dtmf(self, call_id: int, digits: str) -> None:
        self._known(call_id)
        self.requests.append(("dtmf", call_id, check_dtmf(digits)))

    def transfer(self, call_id: int, uri: str) -> None:
        self._known(call_id)
        self.requests.append(("transfer", call_id, uri))

    def pause_recording(self, call_id: int, paused: bool) -> None:
        self._known(call_id)
        if not self.recording:
            raise PhoneError("This call is not being recorded.")
        self.requests.append(("pause_recording", call_id, paused))
        self.recording_paused.emit(call_id, paused)

    # -- scripting helpers for tests ------------------------------------------------------
    def simulate_state(self, call_id: int, state: CallState, code: int = 0,
                       reason: str = "") -> None:
        self.states[call_id] = state
        self.call_state_changed.emit(call_id, str(state), code, reason)

    def simulate_incoming(self, number: str, display_name: str = "") -> int:
        call_id = next(self._ids)
        self.calls[call_id] = f"sip:{number}@fake"
        self.states[call_id] = CallState.INCOMING
        self.incoming_call.emit(call_id, number, display_name)
        return call_id

    def simulate_registration(self, state: RegState, code: int, text: str) -> None:
        self._reg = (state, code, text)
        self.registration_changed.emit(str(state), code, text)
