"""One call through the real SipEngine with the real headset bridge and stereo recorder,
run as a subprocess inside a private PulseAudio (tests/integration/audio_rig.PulseRig).

`python -m tests.integration.rig.engine_audio URI RECDIR SECONDS MIC HEADSET [load]` dials
URI via CallService, mutes from 3.0 to 3.6 s, hangs up after SECONDS and prints one JSON
line: outcome, the recording's path/sha256/duration, the call's state sequence and the
bridge's last under/overrun counters. With `load`, the GUI thread is kept busy 200 ms per
second in 20 ms slices (what scrolling a long customer list costs), for the benchmark.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from agent_desktop.phone import install_emit_refcount_fix

install_emit_refcount_fix()

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from agent_desktop.calls import CallService  # noqa: E402
from agent_desktop.dialplan import DialPlan  # noqa: E402
from agent_desktop.phones import PhoneNormalizer  # noqa: E402
from agent_desktop.settings import Settings  # noqa: E402
from agent_desktop.store.db import Database  # noqa: E402
from sip.audio.bridge import AudioBridge  # noqa: E402
from sip.config import SipConfig  # noqa: E402
from sip.engine import SipEngine  # noqa: E402
from sip.recorder import StereoRecorder  # noqa: E402


def wait(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def main() -> int:
    uri, recdir, seconds, mic, headset = (sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]),
                                          sys.argv[4], sys.argv[5])
    app = QApplication([sys.argv[0], "-platform", "offscreen"])
    tmp = Path(tempfile.mkdtemp())
    settings = Settings.load(tmp / "settings.toml")
    settings.set("audio.input_device", mic)
    settings.set("audio.output_device", headset)
    bridge = AudioBridge(settings)
    bridge.start()
    engine = SipEngine(SipConfig(bind_address="127.0.0.1", recordings_dir=recdir,
                                 codecs=("PCMU",)),
                       bridge=bridge, recorder_factory=StereoRecorder)
    engine.start()
    db = Database.open(tmp / "agent.sqlite3")

    class NoCallers:
        def caller_id(self, number: str) -> int | None:
            return None

    calls = CallService(db, engine, DialPlan(PhoneNormalizer("CN"), "127.0.0.1"), NoCallers())
    states: list[str] = []
    ended: list[tuple[int, str, str]] = []
    recs: list[object] = []
    calls.call_state.connect(lambda _i, st: states.append(st))
    calls.call_ended.connect(lambda i, o, r: ended.append((i, o, r)))
    engine.recording_finished.connect(lambda _c, info: recs.append(info))
    counters: list[tuple[int, int]] = []
    bridge.counters.connect(lambda u, o: counters.append((u, o)))
    if len(sys.argv) > 6 and sys.argv[6] == "load":
        def busy() -> None:
            end = time.perf_counter() + 0.02
            while time.perf_counter() < end:
                pass

        load = QTimer()
        load.timeout.connect(busy)
        load.start(100)
    log_id = calls.dial(None, uri)
    t0 = time.monotonic()
    while "connected" not in states and time.monotonic() - t0 < 5:
        wait(0.01)
    connected_at = time.monotonic()
    wait(3.0)
    calls.set_mute(log_id, True)
    mute_at = time.monotonic() - connected_at
    wait(0.6)
    calls.set_mute(log_id, False)
    unmute_at = time.monotonic() - connected_at
    wait(max(0.0, seconds - (time.monotonic() - connected_at)))
    calls.hangup(log_id)
    t1 = time.monotonic()
    while not (ended and recs) and time.monotonic() - t1 < 5:
        wait(0.02)
    engine.stop()
    bridge.shutdown()
    db.close()
    info = recs[0] if recs else None
    print(json.dumps({
        "states": states, "ended": ended[0][1:] if ended else None,
        "recording": None if info is None else {
            "path": info.path, "sha256": info.sha256,  # type: ignore[attr-defined]
            "duration_s": info.duration_s},  # type: ignore[attr-defined]
        "mute": [mute_at, unmute_at],
        "counters": counters[-1] if counters else None,
    }), flush=True)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
