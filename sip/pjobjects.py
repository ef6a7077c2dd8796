"""pjsua2 Account/Call subclasses: thin shells that hand every callback to the engine.

Why so thin: pjsua2 prints and swallows exceptions raised in callbacks, and a saved
traceback can keep a pjsua2 object alive past `libDestroy()` (abort, rc 134). So each
callback reads what it needs, passes plain values to the engine, and catches everything.
No Qt signal is emitted from here: the engine queues events and emits them after
`libHandleEvents()` returns.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol

import pjsua2 as pj

from agent_desktop.phone import MediaStats

log = logging.getLogger(__name__)

_REMOTE = re.compile(r'^\s*(?:"?(?P<name>[^"<]*?)"?\s*)?<?(?P<uri>sips?:[^>]+)>?')


def describe_pj_error(exc: pj.Error) -> str:
    """`str(pj.Error)` says nothing; build a sentence from its reason/status."""
    try:
        reason = exc.reason or ""
        status = exc.status
        title = exc.title or ""
    except Exception:  # pragma: no cover - defensive: never fail while reporting
        return "unknown pjsua2 error"
    reason = reason.split(" (PJ", 1)[0].strip()
    return f"{reason or title} (status {status})"


def parse_remote(remote_uri: str) -> tuple[str, str]:
    """('display name', 'user part') from `"Alice" <sip:1001@host>`."""
    m = _REMOTE.match(remote_uri)
    if not m:
        return "", remote_uri
    name = (m.group("name") or "").strip()
    uri = m.group("uri").split(";", 1)[0]
    user = uri.split(":", 1)[1].split("@", 1)[0] if "@" in uri else uri.split(":", 1)[1]
    return name, user


class EngineCallbacks(Protocol):
    def on_reg_state(self, code: int, reason: str, expiration: int) -> None: ...
    def on_incoming(self, call: PjCall) -> None: ...
    def on_call_state(self, call: PjCall) -> None: ...
    def on_call_media(self, call: PjCall) -> None: ...
    def on_transfer_status(self, call: PjCall, code: int, reason: str, final: bool) -> None: ...


class PjAccount(pj.Account):
    def __init__(self, engine: EngineCallbacks) -> None:
        super().__init__()
        self._engine = engine

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        try:
            self._engine.on_reg_state(int(prm.code), str(prm.reason), int(prm.expiration))
        except Exception:
            log.exception("onRegState handler failed")

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            call = PjCall(self, self._engine, prm.callId)
            self._engine.on_incoming(call)
        except Exception:
            log.exception("onIncomingCall handler failed")


class PjCall(pj.Call):
    """One pjsua2 call plus the engine's bookkeeping for it."""

    def __init__(self, account: PjAccount, engine: EngineCallbacks,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self._engine = engine
        self.app_id = 0  # the engine's stable id
        self.outgoing = call_id == pj.PJSUA_INVALID_ID
        self.disconnected = False
        self.confirmed = False
        self.held = False  # confirmed by the far end (media state LOCAL_HOLD)
        self.want_hold = False
        self.hold_pending_since = 0.0  # monotonic time a hold/unhold re-INVITE was sent
        self.muted = False
        self.media_active = False
        self.recorder: object | None = None
        self.notice_player: pj.AudioMediaPlayer | None = None
        self.bridged = False
        self.fault_reason = ""  # set when the engine ends the call itself (RTP timeout)
        self.last_rx_packets = -1
        self.rx_silent_s = 0.0
        self.transferred = False

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            self._engine.on_call_state(self)
        except Exception:
            log.exception("onCallState handler failed")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            self._engine.on_call_media(self)
        except Exception:
            log.exception("onCallMediaState handler failed")

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        try:
            self._engine.on_transfer_status(self, int(prm.statusCode), str(prm.reason),
                                            bool(prm.finalNotify))
        except Exception:
            log.exception("onCallTransferStatus handler failed")

    def audio_status(self) -> tuple[int, int]:
        """(media index, pjsua media status) of the audio stream; (-1, -1) if none."""
        info = self.getInfo()
        for i, mi in enumerate(info.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                return i, int(mi.status)
        return -1, -1

    def audio_media(self) -> pj.AudioMedia | None:
        """The call's audio media in the conference bridge, or None (no media yet)."""
        idx, status = self.audio_status()
        if idx >= 0 and status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
                                   pj.PJSUA_CALL_MEDIA_LOCAL_HOLD):
            return self.getAudioMedia(idx)
        return None

    def audio_index(self) -> int:
        info = self.getInfo()
        for i, mi in enumerate(info.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                return i
        return -1

    def read_stats(self) -> MediaStats | None:
        """Codec, jitter, loss and packet counts of the audio stream (RTCP view)."""
        idx = self.audio_index()
        if idx < 0:
            return None
        si = self.getStreamInfo(idx)
        st = self.getStreamStat(idx)
        rx = st.rtcp.rxStat
        pkt, loss = int(rx.pkt), int(rx.loss)
        return MediaStats(
            codec=str(si.codecName), clock_rate=int(si.codecClockRate),
            rx_jitter_ms=rx.jitterUsec.mean / 1000.0,
            rx_loss_percent=(100.0 * loss / (pkt + loss)) if pkt + loss else 0.0,
            rx_packets=pkt, tx_packets=int(st.rtcp.txStat.pkt),
            rtt_ms=st.rtcp.rttUsec.mean / 1000.0,
        )
