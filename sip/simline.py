"""The simulated customer line: a separate pjsua2 process that behaves like customers.

Why a separate process: pjsua2 allows one Endpoint per process, and a real second SIP
stack on loopback exercises exactly the wire behaviour a PBX would (INVITE, 180, 200,
486, CANCEL/487, BYE, REFER, RTP). One process serves every demo customer: the mode of
each call is chosen by the dialled user part, by word or by the number's last digit:

    answer / last digit 0, 1, 7, 8, 9   ring briefly, answer, play the greeting WAV
    busy / 2                            486 Busy Here
    noanswer / 3                        180 Ringing forever (the caller must CANCEL)
    reject / 4                          603 Decline
    hangup / 5                          answer, play, hang up after --hangup-after-s
    notfound / 6                        404 Not Found

It prints one line per event on stdout (`READY port=5070`, `CALL 1 user=busy mode=busy`,
`DTMF 1 5`, `TIMEOUT 1`, `END 1 486`, `RECORDED 1` with --record-dir) so tests and the app
can follow it.

Robustness, because the caller is an app that may be killed at any moment:
- a connected call that receives no RTP for --media-timeout-s (default 10 s; not while the
  caller holds it) is hung up (`TIMEOUT n`), like a PBX would. A killed app never sends
  BYE, and this wheel's pjsua holds at most 4 calls (PJSUA_MAX_CALLS: a higher
  `maxCalls` is silently capped, measured), after which every INVITE is answered 486 —
  so four killed apps used to make the line "busy" for good; now their slots come back
  after the timeout;
- with --exit-with-parent PID (what the app's embedded line passes) it stops, cleanly,
  when that process is gone — a killed app must not leave an orphan line behind;
- SIGTERM/SIGINT stop in the order pjsua2 needs: pending timers (which hold calls) are
  dropped, calls hung up and released while the library is alive, the account shut down,
  and only then `libDestroy()`; a call object destroyed after that aborts the process
  (`pjsua_call_set_user_data` assertion), so any still referenced is leaked instead.
Run: `agent-desktop-simline --port 5070` (0 = any free port, shown in READY).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import heapq
import itertools
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import pjsua2 as pj

WATCH_INTERVAL_S = 0.5
MAX_CALLS = 4  # the wheel's compile-time cap (see the module docstring)
DEFAULT_WAV = Path(__file__).resolve().parent.parent / "resources" / "media" / \
    "customer_line.wav"
_WORDS = {"answer": "answer", "busy": "busy", "noanswer": "noanswer", "never": "noanswer",
          "reject": "reject", "hangup": "hangup", "notfound": "notfound"}
_DIGITS = {"2": "busy", "3": "noanswer", "4": "reject", "5": "hangup", "6": "notfound"}


def mode_for(user: str) -> str:
    """Mode of a call to `user` (see the module docstring)."""
    word = user.lower().lstrip("+")
    if word in _WORDS:
        return _WORDS[word]
    digits = [c for c in user if c.isdigit()]
    if digits:
        return _DIGITS.get(digits[-1], "answer")
    return "answer"


def say(line: str) -> None:
    """One event line; if nobody reads us any more (the app closed the pipe after READY),
    carry on silently instead of dying of a broken pipe."""
    try:
        print(line, flush=True)
    except (BrokenPipeError, ValueError, OSError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


class Scheduler:
    """Timers for the single-threaded loop (pjsua2 objects are touched only here)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._seq), fn))

    def clear(self) -> None:
        """Drop every pending timer (their closures hold call objects)."""
        self._heap.clear()

    def run_due(self) -> None:
        now = time.monotonic()
        while self._heap and self._heap[0][0] <= now:
            _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except pj.Error as exc:
                say(f"ERROR {exc.reason}")


class LineCall(pj.Call):
    def __init__(self, line: Line, acc: pj.Account | None, call_id: int) -> None:
        super().__init__(acc, call_id)
        self.line = line
        self.n = 0
        self.mode = "answer"
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.done = False
        self.confirmed = False
        self.last_rx = -1
        self.silent_since = 0.0  # monotonic time RTP was last seen to arrive

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
                self.confirmed = True
                self.silent_since = time.monotonic()
                say(f"CONNECTED {self.n}")
            if info.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.done:
                self.done = True
                say(f"END {self.n} {info.lastStatusCode}")
                self.line.retire(self)
        except Exception as exc:  # pjsua2 swallows callback exceptions: report them
            say(f"ERROR onCallState {exc!r}")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            info = self.getInfo()
            for i, mi in enumerate(info.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and \
                        mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE and self.player is None:
                    media = self.getAudioMedia(i)
                    player = pj.AudioMediaPlayer()
                    player.createPlayer(str(self.line.wav), 0)  # loops
                    player.startTransmit(media)
                    self.player = player
                    if self.line.record_dir is not None:
                        rec = pj.AudioMediaRecorder()
                        path = self.line.record_dir / f"heard-{self.n}.wav"
                        rec.createRecorder(str(path))
                        media.startTransmit(rec)
                        self.recorder = rec
                        say(f"RECORDING {self.n} {path}")
                    say(f"MEDIA {self.n}")
        except Exception as exc:
            say(f"ERROR onCallMediaState {exc!r}")

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        say(f"DTMF {self.n} {prm.digit}")

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        """Accept a blind transfer with a call object we own (pjsua2 would otherwise make
        one of its own that we could not tear down in order at exit)."""
        try:
            new = LineCall(self.line, self.line.acc, pj.PJSUA_INVALID_ID)
            new.n = next(self.line.count)
            new.mode = "transfer"
            self.line.calls[new.n] = new
            prm.newCall = new
            say(f"XFER {self.n} to={prm.dstUri} as={new.n}")
        except Exception as exc:
            say(f"ERROR onCallTransferRequest {exc!r}")


class LineAccount(pj.Account):
    def __init__(self, line: Line) -> None:
        super().__init__()
        self.line = line

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            self.line.incoming(LineCall(self.line, self, prm.callId))
        except Exception as exc:
            say(f"ERROR onIncomingCall {exc!r}")


class Line:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.wav = Path(args.wav)
        self.record_dir: Path | None = Path(args.record_dir) if args.record_dir else None
        self.sched = Scheduler()
        self.calls: dict[int, LineCall] = {}
        self.retired: list[LineCall] = []
        self.count = itertools.count(1)
        self.running = True
        self.media_timeout_s = float(args.media_timeout_s)
        self._next_watch = 0.0
        self.ep = pj.Endpoint()
        self.acc: LineAccount | None = None

    def start(self) -> int:
        ep = self.ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = "Agent Desktop simulated line"
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.level = 5 if self.args.pj_log else 0
        if self.args.pj_log:
            cfg.logConfig.filename = self.args.pj_log
        cfg.medConfig.noVad = True
        ep.libInit(cfg)
        tc = pj.TransportConfig()
        tc.port = self.args.port
        tc.boundAddress = self.args.host
        tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        ep.libStart()
        ep.audDevManager().setNullDev()
        for ci in ep.codecEnum2():
            name = ci.codecId.split("/")[0].upper()
            prio = {"G722": 255, "PCMA": 254, "PCMU": 253}.get(name, 0)
            ep.codecSetPriority(ci.codecId, prio)
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:line@{self.args.host}:{port}"
        acfg.sipConfig.transportId = tid
        acfg.mediaConfig.transportConfig.boundAddress = self.args.host
        self.acc = LineAccount(self)
        self.acc.create(acfg, True)
        return port

    def incoming(self, call: LineCall) -> None:
        call.n = next(self.count)
        self.calls[call.n] = call
        info = call.getInfo()
        local = info.localUri.split("<", 1)[-1].split(">", 1)[0]
        user = local.split(":", 1)[1].split("@", 1)[0] if "@" in local else ""
        call.mode = mode_for(user)
        say(f"CALL {call.n} user={user} mode={call.mode} from={info.remoteUri}")
        if call.mode in ("busy", "reject", "notfound"):
            code = {"busy": 486, "reject": 603, "notfound": 404}[call.mode]
            self._respond(call, code)
            return
        self._respond(call, 180)
        if call.mode in ("answer", "hangup"):
            self.sched.after(self.args.ring_ms / 1000.0, lambda: self._answer(call))

    def _respond(self, call: LineCall, code: int) -> None:
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        if code >= 300:
            call.hangup(prm)
        else:
            call.answer(prm)

    def _answer(self, call: LineCall) -> None:
        if call.done:
            return
        self._respond(call, 200)
        if call.mode == "hangup":
            self.sched.after(self.args.hangup_after_s, lambda: self._hangup(call))

    def _hangup(self, call: LineCall) -> None:
        if not call.done:
            call.hangup(pj.CallOpParam(True))

    def retire(self, call: LineCall) -> None:
        self.calls.pop(call.n, None)
        self.retired.append(call)

    def loop(self) -> None:
        while self.running:
            self.ep.libHandleEvents(10)
            self.sched.run_due()
            self._collect()
            if time.monotonic() >= self._next_watch:
                self._next_watch = time.monotonic() + WATCH_INTERVAL_S
                self._watch_media()
                if self.args.exit_with_parent and os.getppid() != self.args.exit_with_parent:
                    say("PARENT GONE")
                    self.running = False

    def _watch_media(self) -> None:
        """Hang up connected calls whose caller stopped sending RTP (killed app)."""
        if self.media_timeout_s <= 0:
            return
        now = time.monotonic()
        for call in list(self.calls.values()):
            if call.done or not call.confirmed:
                continue
            try:
                rx, held = _rx_packets(call)
            except pj.Error:
                continue  # media not ready yet / being torn down
            if held or rx != call.last_rx:
                call.last_rx = rx
                call.silent_since = now
            elif now - call.silent_since >= self.media_timeout_s:
                say(f"TIMEOUT {call.n}")
                with contextlib.suppress(pj.Error):
                    call.hangup(pj.CallOpParam(True))

    def _collect(self) -> None:
        """Drop finished calls outside their callbacks: player first, then the call."""
        while self.retired:
            call = self.retired.pop()
            call.player = None
            if call.recorder is not None:
                call.recorder = None  # closes the WAV (its header is written on close)
                say(f"RECORDED {call.n}")

    def _hang_up_all(self) -> None:
        for c in list(self.calls.values()):
            if not c.done:
                with contextlib.suppress(pj.Error):
                    c.hangup(pj.CallOpParam(True))

    def _release_all(self) -> None:
        """Calls whose BYE got no answer (a dead caller): media first, then the call,
        while the library is still alive."""
        leftovers = list(self.calls.values())
        self.calls.clear()
        for c in leftovers:
            c.player = None
            c.recorder = None

    def stop(self) -> None:
        """Shut down in the order pjsua2 survives (see the module docstring)."""
        self.sched.clear()
        self._hang_up_all()
        deadline = time.monotonic() + 2.0
        while self.calls and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
        self._collect()
        self._release_all()
        gc.collect()
        if self.acc is not None:
            self.acc.shutdown()
            self.acc = None
        gc.collect()
        for obj in gc.get_objects():  # anything still holding a call must not outlive us
            if isinstance(obj, pj.Call):
                obj.thisown = False
        self.ep.libDestroy()
        say("BYE")


def _rx_packets(call: LineCall) -> tuple[int, bool]:
    """(RTP packets received so far, whether the caller holds the call) of its audio."""
    info = call.getInfo()
    for i, mi in enumerate(info.media):
        if mi.type == pj.PJMEDIA_TYPE_AUDIO:
            held = mi.status in (pj.PJSUA_CALL_MEDIA_REMOTE_HOLD, pj.PJSUA_CALL_MEDIA_NONE)
            return int(call.getStreamStat(i).rtcp.rxStat.pkt), held
    return 0, True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="agent-desktop-simline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=5070, help="UDP port (0 = any free port)")
    p.add_argument("--wav", default=str(DEFAULT_WAV), help="greeting played on answer")
    p.add_argument("--ring-ms", type=int, default=800, help="ringing before answering")
    p.add_argument("--record-dir", default="",
                   help="record what each caller sends into heard-N.wav here (tests)")
    p.add_argument("--hangup-after-s", type=float, default=5.0,
                   help="call length in 'hangup' mode")
    p.add_argument("--media-timeout-s", type=float, default=10.0,
                   help="hang up a connected call after this long without RTP (0 = never)")
    p.add_argument("--exit-with-parent", type=int, default=0, metavar="PID",
                   help="stop when the process PID (our parent) is gone")
    p.add_argument("--pj-log", default="", help="write pjsip's own log (level 5) here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.wav).is_file():
        print(f"simline: greeting file {args.wav} does not exist", file=sys.stderr)
        return 2
    line = Line(args)

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        line.running = False

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        port = line.start()
    except pj.Error as exc:
        print(f"simline: cannot start: {exc.reason} (status {exc.status})", file=sys.stderr)
        return 1
    say(f"READY port={port}")
    line.loop()
    line.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
