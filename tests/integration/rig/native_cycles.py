"""Start and stop the real SipEngine repeatedly with calls in flight on the native media
path (run as a subprocess, under a private PulseAudio).

`python -m tests.integration.rig.native_cycles DOMAIN CYCLES RECDIR` prints one `CYCLE`
line per round and `DONE` at the end. Each round: a connected call with the headset on
native ports and the recorder on native taps, a ringing call, and one just dialled, all
in flight when `engine.stop()` runs; the bridge itself stays up across rounds (as in the
app). An abort in pjsua2's teardown (a port freed too early, a pjsua call from the wrong
thread) shows as a non-zero exit code.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication

from agent_desktop.phone import CallState
from sip.audio.bridge import AudioBridge
from sip.config import SipConfig
from sip.engine import SipEngine
from sip.recorder import StereoRecorder
from tests.integration.rig.engine_cycles import Seen, pump


class Store:
    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str) -> object:
        return self.values.get(key, "")

    def set(self, key: str, value: object) -> None:
        self.values[key] = value


def main() -> int:
    domain, cycles, recdir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    app = QCoreApplication([])
    bridge = AudioBridge(Store())
    bridge.start()
    for n in range(1, cycles + 1):
        engine = SipEngine(SipConfig(bind_address="127.0.0.1", recordings_dir=recdir / str(n)),
                           bridge=bridge, recorder_factory=StereoRecorder)
        seen = Seen()
        engine.call_state_changed.connect(seen.add)
        engine.start()
        answered = engine.dial(f"sip:answer@{domain}")
        ringing = engine.dial(f"sip:noanswer@{domain}")

        def up(s: Seen = seen, a: int = answered, r: int = ringing) -> bool:
            return s.reached(a, CallState.CONNECTED) and s.reached(r, CallState.RINGING)

        pump(app, time.monotonic() + 5, up)
        pump(app, time.monotonic() + 1.0, lambda: False)  # audio flows for a second
        attached = bridge.attached
        mic_calls = getattr(bridge.capture_media, "calls", 0)
        flying = engine.dial(f"sip:answer@{domain}")
        engine.stop()
        ended = all(seen.reached(c, CallState.DISCONNECTED) for c in (answered, ringing, flying))
        wavs = [p.stat().st_size for p in (recdir / str(n)).rglob("*.wav")]
        print(f"CYCLE {n} native={bridge.native is not None} attached={attached} "
              f"mic_port_calls={mic_calls} detached={not bridge.attached} "
              f"all_ended={ended} recordings={wavs}", flush=True)
        del engine
    bridge.shutdown()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
