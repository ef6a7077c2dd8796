"""Python-implemented pjmedia ports must never be called while CPython destroys them.

The crash these tests keep away (CI: SIGSEGV of a call child after a clean call, once an
AttributeError from the clock thread first): dropping the last reference to a
`pj.AudioMediaPort` subclass started its deallocation, then the C++ destructor released
the GIL, and pjmedia's clock thread — waiting for the GIL inside that port's callback —
entered Python on the half-destroyed object and deallocated it a second time. Heap
corruption, and a segfault later. `sip.audio.ports._GuardedPort.close()` (and its
finalizer safety net) destroy the C++ half first. Measured with the churn child below:
5 crashes in 5 runs before, 0 after.

Each scenario runs in its own process, so a crash is an exit code, not a dead pytest.
`python -m tests.integration.test_audio_port_lifetime churn URI N MODE` and
`... calls URI N RECDIR MODE` are the children.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.audio_rig import REPO, PulseRig, pulse, sine_wav
from tests.integration.rig.sipp import Sipp

__all__ = ["pulse"]

pytestmark = pytest.mark.integration


def run_child(env: dict[str, str] | None, *args: str,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "faulthandler", "-m",
                           "tests.integration.test_audio_port_lifetime", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.parametrize("mode", ["close", "drop"])
def test_ports_dropped_while_the_clock_waits_for_the_gil_do_not_crash(
        tmp_path: Path, mode: str) -> None:
    """100 rounds: two ports join a live call, the main thread holds the GIL for 30 ms
    (a busy GUI) so the clock thread queues up inside a port callback, then the ports go
    — closed explicitly, or just dropped (the finalizer closes them)."""
    sipp = Sipp("echo", tmp_path)
    try:
        r = run_child(None, "churn", sipp.uri(), "100", mode)
    finally:
        sipp.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    assert "churned 100" in r.stdout, r.stdout[-2000:]
    assert "clean exit" in r.stdout


@pytest.mark.parametrize("mode", ["stop", "exit"])
def test_calls_with_the_headset_bridge_attached_end_and_the_process_exits_cleanly(
        pulse: PulseRig, tmp_path: Path, mode: str) -> None:
    """The real SipEngine + AudioBridge (real PulseAudio devices) + StereoRecorder: 6
    calls one after the other, each hung up while the GUI thread is busy; then the app
    stops the engine and the bridge (`stop`), or simply returns without stopping either
    (`exit`: the atexit hooks must shut down in order)."""
    pulse.play_into_mic(sine_wav(tmp_path / "mic.wav", 440, 60))
    sipp = Sipp("echo", tmp_path, calls=6)
    try:
        r = run_child(pulse.env, "calls", sipp.uri(), "6", str(tmp_path / "rec"), mode)
    finally:
        sipp.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    assert "calls 6 connected 6 recorded 6" in r.stdout, (r.stdout[-2000:], r.stderr[-2000:])
    if mode == "exit":
        assert "SIP engine still running at exit" in r.stderr
        assert "audio bridge still running at exit" in r.stderr
    assert len(list((tmp_path / "rec").glob("*.wav"))) == 6


# ---------------------------------------------------------------------------------------
# Children
# ---------------------------------------------------------------------------------------

def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def churn_main(uri: str, rounds: int, mode: str) -> int:
    import gc

    import pjsua2 as pj

    from sip.audio.ports import SinkPort, SourcePort, TapPort
    from sip.audio.ring import ByteRing

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    cfg.medConfig.clockRate = 16000
    cfg.medConfig.sndClockRate = 16000
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.audDevManager().setNullDev()
    ep.libStart()
    for c in ep.codecEnum2():
        ep.codecSetPriority(c.codecId, 200 if c.codecId.startswith("PCMU") else 0)
    acfg = pj.AccountConfig()
    acfg.idUri = "sip:agent@127.0.0.1"
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acc = pj.Account()
    acc.create(acfg)
    state: dict[str, object] = {"media": None, "ended": False}

    class Call(pj.Call):
        def onCallState(self, prm: pj.OnCallStateParam) -> None:
            if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
                state["ended"] = True

        def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
            ci = self.getInfo()
            for mi in ci.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    state["media"] = self.getAudioMedia(mi.index)

    call = Call(acc)
    call.makeCall(uri, pj.CallOpParam(True))
    deadline = time.monotonic() + 10
    while state["media"] is None and time.monotonic() < deadline:
        ep.libHandleEvents(10)
    media = state["media"]
    assert isinstance(media, pj.AudioMedia), "the call got no audio"
    sys.setswitchinterval(1.0)  # the main thread keeps the GIL while busy
    ring = ByteRing(640 * 20)
    for i in range(rounds):
        ports = [SinkPort(f"sink{i}", ring), SourcePort(f"src{i}", ring),
                 TapPort(f"tap{i}", lambda _d: None)]
        for p in ports:
            p.create()
        media.startTransmit(ports[0])
        ports[1].startTransmit(media)
        media.startTransmit(ports[2])
        ep.libHandleEvents(5)
        _busy(0.03)
        media.stopTransmit(ports[0])
        ports[1].stopTransmit(media)
        media.stopTransmit(ports[2])
        if mode == "close":
            for p in ports:
                p.close()
            ports[1].stopTransmit(media)  # a closed port's links went with it: no-op
            try:
                ports[1].startTransmit(media)
                raise AssertionError("a closed port accepted startTransmit")
            except RuntimeError:
                pass
        del ports, p
    sys.setswitchinterval(0.005)
    print(f"churned {rounds}", flush=True)
    call.hangup(pj.CallOpParam(True))
    deadline = time.monotonic() + 5
    while not state["ended"] and time.monotonic() < deadline:
        ep.libHandleEvents(10)
    del media
    state.clear()
    del call
    acc.shutdown()
    del acc
    gc.collect()
    ep.libDestroy()
    print("clean exit", flush=True)
    return 0


def calls_main(uri: str, n: int, recdir: Path, mode: str) -> int:
    import logging

    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    from agent_desktop.phone import CallState
    from sip.audio.bridge import AudioBridge
    from sip.config import SipConfig
    from sip.engine import SipEngine
    from sip.recorder import StereoRecorder

    logging.basicConfig(level=logging.WARNING)
    app = QCoreApplication([])

    class Store:
        values: dict[str, object] = {}

        def get(self, key: str) -> object:
            return self.values.get(key, "")

        def set(self, key: str, value: object) -> None:
            self.values[key] = value

    bridge = AudioBridge(Store())
    bridge.start()
    engine = SipEngine(SipConfig(bind_address="127.0.0.1", recordings_dir=recdir,
                                 codecs=("PCMU",)), bridge=bridge,
                       recorder_factory=StereoRecorder)
    engine.start()
    states: dict[int, list[str]] = {}
    recorded: list[int] = []
    engine.call_state_changed.connect(
        lambda cid, st, _c, _r: states.setdefault(cid, []).append(st))
    engine.recording_finished.connect(lambda cid, _info: recorded.append(cid))

    def wait_until(done: object, seconds: float) -> None:
        loop = QEventLoop()
        check = QTimer()
        check.timeout.connect(lambda: loop.quit() if done() else None)  # type: ignore[operator]
        check.start(5)
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()
        check.stop()

    connected = 0
    for _ in range(n):
        cid = engine.dial(uri)
        wait_until(lambda c=cid: CallState.CONNECTED in states.get(c, []), 10)
        if CallState.CONNECTED in states.get(cid, []):
            connected += 1
        wait_until(lambda: False, 0.6)  # audio flows through the bridge and the recorder
        sys.setswitchinterval(0.05)
        _busy(0.03)  # a busy GUI thread: the clock thread queues up for the GIL
        engine.hangup(cid)  # pumped by the engine: teardown drops the ports at once
        sys.setswitchinterval(0.001)
        wait_until(lambda c=cid: CallState.DISCONNECTED in states.get(c, []), 10)
        wait_until(lambda: False, 0.3)
    print(f"calls {n} connected {connected} recorded {len(recorded)}", flush=True)
    if mode == "stop":
        engine.stop()
        bridge.shutdown()
    del app  # "exit": neither stopped; the atexit hooks run at interpreter exit
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "churn":
        raise SystemExit(churn_main(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    raise SystemExit(calls_main(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]),
                                sys.argv[5]))
