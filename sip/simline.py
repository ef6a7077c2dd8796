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
`DTMF 1 5`, `END 1 486`, `RECORDED 1` with --record-dir) so tests and the app can follow
it.
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

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
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
        self.ep = pj.Endpoint()
        self.acc: LineAccount | None = None

    def start(self) -> int:
        ep = self.ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = "Agent Desktop simulated line"
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.level = 0
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

    def _collect(self) -> None:
        """Drop finished calls outside their callbacks: player first, then the call."""
        while self.retired:
            call = self.retired.pop()
            call.player = None
            if call.recorder is not None:
                call.recorder = None  # closes the WAV (its header is written on close)
                say(f"RECORDED {call.n}")

    def stop(self) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(pj.Error):
                call.hangup(pj.CallOpParam(True))
        deadline = time.monotonic() + 2.0
        while self.calls and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
        self._collect()
        for call in self.calls.values():
            call.player = None
            call.recorder = None
        self.calls.clear()
        if self.acc is not None:
            self.acc.shutdown()
            self.acc = None
        gc.collect()
        self.ep.libDestroy()
        say("BYE")


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
