"""One call through the real SipEngine with the real headset bridge and stereo recorder,
run as a subprocess inside a private PulseAudio (tests/integration/audio_rig.PulseRig).

`python -m tests.integration.rig.engine_audio URI RECDIR SECONDS MIC HEADSET [load]` dials
URI via CallService, mutes from 3.0 to 3.6 s, hangs up after SECONDS and prints one JSON
line: outcome, the recording's path/sha256/duration, the call's state sequence and the
bridge's last under/overrun counters. With `load`, the GUI thread is kept busy 200 ms per
second in 20 ms slices (a synthetic stand-in). With `scroll=DB`, the real thing for the
benchmark: a real CustomerListModel over the customer database DB (e.g. 100k rows) in a
real QTableView, flung down at ~1800 rows/s (30 rows every 16 ms, pages fetched lazily as
the agent's list does) and wrapped to the top at the end, for the whole call; the JSON
then also holds `scrolled_rows`, `scroll_ticks` and `rows_loaded`.
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


class Scroller:
    """The customer list as the agent scrolls it: real model, real view, real database."""

    ROWS_PER_TICK = 30
    TICK_MS = 16

    def __init__(self, db_path: Path) -> None:
        from PySide6.QtWidgets import QTableView

        from agent_desktop.search import CustomerSearch
        from ui.customer_list_model import CustomerListModel

        if not db_path.is_file():
            raise SystemExit(f"customer database {db_path} does not exist")
        self.db = Database.open(db_path)
        self.model = CustomerListModel(CustomerSearch(self.db, PhoneNormalizer("CN")))
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.resize(900, 600)
        self.view.show()
        self.model.set_query("")
        self.ticks = 0
        self.rows = 0
        self.timer = QTimer()
        self.timer.setInterval(self.TICK_MS)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.timer.start()

    def _tick(self) -> None:
        bar = self.view.verticalScrollBar()
        if bar.value() >= bar.maximum() and not self.model.canFetchMore():
            bar.setValue(0)  # the whole list seen: start again at the top
        else:
            bar.setValue(bar.value() + self.ROWS_PER_TICK)  # per-item scrolling: rows
            self.rows += self.ROWS_PER_TICK
        self.view.viewport().repaint()  # paint now, as a visible window would
        self.ticks += 1

    def stop(self) -> dict[str, int]:
        self.timer.stop()
        out = {"scrolled_rows": self.rows, "scroll_ticks": self.ticks,
               "rows_loaded": self.model.rowCount()}
        self.view.close()
        self.db.close()
        return out


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
    mode = sys.argv[6] if len(sys.argv) > 6 else ""
    scroll = Scroller(Path(mode.split("=", 1)[1])) if mode.startswith("scroll=") else None
    if mode == "load":
        def busy() -> None:
            end = time.perf_counter() + 0.02
            while time.perf_counter() < end:
                pass

        load = QTimer()
        load.timeout.connect(busy)
        load.start(100)
    log_id = calls.dial(None, uri)
    if scroll is not None:
        scroll.start()
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
    scrolled = scroll.stop() if scroll is not None else {}
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
        **scrolled,
    }), flush=True)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
