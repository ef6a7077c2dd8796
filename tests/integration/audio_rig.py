"""A private PulseAudio server plus a sipp tone peer, for real audio-path tests.

PulseAudio runs as a child process with its own runtime dir (nothing touches the
user's sound setup): a null sink "headset" plays the role of the agent's headset, and a
null sink "micfeed" whose monitor is remapped into a real source "mic" plays the role of
the microphone (Qt hides monitor sources). Feeding `micfeed` with a tone makes the app
hear that tone from its microphone. Everything is stopped by PID at teardown.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HEADSET = "TestHeadset"
MIC = "TestMic"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class PulseRig:
    root: Path
    with_devices: bool = True
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        run = self.root / "run"
        run.mkdir(parents=True, exist_ok=True)
        run.chmod(0o700)
        # HOME moves (PulseAudio keeps its cookie there); the cache stays the user's, so
        # call children reuse the native media library built once (sip.audio.native).
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(run),
                    "PULSE_RUNTIME_PATH": str(run / "pulse"), "HOME": str(self.root),
                    "XDG_CACHE_HOME": cache}
        self.env.pop("PULSE_SERVER", None)
        devices = [
            f"--load=module-null-sink sink_name=headset "
            f"sink_properties=device.description={HEADSET}",
            "--load=module-null-sink sink_name=micfeed "
            "sink_properties=device.description=MicFeed",
            f"--load=module-remap-source source_name=mic master=micfeed.monitor "
            f"source_properties=device.description={MIC}",
        ] if self.with_devices else []
        with open(self.root / "pulseaudio.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
                 "--disallow-exit", "--use-pid-file=no", "-F", "/dev/null",
                 "--load=module-native-protocol-unix", *devices],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.pactl("info").returncode == 0, 10, "pulseaudio")
        if not self.with_devices:
            return
        self.pactl("set-default-sink", "headset")
        self.pactl("set-default-source", "mic")
        # An idle null sink renders in 2 s blocks, so the first stream on it stalls for up
        # to 2 s (a real sound card starts at once). A silent low-latency stream keeps the
        # fake headset running like real hardware; zeros add nothing to what it plays.
        self.children.append(subprocess.Popen(
            ["pacat", "--playback", "--device=headset", "--latency-msec=20", "--raw",
             "--format=s16le", "--rate=16000", "--channels=1", "/dev/zero"], env=self.env))

    def pactl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True,
                              text=True, timeout=10, check=False)

    def play_into_mic(self, wav: Path) -> subprocess.Popen[bytes]:
        """Play `wav` into the microphone (the remapped monitor of `micfeed`)."""
        proc = subprocess.Popen(["paplay", "--device=micfeed", "--latency-msec=20", str(wav)],
                                env=self.env)
        self.children.append(proc)
        return proc

    def record_headset(self, out: Path) -> subprocess.Popen[bytes]:
        """Capture what the app plays to the headset, 16 kHz mono WAV."""
        proc = subprocess.Popen(
            ["parecord", "--device=headset.monitor", "--latency-msec=20", "--rate=16000",
             "--channels=1",
             "--format=s16le", "--file-format=wav", str(out)], env=self.env)
        self.children.append(proc)
        return proc

    def stop(self) -> None:
        for child in self.children:
            stop_process(child)
        if self.proc is not None:
            stop_process(self.proc)


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[PulseRig]:
    rig = PulseRig(tmp_path / "pulse")
    rig.start()
    yield rig
    rig.stop()


def sine_wav(path: Path, freq: float, seconds: float, rate: int = 16000) -> Path:
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", "1", "-b", "16", str(path),
                    "synth", str(seconds), "sine", str(freq), "vol", "0.5"], check=True)
    return path


TONE_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="tone uas">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [rtpstream_audio_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=ptime:20
]]></send>
  <recv request="ACK" crlf="true"/>
  <nop><action><exec rtp_stream="{tone},-1,0"/></action></nop>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""


@dataclass
class TonePeer:
    """sipp UAS that answers and streams a PCMU tone for as long as the call lasts."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def uri(self) -> str:
        return f"sip:tone@127.0.0.1:{self.port}"


@pytest.fixture
def tone_peer(tmp_path: Path) -> Iterator[TonePeer]:
    assert shutil.which("sipp"), "sipp is missing: scripts/bootstrap.sh installs sip-tester"
    freq = 1000
    tone = tmp_path / "tone.ul"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-t", "ul", str(tone), "synth",
                    "30", "sine", str(freq), "vol", "0.5"], check=True)
    scen = tmp_path / "tone_uas.xml"
    scen.write_text(TONE_UAS.replace("{tone}", str(tone)))
    port = free_port()
    rtp = free_port()
    proc = subprocess.Popen(
        ["sipp", "-sf", str(scen), "-i", "127.0.0.1", "-p", str(port), "-mp", str(rtp),
         "-m", "1", "-nostdin"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    assert proc.poll() is None, "sipp tone peer exited at start"
    yield TonePeer(port, proc)
    stop_process(proc)


REPO = Path(__file__).resolve().parents[2]


@dataclass
class ChildRun:
    returncode: int
    report: dict[str, Any]
    stderr: str


def run_call_child(env: dict[str, str], uri: str, out: Path, seconds: float,
                   *extra: str) -> ChildRun:
    """Run one call in a fresh process (one pjsua2 Endpoint per process; an abort shows
    as a non-zero exit code instead of killing pytest)."""
    import json
    import sys

    proc = subprocess.run([sys.executable, "-m", "tests.integration.audio_rig", uri, str(out),
                           str(seconds), *extra], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=seconds + 60, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    return ChildRun(proc.returncode, report, proc.stderr)


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(channels, samples as an int16 array shaped (frames, channels))."""
    import wave

    with wave.open(str(path)) as w:
        ch = w.getnchannels()
        assert w.getframerate() == 16000 and w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return ch, data.reshape(-1, ch)


def dominant_hz(samples: np.ndarray, rate: int = 16000) -> float:
    """Frequency of the strongest FFT bin (Hann window, DC removed)."""
    x = samples.astype(np.float64)
    x -= x.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spec))])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


# ---------------------------------------------------------------------------------------
# The child process: one real pjsua2 Endpoint + AudioBridge + StereoRecorder making one
# call. Run as `python -m tests.integration.audio_rig URI OUT.wav SECONDS [--pause A,B]`;
# prints one JSON line and exits 0, so an abort (rc 134) fails the test visibly.
# ---------------------------------------------------------------------------------------

def child_main(argv: list[str]) -> int:
    import argparse
    import gc
    import json
    import logging

    import pjsua2 as pj
    import psutil
    from PySide6.QtCore import QCoreApplication, QTimer

    from sip.audio.bridge import AudioBridge
    from sip.recorder import StereoRecorder

    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("out")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--pause", default="")
    ap.add_argument("--input", default="")
    ap.add_argument("--output", default="")
    ap.add_argument("--unplug-at", type=float, default=0.0,
                    help="unload the headset sink at this second (hot-plug test)")
    ap.add_argument("--replug-at", type=float, default=0.0)
    ap.add_argument("--plug", default="module-null-sink sink_name=spare "
                    "sink_properties=device.description=Spare",
                    help="pactl load-module arguments of the device to unplug/replug")
    ap.add_argument("--mute", dest="mute_at", default=None,
                    type=lambda v: [float(x) for x in v.split(",")],
                    help="mute the microphone from A to B seconds")
    ap.add_argument("--prepare", action="store_true", help="open devices when dialling")
    ap.add_argument("--stored-output", default="",
                    help="headset name already in the settings (not validated)")
    ap.add_argument("--fsize-limit", type=int, default=0,
                    help="RLIMIT_FSIZE in bytes: writes beyond it fail (EFBIG) like a full disk")
    ap.add_argument("--gil-stall", type=float, default=0.0,
                    help="hold the GIL this many ms on the main thread once a second "
                    "(one C-level call: sum(range(n)) never hands it over)")
    ap.add_argument("--switch-output", default="",
                    help="NAME@SECONDS: choose another headset mid-call, as the settings do")
    args = ap.parse_args(argv)
    import faulthandler

    faulthandler.dump_traceback_later(args.seconds + 25, exit=True)
    logging.basicConfig(level=logging.INFO,
                        format="%(relativeCreated)d %(name)s %(levelname)s %(message)s")

    if args.fsize_limit:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize_limit, args.fsize_limit))
    app = QCoreApplication([])
    report: dict[str, object] = {"signals": [], "events": []}
    signals: list[list[str]] = report["signals"]  # type: ignore[assignment]

    class Store:
        def __init__(self) -> None:
            self.values = {"audio.input_device": "", "audio.output_device": ""}

        def get(self, key: str) -> object:
            return self.values[key]

        def set(self, key: str, value: object) -> None:
            self.values[key] = str(value)

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
    tcfg.port = 0
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

    store = Store()
    bridge = AudioBridge(store)
    for sig in ("device_lost", "device_changed", "no_device"):
        getattr(bridge, sig).connect(lambda text, s=sig: signals.append([s, text]))
    counters: list[tuple[int, int]] = []
    bridge.counters.connect(lambda u, o: counters.append((u, o)))
    bridge.start()
    report["inputs"] = bridge.input_devices()
    report["outputs"] = bridge.output_devices()
    try:
        bridge.set_input_device("No Such Microphone")
    except ValueError as exc:
        report["bad_input_error"] = str(exc)
    if args.input:  # chosen like the settings dialog does: validated, then persisted
        bridge.set_input_device(args.input)
    if args.output:
        bridge.set_output_device(args.output)
    if args.stored_output:  # as read from a settings file written in an earlier session
        store.values["audio.output_device"] = args.stored_output
    report["settings"] = dict(store.values)
    recorder = StereoRecorder(Path(args.out))
    recorder.failed.connect(lambda text: signals.append(["recorder_failed", text]))

    state = {"media": None, "disconnected": False, "t0": 0.0}

    class Call(pj.Call):
        def onCallState(self, prm: pj.OnCallStateParam) -> None:
            try:
                ci = self.getInfo()
                report["events"].append(ci.stateText)  # type: ignore[attr-defined]
                if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                    state["disconnected"] = True
            except Exception as exc:
                report["events"].append(f"error {exc!r}")  # type: ignore[attr-defined]

        def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
            try:
                ci = self.getInfo()
                for mi in ci.media:
                    if (mi.type == pj.PJMEDIA_TYPE_AUDIO
                            and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE):
                        media = self.getAudioMedia(mi.index)
                        first = state["media"] is None
                        state["media"] = media
                        bridge.attach(media)
                        if first:
                            state["t0"] = time.monotonic()
                            recorder.start(bridge.capture_media, media)
                            print("recording", flush=True)
            except Exception as exc:
                report["events"].append(f"media error {exc!r}")  # type: ignore[attr-defined]

    calls = [Call(acc)]
    if args.prepare:
        bridge.prepare()
    calls[0].makeCall(args.uri, pj.CallOpParam(True))

    timer = QTimer()
    timer.timeout.connect(lambda: ep.libHandleEvents(0))
    timer.start(10)
    proc = psutil.Process()
    threads0: dict[str, float] = {}

    def thread_cpu() -> dict[str, float]:
        """CPU seconds per OS thread name (QThreads and pjlib threads are named)."""
        out: dict[str, float] = {}
        for th in proc.threads():
            try:
                name = Path(f"/proc/self/task/{th.id}/comm").read_text().strip()
            except OSError:
                continue
            out[name] = out.get(name, 0.0) + th.user_time + th.system_time
        return out

    pause = [float(x) for x in args.pause.split(",")] if args.pause else []
    marks: dict[str, float] = {}
    levels: list[tuple[float, int, int]] = []
    report["levels"] = levels

    def pulse(*pargs: str) -> None:
        subprocess.run(["pactl", *pargs], check=False, timeout=5, capture_output=True)

    stall_n = 0
    if args.gil_stall:
        per = 1.0
        for _ in range(3):  # the fastest of three: a preempted calibration overestimates
            t_cal = time.thread_time()
            sum(range(2_000_000))
            per = min(per, (time.thread_time() - t_cal) / 2_000_000)
        stall_n = int(1.3 * args.gil_stall / 1000 / max(per, 1e-9))
    stalls: list[float] = []
    report["gil_stalls_ms"] = stalls

    def tick() -> None:
        if not state["t0"]:
            return
        t = time.monotonic() - float(state["t0"])
        if stall_n and t >= 1.0 + len(stalls) and t < args.seconds - 0.5:
            t1 = time.perf_counter()
            sum(range(stall_n))  # one C call: the GIL is not released inside it
            stalls.append(round((time.perf_counter() - t1) * 1000, 1))
        if args.switch_output and "switch" not in marks:
            name, at = args.switch_output.rsplit("@", 1)
            if t >= float(at):
                marks["switch"] = t
                bridge.set_output_device(name)
        levels.append((round(t, 2), len(bridge.mic_ring), len(bridge.speaker_ring)))
        if pause and "pause" not in marks and t >= pause[0]:
            marks["pause"] = recorder.pause()
        if pause and "resume" not in marks and t >= pause[1]:
            marks["resume"] = recorder.resume()
        if args.unplug_at and "unplug" not in marks and t >= args.unplug_at:
            marks["unplug"] = t
            mods = subprocess.run(["pactl", "list", "short", "modules"], text=True,
                                  capture_output=True, check=False).stdout
            key = args.plug.split()[1]  # e.g. sink_name=spare
            for line in mods.splitlines():
                cols = line.split("\t")
                if len(cols) > 2 and key in cols[2].split():
                    pulse("unload-module", cols[0])
        if args.replug_at and "replug" not in marks and t >= args.replug_at:
            marks["replug"] = t
            pulse("load-module", *args.plug.split())
        if args.mute_at and "mute" not in marks and t >= args.mute_at[0]:
            marks["mute"] = t
            bridge.set_muted(True)
        if args.mute_at and "unmute" not in marks and t >= args.mute_at[1]:
            marks["unmute"] = t
            bridge.set_muted(False)
        if "cpu0" not in marks and t >= 1.0:
            marks["cpu0"] = sum(proc.cpu_times()[:2])
            marks["wall0"] = time.monotonic()
            threads0.update(thread_cpu())
        if t >= args.seconds:
            finish()

    def finish() -> None:
        steps.stop()
        wall = time.monotonic() - marks["wall0"]
        report["cpu_percent"] = round(100 * (sum(proc.cpu_times()[:2]) - marks["cpu0"])
                                      / wall, 2)
        report["thread_cpu_percent"] = {
            name: round(100 * (cpu - threads0.get(name, 0.0)) / wall, 2)
            for name, cpu in thread_cpu().items()}
        res = recorder.stop()
        stats = bridge.detach()
        report["recording"] = {"path": str(res.path), "sha256": res.sha256,
                               "duration_s": res.duration_s, "size_bytes": res.size_bytes,
                               "paused_spans": res.paused_spans, "error": res.error}
        report["stats"] = {"mic_underruns": stats.mic_underruns,
                           "mic_overruns": stats.mic_overruns,
                           "speaker_underruns": stats.speaker_underruns,
                           "speaker_overruns": stats.speaker_overruns,
                           "port_errors": stats.port_errors,
                           "drift_adjustments": stats.drift_adjustments,
                           "native": stats.native}
        t0 = float(state["t0"] or 0.0)
        report["ring_events"] = {  # diagnosis: when, seconds into the call
            side: {"underruns": [round(t - t0, 2) for t in ring.underrun_times],
                   "overruns": [round(t - t0, 2) for t in ring.overrun_times],
                   "gaps": [(k, round(t - t0, 2), round(g * 1000)) for k, t, g in ring.gaps]}
            for side, ring in (("mic", bridge.mic_ring), ("headset", bridge.speaker_ring))}
        report["counters"] = counters[-1] if counters else None
        report["marks"] = marks
        calls[0].hangup(pj.CallOpParam(True))
        QTimer.singleShot(0, wait_end)

    def wait_end() -> None:
        deadline = time.monotonic() + 5
        while not state["disconnected"] and time.monotonic() < deadline:
            ep.libHandleEvents(20)
        app.quit()

    steps = QTimer()
    steps.timeout.connect(tick)
    steps.start(20)
    QTimer.singleShot(int((args.seconds + 15) * 1000), app.quit)  # never hang
    app.exec()
    timer.stop()
    bridge.shutdown()
    state["media"] = None
    calls.clear()
    acc.shutdown()
    del acc
    gc.collect()
    ep.libDestroy()
    print(json.dumps(report))
    return 0


def measure_main(seconds: float) -> int:
    """`python -m tests.integration.audio_rig measure 60`: one real call through the
    bridge (PulseAudio started here, 440 Hz into the mic, sipp 1 kHz tone peer, recording
    on); prints CPU of the call process and the bridge's under/overrun counts as JSON."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="audio-measure-") as tmp:
        root = Path(tmp)
        rig = PulseRig(root / "pulse")
        rig.start()
        peer = None
        try:
            tone = root / "tone.ul"
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-t", "ul", str(tone),
                            "synth", str(seconds + 30), "sine", "1000", "vol", "0.5"],
                           check=True)
            scen = root / "tone_uas.xml"
            scen.write_text(TONE_UAS.replace("{tone}", str(tone)))
            port = free_port()
            peer = subprocess.Popen(
                ["sipp", "-sf", str(scen), "-i", "127.0.0.1", "-p", str(port), "-mp",
                 str(free_port()), "-m", "1", "-nostdin"], cwd=root,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            rig.play_into_mic(sine_wav(root / "mic.wav", 440, seconds + 30))
            run = run_call_child(rig.env, f"sip:tone@127.0.0.1:{port}", root / "rec.wav",
                                 seconds, "--prepare")
            rep = run.report
            print(json.dumps({"returncode": run.returncode, "seconds": seconds,
                              "cpu_percent": rep.get("cpu_percent"),
                              "thread_cpu_percent": rep.get("thread_cpu_percent"),
                              "bridge": rep.get("stats"),
                              "ring_events": rep.get("ring_events"),
                              "recorded_s": (rep.get("recording") or {}).get("duration_s")}))
            return run.returncode
        finally:
            if peer is not None:
                stop_process(peer)
            rig.stop()


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["measure"]:
        raise SystemExit(measure_main(float(sys.argv[2]) if len(sys.argv) > 2 else 60))
    raise SystemExit(child_main(sys.argv[1:]))
