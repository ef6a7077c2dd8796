"""The media seam of a call: headset bridge, recorder, codec priorities.

Why a separate piece: the engine decides *when* (media became active, call torn down);
this decides *what* — attach the agent's headset (`sip.audio.bridge.AudioBridge`), start
the stereo recorder with the agent's microphone on the left and the call on the right,
and undo both before the call object goes away (ARCHITECTURE.md §3 shutdown order).
Without a bridge (tests, the null device) the left channel is the null capture device.
Everything here runs on the engine's pjsua2 thread; results are handed to `post` so
signals are emitted outside pjsua2 callbacks.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from agent_desktop.phone import PhoneBackend, PhoneError, RecordingInfo
from sip.pjobjects import PjCall

if TYPE_CHECKING:
    from sip.audio.bridge import AudioBridge

log = logging.getLogger(__name__)

FALLBACK_CODECS = ("PCMA", "PCMU")


def apply_codec_priorities(ep: pj.Endpoint, wanted: Sequence[str]) -> list[str]:
    """Enable exactly the wanted codecs, first = highest priority; returns unknown names.

    Codecs not listed are disabled (priority 0) so the offer holds only what the agent's
    PBX was configured for; if none of the wanted ones exist, G.711 is used."""
    available: dict[str, list[str]] = {}
    for ci in ep.codecEnum2():
        available.setdefault(ci.codecId.split("/")[0].upper(), []).append(ci.codecId)
    names = [c.upper() for c in wanted]
    unknown = [c for c in names if c not in available]
    known = [c for c in names if c in available] or list(FALLBACK_CODECS)
    for name, ids in available.items():
        for cid in ids:
            ep.codecSetPriority(cid, 255 - known.index(name) if name in known else 0)
    if unknown:
        log.warning("codecs not available: %s (available: %s)", unknown, sorted(available))
    return unknown


class CallMedia:
    def __init__(self, backend: PhoneBackend, bridge: AudioBridge | None,
                 recorder_factory: Callable[[Path], Any] | None,
                 recordings_dir: Path | None, post: Callable[[Callable[[], None]], None],
                 capture_fallback: Callable[[], pj.AudioMedia] | None = None) -> None:
        self._backend = backend
        self._bridge = bridge
        self._recorder_factory = recorder_factory
        self.recordings_dir = recordings_dir
        self._post = post
        self._calls_by_bridge: PjCall | None = None
        self.capture_fallback = capture_fallback
        self.consent_wav: Path | None = None
        self._prepared: set[int] = set()  # app ids of calls set up with the headset open

    def prepare(self, call: PjCall) -> None:
        """Open the headset streams while the call is being set up (they take 0.5–2 s), so
        the agent hears — and the customer hears the agent from — the first word.

        Every prepared call is remembered until its teardown: streams opened for a call
        that never gets media (busy, no answer, failed) must be closed then too."""
        self._prepared.add(call.app_id)
        if self._bridge is not None:
            try:
                self._bridge.prepare()
            except Exception:
                log.exception("audio bridge prepare failed")

    def set_muted(self, call: PjCall, muted: bool) -> None:
        """Mute at the microphone too when the headset carries this call.

        Decision: the recording's left (agent) channel is silent while muted. A recording
        is the record of the conversation — what the customer heard — and a muted agent
        is usually saying something the customer must not hear (and need not be kept);
        recording it anyway would also contradict what the agent was shown ("muted")."""
        if call.bridged and self._bridge is not None:
            self._bridge.set_muted(muted)

    def on_media(self, call: PjCall, media: pj.AudioMedia, first: bool) -> None:
        """Media became (or stayed) active: headset on this call; recording on first."""
        if self._bridge is not None:
            try:
                self._bridge.attach(media)  # re-points the headset if another call had it
                self._bridge.set_muted(call.muted)
                previous = self._calls_by_bridge
                if previous is not None and previous is not call:
                    previous.bridged = False
                self._calls_by_bridge = call
                call.bridged = True
            except Exception as exc:
                log.exception("audio bridge attach failed")
                msg = f"No headset audio for this call: {exc}"
                self._post(lambda: self._backend.error.emit(msg))
        if first:
            if self.consent_wav is not None:
                self._play_notice(call, media)
            self._start_recording(call, media)

    def _play_notice(self, call: PjCall, media: pj.AudioMedia) -> None:
        """The recording notice, once, to the customer (and so into the recording)."""
        try:
            player = pj.AudioMediaPlayer()
            player.createPlayer(str(self.consent_wav), pj.PJMEDIA_FILE_NO_LOOP)
            player.startTransmit(media)
            call.notice_player = player
        except pj.Error as exc:
            log.error("recording notice not played: %s", exc.info())
            msg = "The recording notice could not be played to the customer."
            self._post(lambda: self._backend.error.emit(msg))

    def _start_recording(self, call: PjCall, media: pj.AudioMedia) -> None:
        rdir = self.recordings_dir
        if rdir is None or self._recorder_factory is None:
            return
        # Flat in the recordings folder: start-up repair (sip.recorder.repair_recordings)
        # scans that folder for WAVs a crash left open.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = rdir / f"{stamp}-{uuid.uuid4().hex[:8]}-call{call.app_id}.wav"
        left = self._bridge.capture_media if self._bridge is not None else None
        if left is None and self.capture_fallback is not None:
            left = self.capture_fallback()
        try:
            rec = self._recorder_factory(path)
            rec.start(left, media)
        except Exception as exc:
            log.exception("recording could not start for call %d", call.app_id)
            msg = f"This call is not being recorded: {exc}"
            self._post(lambda: self._backend.error.emit(msg))
            return
        call.recorder = rec
        cid = call.app_id
        failed = getattr(rec, "failed", None)
        if failed is not None:
            failed.connect(self._backend.error)
        self._post(lambda: self._backend.recording_started.emit(cid, str(path)))

    def teardown(self, call: PjCall) -> None:
        """Recorder finished and headset detached, before the call object is dropped."""
        call.notice_player = None
        rec, call.recorder = call.recorder, None
        if rec is not None:
            try:
                res = rec.stop()  # type: ignore[attr-defined]
                info = RecordingInfo(str(res.path), float(res.duration_s), int(res.size_bytes),
                                     str(res.sha256), list(res.paused_spans))
                cid = call.app_id
                self._post(lambda: self._backend.recording_finished.emit(cid, info))
                if getattr(res, "error", None):
                    err = str(res.error)
                    self._post(lambda: self._backend.error.emit(err))
            except Exception:
                log.exception("stopping the recorder of call %d failed", call.app_id)
        self._prepared.discard(call.app_id)
        if self._bridge is None:
            return
        if call.bridged:
            call.bridged = False
            self._calls_by_bridge = None
        elif self._calls_by_bridge is not None or self._prepared:
            return  # the headset belongs to another call still going on
        try:
            self._bridge.set_muted(False)  # the next call starts unmuted
            self._bridge.detach()  # also closes streams prepared for a call without media
            if self._prepared:  # another call is ringing: keep its headset opening
                self._bridge.prepare()
        except Exception:
            log.exception("audio bridge detach failed")

    def pause_recording(self, call: PjCall, paused: bool) -> None:
        if call.recorder is None:
            raise PhoneError("This call is not being recorded.")
        if paused:
            call.recorder.pause()  # type: ignore[attr-defined]
        else:
            call.recorder.resume()  # type: ignore[attr-defined]
