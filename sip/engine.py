"""SipEngine: the real `PhoneBackend`, owning pjsua2 on the thread that created it.

Why it is built this way (ARCHITECTURE.md §2–3):
- `threadCnt=0, mainThreadOnly=True`, polled by `libHandleEvents(0)` from a 10 ms QTimer
  on the GUI thread: every pjsua2 call happens on that one thread (a call from another
  thread aborts the process); RTP runs on pjmedia's own thread, so a slow poll does not
  starve audio.
- Callbacks only record events; Qt signals are emitted after `libHandleEvents()` (or
  `makeCall()`) returns, so a slot may safely call back into the engine, and `dial()`
  returns the call id before any signal about that call is seen.
- No sound device is compiled into the wheel: the null device runs the conference
  clock; the agent's headset comes in through `sip.audio.bridge.AudioBridge` attached
  at media-active; recording through `sip.recorder.StereoRecorder`.
- Shutdown order: hang up, wait for DISCONNECTED → recorders/bridge ports closed → calls
  dropped → account `shutdown()` → `libDestroy()` (anything left after it aborts).
- pjsip never times out a ringing call and only notices a dead peer's silence if asked:
  the engine watches each connected call's received packets and ends a call that has
  been silent for `rtp_timeout_s` ("Connection lost").
Only one Endpoint may exist per process; `start()` refuses a second one.
"""

from __future__ import annotations

import atexit
import functools
import gc
import itertools
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pjsua2 as pj
from PySide6.QtCore import QObject, Qt, QTimer

from agent_desktop.phone import (
    CallState,
    PhoneBackend,
    PhoneError,
    RegState,
    check_dtmf,
)
from sip.account import account_config, create_transport, endpoint_config
from sip.config import SipConfig
from sip.media import CallMedia, apply_codec_priorities
from sip.pjobjects import PjAccount, PjCall, describe_pj_error, parse_remote
from sip.registration import RegistrationPolicy, describe_registration

if TYPE_CHECKING:
    from sip.audio.bridge import AudioBridge

log = logging.getLogger(__name__)

_STATE_MAP = {
    pj.PJSIP_INV_STATE_CALLING: CallState.CALLING,
    pj.PJSIP_INV_STATE_EARLY: CallState.RINGING,
    pj.PJSIP_INV_STATE_CONNECTING: CallState.CONNECTING,
    pj.PJSIP_INV_STATE_CONFIRMED: CallState.CONNECTED,
    pj.PJSIP_INV_STATE_DISCONNECTED: CallState.DISCONNECTED,
}
FAST_POLL_S = 3.0
# pjlib's ioqueue has few slots in this wheel, and a closed socket's slot is reused only
# 500 ms later (PJ_IOQUEUE_KEY_FREE_DELAY); each call takes two (RTP, RTCP). Measured: the
# 8th connect/hang-up cycle within half a second aborted the process in
# pj_ioqueue_register_sock2. So a dial waits (pumping SIP) until fewer than
# MAX_RECENT_CALLS calls are live or ended within KEY_RECYCLE_S.
KEY_RECYCLE_S = 0.6
MAX_RECENT_CALLS = 5
_live_endpoint = False  # one Endpoint per process: pjsua2 itself is a singleton


def _stop_at_exit(ref: weakref.ref[SipEngine]) -> None:
    """atexit: stop a forgotten engine (before PySide's own handler, registered earlier)."""
    if (engine := ref()) is None or not engine.started:
        return
    log.warning("SIP engine still running at exit; stopping it")
    try:
        engine.stop(timeout_s=1.0)
    except RuntimeError as exc:  # Qt objects already gone: pjsua2 alone, in order
        log.warning("SIP engine stop at exit: %s", exc)
        engine._destroy()


class SipEngine(PhoneBackend):
    """See the module docstring. Construct, `start()`, use, `stop()`."""

    def __init__(self, config: SipConfig, *, bridge: AudioBridge | None = None,
                 recorder_factory: Callable[[Path], Any] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self._media = CallMedia(self, bridge, recorder_factory, config.recordings_dir,
                                self._post)
        self._media.consent_wav = config.consent_wav
        self._bridge = bridge
        self._ep: pj.Endpoint | None = None
        self._acc: PjAccount | None = None
        self._transport_id = -1
        self._calls: dict[int, PjCall] = {}
        self._dead: list[PjCall] = []
        self._recent_ends: deque[float] = deque()  # monotonic end times (KEY_RECYCLE_S)
        self._all_calls: weakref.WeakSet[PjCall] = weakref.WeakSet()
        self._ids = itertools.count(1)
        self._events: deque[Callable[[], None]] = deque()
        self._stopping = False
        self._reg = RegistrationPolicy(config.reg_backoff_s)
        self._reg_state: tuple[RegState, int, str] = (RegState.UNREGISTERED, 0,
                                                      "Not started")
        self._poll = QTimer(self)
        self._poll.setTimerType(Qt.TimerType.PreciseTimer)  # 1 ms during call set-up
        self._poll.setInterval(config.poll_interval_ms)
        self._poll.timeout.connect(self._on_poll)
        self._stats = QTimer(self)
        self._stats.setInterval(config.stats_interval_ms)
        self._stats.timeout.connect(self._on_stats)
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self._retry_registration)
        self.local_address = ""  # host:port of the SIP transport once started
        self._fast_until = 0.0
        self._exit_hook: Callable[[], None] = lambda: None

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._ep is not None

    def start(self) -> None:
        """Create the endpoint, transport and account. Raises PhoneError with a sentence."""
        global _live_endpoint
        if self._ep is not None:
            return
        problems = self.config.problems()
        if problems:
            raise PhoneError(" ".join(problems))
        if _live_endpoint:
            raise PhoneError("Another SIP engine is already running in this process.")
        ep = pj.Endpoint()
        try:
            ep.libCreate()
            _live_endpoint = True
            self._ep = ep
            ep.libInit(endpoint_config(self.config))
            self._transport_id, self.local_address = create_transport(ep, self.config)
            ep.libStart()
            ep.audDevManager().setNullDev()
            unknown = apply_codec_priorities(ep, self.config.codecs)
            if unknown:
                msg = (f"Codec {', '.join(unknown)} is not available; it was left out of "
                       "the codec list.")
                self._post(lambda: self.error.emit(msg))
            self._media.capture_fallback = ep.audDevManager().getCaptureDevMedia
            self._create_account()
        except pj.Error as exc:
            msg = f"The phone could not start: {describe_pj_error(exc)}."
            log.error("%s", msg)
            self._destroy()
            raise PhoneError(msg) from exc
        self._stopping = False
        self._poll.start()
        self._stats.start()
        # Exiting without stop() would let pjmedia's clock call Python during finalization.
        self._exit_hook = functools.partial(_stop_at_exit, weakref.ref(self))
        atexit.register(self._exit_hook)
        log.info("SIP engine started on %s (%s), registrar %r", self.local_address,
                 self.config.transport, self.config.registrar)

    def _create_account(self) -> None:
        c = self.config
        acfg = account_config(c, self._transport_id, self.local_address)
        acc = PjAccount(self)
        acc.create(acfg, True)
        self._acc = acc
        if c.registrar:
            self._set_reg(RegState.REGISTERING, 0, f"Registering with {c.registrar}…")
        else:
            self._set_reg(RegState.DIRECT, 0, "Direct calls (no registrar)")

    def reconfigure(self, config: SipConfig) -> None:
        """Apply new settings (registrar, password, transport…): calls in progress are
        hung up, the account re-registers. Raises PhoneError if the new config is unusable
        — the engine is then stopped, and says so in `registration_changed`."""
        problems = config.problems()
        if problems:
            raise PhoneError(" ".join(problems))
        self.stop()
        self.config = config
        self._reg = RegistrationPolicy(config.reg_backoff_s)
        self._poll.setInterval(config.poll_interval_ms)
        self._stats.setInterval(config.stats_interval_ms)
        self._media.recordings_dir = config.recordings_dir
        self._media.consent_wav = config.consent_wav
        try:
            self.start()
        except PhoneError as exc:
            self._set_reg(RegState.FAILED, 0, str(exc))
            self._drain()
            raise

    def stop(self, timeout_s: float = 3.0) -> None:
        """Hang up everything and destroy pjsua2 in the order that never aborts."""
        if self._ep is None:
            return
        self._stopping = True
        self._poll.stop()
        self._stats.stop()
        self._retry.stop()
        ep = self._ep
        for call in list(self._calls.values()):
            if not call.disconnected:
                try:
                    call.hangup(pj.CallOpParam(True))
                except pj.Error as exc:
                    log.info("hangup at shutdown: %s", describe_pj_error(exc))
        deadline = time.monotonic() + timeout_s
        while (any(not c.disconnected for c in self._calls.values())
               and time.monotonic() < deadline):
            ep.libHandleEvents(10)
        for call in list(self._calls.values()):
            self._media.teardown(call)  # even if DISCONNECTED never came
            if not call.disconnected:
                call.disconnected = True
                self._post(self._emitter(call.app_id, CallState.DISCONNECTED, 0,
                                         "The phone was shut down"))
        self._drain()
        self._destroy()
        log.info("SIP engine stopped")

    def _destroy(self) -> None:
        global _live_endpoint
        atexit.unregister(self._exit_hook)
        self._media.capture_fallback = None
        self._calls.clear()
        self._dead.clear()
        gc.collect()
        # A call still referenced elsewhere (e.g. by a saved traceback) would run its C++
        # destructor after libDestroy() and abort the process: leak it instead.
        for survivor in list(self._all_calls):
            survivor.thisown = False
        self._all_calls.clear()
        if self._bridge is not None and self._bridge.attached:
            self._bridge.detach()  # its ports are closed before libDestroy()
        if self._acc is not None:
            try:
                self._acc.shutdown()
            except pj.Error as exc:
                log.warning("account shutdown: %s", describe_pj_error(exc))
            self._acc = None
        gc.collect()
        if self._ep is not None:
            try:
                self._ep.libDestroy()
            except pj.Error as exc:
                log.error("libDestroy: %s", describe_pj_error(exc))
            self._ep = None
            _live_endpoint = False
        gc.collect()

    # -- event plumbing -------------------------------------------------------------------
    def _emitter(self, cid: int, state: CallState, code: int,
                 reason: str) -> Callable[[], None]:
        return lambda: self.call_state_changed.emit(cid, str(state), code, reason)

    def _post(self, fn: Callable[[], None]) -> None:
        self._events.append(fn)

    def _drain(self) -> None:
        while self._events:
            fn = self._events.popleft()
            try:
                fn()
            except Exception:
                log.exception("a phone event handler failed")

    def _on_poll(self) -> None:
        if self._ep is None:
            return
        try:
            self._ep.libHandleEvents(0)
        except pj.Error as exc:
            log.error("libHandleEvents: %s", describe_pj_error(exc))
        self._drain()
        if self._dead:
            self._dead.clear()  # deleted here, outside any callback of theirs
        self._adjust_poll_rate()

    def _adjust_poll_rate(self) -> None:
        """Poll every 1 ms while a call is being set up, else every `poll_interval_ms`.

        An answer from a fast peer is otherwise seen up to one idle interval late; the
        fast phase lasts at most FAST_POLL_S after a dial or an incoming call."""
        fast = time.monotonic() < self._fast_until and any(
            not c.confirmed and not c.disconnected for c in self._calls.values())
        want = 1 if fast else self.config.poll_interval_ms
        if self._poll.interval() != want:
            self._poll.setInterval(want)

    # -- registration ---------------------------------------------------------------------
    @property
    def registrar(self) -> str:
        return self.config.registrar

    def registration_state(self) -> tuple[RegState, int, str]:
        return self._reg_state

    def _set_reg(self, state: RegState, code: int, text: str) -> None:
        self._reg_state = (state, code, text)
        self._post(lambda: self.registration_changed.emit(str(state), code, text))

    def on_reg_state(self, code: int, reason: str, expiration: int) -> None:
        state, text = describe_registration(code, reason, expiration)
        log.info("registration: %d %s (expires %d) -> %s", code, reason, expiration, text)
        self._set_reg(state, code, text)
        if state == RegState.REGISTERED:
            self._reg.succeeded()
        elif state == RegState.FAILED and not self._stopping:
            delay = self._reg.next_delay()
            self._post(lambda: self._retry.start(delay * 1000))

    def _retry_registration(self) -> None:
        if self._acc is None or self._stopping:
            return
        try:
            self._acc.setRegistration(True)
            self._set_reg(RegState.REGISTERING, 0,
                          f"Registering with {self.config.registrar}…")
        except pj.Error as exc:
            log.warning("re-registration: %s", describe_pj_error(exc))
            self._retry.start(self._reg.next_delay() * 1000)

    # -- calls: requests ------------------------------------------------------------------
    def _ready(self) -> None:
        if self._ep is None or self._acc is None or self._stopping:
            raise PhoneError("The phone is not running.")

    def _call(self, call_id: int) -> PjCall:
        self._ready()
        call = self._calls.get(call_id)
        if call is None or call.disconnected:
            raise PhoneError("That call has already ended.")
        return call

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except pj.Error as exc:
            msg = f"Could not {what}: {describe_pj_error(exc)}."
            log.warning("%s", msg)
            raise PhoneError(msg) from exc

    def _route(self, uri: str) -> str:
        """Direct calls over TCP/TLS must say so in the URI (there is no UDP transport)."""
        t = self.config.transport
        if t != "udp" and not self.config.registrar and "transport=" not in uri.lower():
            return f"{uri};transport={t}"
        return uri

    def _wait_for_socket_slots(self) -> None:
        """See KEY_RECYCLE_S: only ever waits when calls are placed faster than a person
        can (a script, a benchmark); the wait is spent handling SIP events."""
        assert self._ep is not None
        while True:
            now = time.monotonic()
            while self._recent_ends and now - self._recent_ends[0] > KEY_RECYCLE_S:
                self._recent_ends.popleft()
            if len(self._calls) + len(self._recent_ends) < MAX_RECENT_CALLS \
                    or not self._recent_ends:
                return
            wait_ms = int((KEY_RECYCLE_S - (now - self._recent_ends[0])) * 1000) + 1
            log.info("dial waits %d ms for pjsip socket slots to be recycled", wait_ms)
            self._ep.libHandleEvents(min(wait_ms, 50))

    def dial(self, uri: str) -> int:
        self._ready()
        assert self._acc is not None
        self._wait_for_socket_slots()
        uri = self._route(uri)
        call = PjCall(self._acc, self)
        call.app_id = next(self._ids)
        self._calls[call.app_id] = call
        self._all_calls.add(call)
        prm = pj.CallOpParam(True)
        prm.opt.audioCount = 1
        prm.opt.videoCount = 0
        mark = len(self._events)
        try:
            call.makeCall(uri, prm)
        except pj.Error as exc:
            self._calls.pop(call.app_id, None)
            while len(self._events) > mark:  # nothing about a call that never was
                self._events.pop()
            reason = describe_pj_error(exc)
            log.warning("makeCall(%s) failed: %s", uri, reason)
            if "URI" in reason:  # PJSIP_EINVALIDURI / EINVALIDREQURI (171042)
                raise PhoneError(f"'{uri}' is not a valid SIP address.") from exc
            raise PhoneError(f"The call could not be started: {reason}.") from exc
        log.info("call %d: INVITE to %s", call.app_id, uri)
        self._media.prepare(call)
        self._fast_until = time.monotonic() + FAST_POLL_S
        self._adjust_poll_rate()
        QTimer.singleShot(0, self, self._drain)
        return call.app_id

    def answer(self, call_id: int) -> None:
        call = self._call(call_id)
        prm = pj.CallOpParam(True)
        prm.statusCode = 200
        self._guard("answer", lambda: call.answer(prm))

    def reject(self, call_id: int, code: int = 486) -> None:
        call = self._call(call_id)
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        self._guard("reject the call", lambda: call.hangup(prm))

    def hangup(self, call_id: int) -> None:
        call = self._call(call_id)
        self._guard("hang up", lambda: call.hangup(pj.CallOpParam(True)))

    def hold(self, call_id: int) -> None:
        self._request_hold(call_id, True)

    def resume(self, call_id: int) -> None:
        self._request_hold(call_id, False)

    def _request_hold(self, call_id: int, on: bool) -> None:
        """Hold/unhold by re-INVITE; `hold_changed` fires when the far end confirmed it.

        Only one re-INVITE may be in flight: a request made meanwhile is remembered and
        sent when the first completes (pjsua2 refuses it with EINVALIDOP otherwise)."""
        call = self._call(call_id)
        if not call.media_active:
            raise PhoneError("The call is not connected yet.")
        call.want_hold = on
        if not call.hold_pending_since:
            self._send_hold(call)

    def _send_hold(self, call: PjCall) -> None:
        if call.want_hold == call.held:
            return
        prm = pj.CallOpParam(True)
        if call.want_hold:
            self._guard("put the call on hold", lambda: call.setHold(prm))
        else:
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            self._guard("resume the call", lambda: call.reinvite(prm))
        call.hold_pending_since = time.monotonic()

    def set_mute(self, call_id: int, muted: bool) -> None:
        call = self._call(call_id)
        media = call.audio_media() if call.media_active else None
        if media is None:
            raise PhoneError("The call has no audio yet.")
        # pjsua2 names levels from the port's side: adjustRxLevel is what the bridge sends
        # into the call, i.e. what the customer hears (adjustTxLevel would mute the
        # customer instead — caught by tests/integration/test_sip_audio.py).
        self._guard("mute" if muted else "unmute",
                    lambda: media.adjustRxLevel(0.0 if muted else 1.0))
        self._media.set_muted(call, muted)
        call.muted = muted
        self._post(lambda: self.mute_changed.emit(call_id, muted))
        QTimer.singleShot(0, self, self._drain)

    def send_dtmf(self, call_id: int, digits: str) -> None:
        call = self._call(call_id)
        keys = check_dtmf(digits)
        self._guard("send keypad digits", lambda: call.dialDtmf(keys))

    def transfer(self, call_id: int, uri: str) -> None:
        call = self._call(call_id)
        uri = self._route(uri)
        self._guard("transfer", lambda: call.xfer(uri, pj.CallOpParam(True)))
        log.info("call %d: REFER to %s", call_id, uri)

    # -- calls: callbacks (inside libHandleEvents / makeCall) -----------------------------
    def on_incoming(self, call: PjCall) -> None:
        call.app_id = next(self._ids)
        self._calls[call.app_id] = call
        self._all_calls.add(call)
        info = call.getInfo()
        name, number = parse_remote(info.remoteUri)
        cid = call.app_id
        if self._stopping:
            prm = pj.CallOpParam(True)
            prm.statusCode = 480
            call.hangup(prm)
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = 180
        call.answer(prm)
        log.info("call %d: incoming from %s (%r)", cid, number, name)
        self._media.prepare(call)
        self._fast_until = time.monotonic() + FAST_POLL_S
        self._post(lambda: self.incoming_call.emit(cid, number, name))

    def on_call_state(self, call: PjCall) -> None:
        info = call.getInfo()
        state = _STATE_MAP.get(info.state)
        if state is None or call.app_id == 0:
            return
        if state == CallState.RINGING and not call.outgoing:
            return  # our own 180 for an incoming call: already announced
        cid = call.app_id
        code, reason = int(info.lastStatusCode), str(info.lastReason)
        if state == CallState.CONNECTED:
            call.confirmed = True
        if state == CallState.DISCONNECTED:
            if call.disconnected:
                return
            call.disconnected = True
            self._media.teardown(call)
            if call.fault_reason:
                code, reason = 408, call.fault_reason
            log.info("call %d: disconnected %d %s", cid, code, reason)
            self._calls.pop(cid, None)
            self._recent_ends.append(time.monotonic())
            self._dead.append(call)
        self._post(lambda: self.call_state_changed.emit(cid, str(state), code, reason))

    def on_call_media(self, call: PjCall) -> None:
        idx, status = call.audio_status()
        if idx < 0:
            return
        held = status == pj.PJSUA_CALL_MEDIA_LOCAL_HOLD or (
            status == pj.PJSUA_CALL_MEDIA_NONE and call.want_hold)
        call.hold_pending_since = 0.0
        if held != call.held:
            call.held = held
            call.last_rx_packets, call.rx_silent_s = -1, 0.0
            cid = call.app_id
            self._post(lambda: self.hold_changed.emit(cid, held))
        if call.want_hold != call.held and not call.disconnected:
            try:
                self._send_hold(call)
            except PhoneError as exc:
                msg = str(exc)
                self._post(lambda: self.error.emit(msg))
        media = call.audio_media()
        if media is None:
            return
        first = not call.media_active
        call.media_active = True
        self._media.on_media(call, media, first)
        if call.muted:
            media.adjustRxLevel(0.0)

    def on_transfer_status(self, call: PjCall, code: int, reason: str, final: bool) -> None:
        log.info("call %d: transfer status %d %s (final %s)", call.app_id, code, reason, final)
        if not final:
            return
        if 200 <= code < 300:
            call.transferred = True
            call.hangup(pj.CallOpParam(True))
        else:
            cid = call.app_id
            self._post(lambda: self.error.emit(f"Transfer failed: {reason} ({code})."))
            log.warning("call %d: transfer failed %d %s", cid, code, reason)

    # -- media: recording, bridge, stats --------------------------------------------------
    def pause_recording(self, call_id: int, paused: bool) -> None:
        """Pause/resume the call's recording (card numbers): silence keeps the timeline."""
        self._media.pause_recording(self._call(call_id), paused)
        self._post(lambda: self.recording_paused.emit(call_id, paused))
        QTimer.singleShot(0, self, self._drain)

    def _on_stats(self) -> None:
        step = self.config.stats_interval_ms / 1000.0
        for call in list(self._calls.values()):
            if call.disconnected or not call.media_active:
                continue
            if call.hold_pending_since and time.monotonic() - call.hold_pending_since > 10:
                call.hold_pending_since = 0.0
                call.want_hold = call.held
                self.error.emit("The other side did not answer the hold/resume request.")
            try:
                stats = call.read_stats()
            except pj.Error as exc:
                log.debug("stats for call %d: %s", call.app_id, describe_pj_error(exc))
                continue
            if stats is None:
                continue
            cid = call.app_id
            self.media_stats.emit(cid, stats)
            if call.held:
                continue
            if stats.rx_packets == call.last_rx_packets:
                call.rx_silent_s += step
            else:
                call.rx_silent_s = 0.0
            call.last_rx_packets = stats.rx_packets
            if call.rx_silent_s >= self.config.rtp_timeout_s:
                call.fault_reason = (f"Connection lost: no audio from the other side for "
                                     f"{self.config.rtp_timeout_s} s")
                log.warning("call %d: %s; hanging up", cid, call.fault_reason)
                try:
                    call.hangup(pj.CallOpParam(True))
                except pj.Error as exc:
                    log.error("hangup after RTP timeout: %s", describe_pj_error(exc))
