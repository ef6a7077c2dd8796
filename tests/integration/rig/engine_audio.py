"""One call through the real SipEngine with the real headset bridge and stereo recorder,
run as a subprocess inside a private PulseAudio (tests/integration/audio_rig.PulseRig).

`python -m tests.integration.rig.engine_audio URI RECDIR SECONDS MIC HEADSET [load]` dials
URI via CallService, mutes from 3.0 to 3.6 s, hangs up after SECONDS and prints one JSON
line: outcome, the recording's path/sha256/duration, the call's state sequence and the
bridge's last under/overrun counters. Everything runs inside `QApplication.exec()`, as in
the app: the call's steps are timers, not nested loops.

Loads on the GUI thread (the optional last argument):
- `load`: busy 200 ms per second in 20 ms slices (a synthetic stand-in).
- `scroll=DB` (the benchmark's): the customer list as the agent scrolls it. The real
  `CustomerListPanel` over a real CustomerListModel and customer database DB (e.g. 100k
  rows), flung down at ~1800 rows/s by wheel events posted to its viewport every 16 ms
  (Qt scrolls and paints in its event loop, pages are fetched lazily as in the app),
  wrapped to the top at the end, for the whole call.
- `scroll-repaint=DB`: session 2's harness, kept to compare: a bare QTableView whose scroll
  bar is set and whose viewport is `repaint()`ed from a Python timer slot every 16 ms.

Why the two differ: PySide6 releases the GIL in `QApplication.exec()`, `QEventLoop.exec()`
and `processEvents()` (`allow-thread` in its typesystem), so painting driven by the event
loop runs without the GIL except inside the model's Python methods, one call at a time;
`repaint()` is an ordinary binding call and keeps the GIL across the whole C++ paint
(py-spy: GUI thread holding the GIL ~80 % of the time vs ~40 %, docs/decisions.md).

With a scroll load the JSON also holds `scrolled_rows` (from the scroll bar's actual
movement), `scroll_ticks` and `rows_loaded`. Diagnostics in every mode: `gil_probe`, how
late a real-time Python thread sleeping 5 ms at a time got the GIL back (p50/p99/max ms,
what a port callback waits for); `gc`, garbage collections of 2 ms or more per generation
(count, longest ms: a collection holds the GIL); `events`, each ring under/overrun with
its time since CONNECTED and the GIL stall, collection and ring-side pauses around it;
`gc_frozen`, objects kept out of collection 3 s into the call and after it ended
(sip.audio.gc_guard).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent_desktop.phone import install_emit_refcount_fix

install_emit_refcount_fix()

from PySide6.QtCore import QCoreApplication, QPoint, QPointF, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QScrollBar, QTableView  # noqa: E402

from agent_desktop.calls import CallService  # noqa: E402
from agent_desktop.dialplan import DialPlan  # noqa: E402
from agent_desktop.phones import PhoneNormalizer  # noqa: E402
from agent_desktop.settings import Settings  # noqa: E402
from agent_desktop.store.db import Database  # noqa: E402
from sip.audio.bridge import AudioBridge  # noqa: E402
from sip.config import SipConfig  # noqa: E402
from sip.engine import SipEngine  # noqa: E402
from sip.recorder import StereoRecorder  # noqa: E402

TICK_MS = 16
ROWS_PER_TICK = 30  # 30 rows / 16 ms = 1875 rows/s: a fast fling through the list
ANGLE_PER_NOTCH = 120  # one wheel notch; Qt scrolls wheelScrollLines() (3) rows per notch
STALL_S = 0.02  # a GIL wait this long is noted with its time (a frame is 20 ms)


class _Scroller:
    """Shared: the database, the model, the wrap at the end and the row count."""

    def __init__(self, db_path: Path) -> None:
        from agent_desktop.search import CustomerSearch
        from ui.customer_list_model import CustomerListModel

        if not db_path.is_file():
            raise SystemExit(f"customer database {db_path} does not exist")
        self.db = Database.open(db_path)
        self.model = CustomerListModel(CustomerSearch(self.db, PhoneNormalizer("CN")))
        self.ticks = 0
        self.rows = 0
        self.wraps = 0
        self._last = 0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def bar(self) -> QScrollBar:
        raise NotImplementedError

    def start(self) -> None:
        self._last = self.bar().value()
        self.timer.start()

    def _count(self) -> None:
        value = self.bar().value()
        if value > self._last:
            self.rows += value - self._last
        self._last = value

    def _tick(self) -> None:
        self.ticks += 1
        self._count()
        bar = self.bar()
        if bar.value() >= bar.maximum() and not self.model.canFetchMore():
            bar.setValue(0)  # the whole list seen: start again at the top
            self._last = 0
            self.wraps += 1
            return
        self._scroll()

    def _scroll(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def stop(self) -> dict[str, int]:
        self.timer.stop()
        self._count()
        out = {"scrolled_rows": self.rows, "scroll_ticks": self.ticks,
               "scroll_wraps": self.wraps, "rows_loaded": self.model.rowCount()}
        self.close()
        self.db.close()
        return out


class WheelScroller(_Scroller):
    """The real list panel, scrolled by wheel events that Qt handles in its event loop."""

    def __init__(self, db_path: Path) -> None:
        super().__init__(db_path)
        from ui.customer_list_panel import CustomerListPanel

        self.panel = CustomerListPanel(self.model)
        self.panel.resize(900, 640)
        self.panel.show()
        self.panel.load()
        self.view: QTableView = self.panel.table

    def bar(self) -> QScrollBar:
        return self.view.verticalScrollBar()

    def _scroll(self) -> None:
        # Qt scrolls at most a page per wheel event: split the tick's rows into events no
        # larger than a page (the panel shows ~24 rows).
        per_notch = max(1, QCoreApplication.instance().wheelScrollLines())  # type: ignore[union-attr]
        page = max(1, self.bar().pageStep())
        left = ROWS_PER_TICK
        viewport = self.view.viewport()
        pos = QPointF(viewport.width() / 2, viewport.height() / 2)
        glob = QPointF(viewport.mapToGlobal(pos.toPoint()))
        while left > 0:
            rows = min(left, page)
            angle = -(rows * ANGLE_PER_NOTCH) // per_notch
            ev = QWheelEvent(pos, glob, QPoint(0, 0), QPoint(0, angle),
                             Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                             Qt.ScrollPhase.NoScrollPhase, False)
            QCoreApplication.postEvent(viewport, ev)
            left -= rows

    def close(self) -> None:
        self.panel.close()


class RepaintScroller(_Scroller):
    """Session 2's harness: a bare QTableView, scroll bar set and repainted from Python."""

    def __init__(self, db_path: Path) -> None:
        super().__init__(db_path)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.resize(900, 600)
        self.view.show()
        self.model.set_query("")

    def bar(self) -> QScrollBar:
        return self.view.verticalScrollBar()

    def _scroll(self) -> None:
        self.bar().setValue(self.bar().value() + ROWS_PER_TICK)  # per-item scrolling: rows
        self.view.viewport().repaint()  # paint now, from Python: GIL held throughout

    def close(self) -> None:
        self.view.close()


class GilProbe:
    """A diagnostic thread that sleeps 5 ms at a time and notes how late it got the GIL
    back, at the audio threads' scheduling (real-time where allowed): what a port callback
    waits for when it needs the GIL. Costs ~200 short GIL acquisitions a second."""

    SLEEP_S = 0.005

    def __init__(self) -> None:
        self.late: list[float] = []
        self.stalls: list[tuple[float, float]] = []  # (monotonic start, length s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gil-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        # As the audio threads are raised; where refused it runs at normal priority.
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_RR, os.sched_param(4))
        while not self._stop.is_set():
            t = time.monotonic()
            time.sleep(self.SLEEP_S)
            late = time.monotonic() - t - self.SLEEP_S
            self.late.append(late)
            if late > STALL_S:
                self.stalls.append((t + self.SLEEP_S, late))

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        late = sorted(self.late)
        if not late:
            return {}

        def ms(q: float) -> float:
            return round(1000 * late[min(len(late) - 1, int(q * len(late)))], 2)

        return {"n": len(late), "p50_ms": ms(0.5), "p99_ms": ms(0.99),
                "max_ms": round(1000 * late[-1], 2),
                "over_20ms": sum(1 for x in late if x > 0.02)}


class GcWatch:
    """Notes every garbage collection of 2 ms or more (a collection holds the GIL)."""

    MIN_S = 0.002

    def __init__(self) -> None:
        self.runs: list[tuple[float, float, int]] = []  # (monotonic start, length s, gen)
        self._t0 = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.monotonic()
        elif (took := time.monotonic() - self._t0) >= self.MIN_S:
            self.runs.append((self._t0, took, info["generation"]))

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> dict[str, Any]:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        return {f"gen{g}": [sum(1 for r in self.runs if r[2] == g),
                            round(1000 * max([r[1] for r in self.runs if r[2] == g] or [0]), 1)]
                for g in (0, 1, 2)}


def explain(events: list[tuple[str, float]], gaps: list[tuple[str, float, float]],
            probe: GilProbe, gcw: GcWatch, t0: float) -> list[dict[str, Any]]:
    """Each under/overrun with what was happening around it: the GIL stall and the
    collection (if any) from 20 ms before to 60 ms after, and every long pause of a ring's
    reader or writer (`gaps`: (side, when it came back, length)) that ended in that span."""
    def near(at: float, start: float, length: float) -> bool:
        return start - 0.02 <= at <= start + length + 0.06

    out = []
    for what, at in sorted(events, key=lambda e: e[1]):
        stall = next((late for start, late in probe.stalls if near(at, start, late)), None)
        run = next((took for start, took, _g in gcw.runs if near(at, start, took)), None)
        out.append({"what": what, "t_s": round(at - t0, 2),
                    "gil_stall_ms": None if stall is None else round(1000 * stall),
                    "gc_ms": None if run is None else round(1000 * run),
                    "gaps": [f"{side} {round(1000 * length)} ms" for side, back, length in gaps
                             if near(at, back - length, length)]})
    return out


def make_scroller(mode: str) -> _Scroller | None:
    """`scroll=DB` → WheelScroller, `scroll-repaint=DB` → RepaintScroller, else None."""
    kind, _, path = mode.partition("=")
    if kind == "scroll":
        return WheelScroller(Path(path))
    if kind == "scroll-repaint":
        return RepaintScroller(Path(path))
    return None


Step = Iterator[float]  # a call script yields how many seconds to wait before going on


def run_script(script: Step, done: Callable[[], None]) -> None:
    """Drive `script` from the running event loop: each yielded delay is a timer."""
    def step() -> None:
        try:
            delay = next(script)
        except StopIteration:
            done()
            return
        QTimer.singleShot(max(0, int(delay * 1000)), step)

    QTimer.singleShot(0, step)


def busy_load() -> QTimer:
    """The synthetic stand-in: 20 ms of Python every 100 ms on the GUI thread."""
    def busy() -> None:
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            pass

    load = QTimer()
    load.timeout.connect(busy)
    load.start(100)
    return load


class RingSampler:
    """Once a second (its own thread, so a busy GUI thread cannot skew it): each ring's
    level, its lowest level at a read during that second, and the bytes written (the
    producer's clock) and asked for (the consumer's clock, padding included). `drift()`
    fits the byte totals against time.monotonic(): a producer and consumer whose rates
    differ by X ppm move the fill level by X * 32 bytes per second of call."""

    def __init__(self, rings: dict[str, Any]) -> None:
        self.rings = rings
        self.rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ring-sampler", daemon=True)
        self.t0 = 0.0

    def start(self, t0: float) -> None:
        self.t0 = t0
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            row: dict[str, Any] = {"t": round(time.monotonic() - self.t0, 3)}
            for side, ring in self.rings.items():
                row[side] = [len(ring), ring.take_window_min(), ring.bytes_written,
                             ring.bytes_read, getattr(ring, "drift_adjustments", 0)]
            self.rows.append(row)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        return {"ring_levels": self.rows, "drift": self.drift()}

    def drift(self, skip_s: float = 5.0) -> dict[str, Any]:
        """Per side: producer and consumer rate in ppm off 32000 B/s (least squares
        over the rows after `skip_s`, when the streams have settled), and their
        difference (positive: the ring fills)."""
        rows = [r for r in self.rows if r["t"] >= skip_s]
        out: dict[str, Any] = {}
        if len(rows) < 3:
            return out
        ts = [r["t"] for r in rows]
        mt = sum(ts) / len(ts)
        den = sum((t - mt) ** 2 for t in ts)

        def ppm(ys: list[int]) -> float:
            my = sum(ys) / len(ys)
            slope = sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / den
            return round((slope / 32000 - 1) * 1e6, 1)

        for side in self.rings:
            prod = ppm([r[side][2] for r in rows])
            cons = ppm([r[side][3] for r in rows])
            out[side] = {"producer_ppm": prod, "consumer_ppm": cons,
                         "fill_ppm": round(prod - cons, 1),
                         "level_min_ms": [r[side][1] // 32 for r in self.rows]}
        return out


def main() -> int:
    uri, recdir, seconds, mic, headset = (sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]),
                                          sys.argv[4], sys.argv[5])
    app = QApplication([sys.argv[0], "-platform", "offscreen"])
    app.setQuitOnLastWindowClosed(False)  # closing the list must not end the script
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
    scroll = make_scroller(mode)
    probe = GilProbe()
    gcw = GcWatch()
    load = busy_load() if mode == "load" else None
    out: dict[str, Any] = {}
    sampler = RingSampler({"mic": bridge.mic_ring, "headset": bridge.speaker_ring})

    def call() -> Step:
        log_id = calls.dial(None, uri)
        if scroll is not None:
            scroll.start()
        probe.start()
        gcw.start()
        t0 = time.monotonic()
        while "connected" not in states and time.monotonic() - t0 < 5:
            yield 0.01
        connected_at = time.monotonic()
        sampler.start(connected_at)
        yield 3.0
        calls.set_mute(log_id, True)
        mute_at = time.monotonic() - connected_at
        frozen_in_call = gc.get_freeze_count()
        yield 0.6
        calls.set_mute(log_id, False)
        out["mute"] = [mute_at, time.monotonic() - connected_at]
        yield max(0.0, seconds - (time.monotonic() - connected_at))
        events = [(f"{side} {kind}", at) for side, ring in (("mic", bridge.mic_ring),
                                                             ("headset", bridge.speaker_ring))
                  for kind, times in (("underrun", ring.underrun_times),
                                      ("overrun", ring.overrun_times)) for at in tuple(times)]
        gaps = [(f"{side} {kind}", back, length)
                for side, ring in (("mic", bridge.mic_ring), ("headset", bridge.speaker_ring))
                for kind, back, length in tuple(ring.gaps)]
        out["drift_adjustments"] = {"mic": bridge.mic_ring.drift_adjustments,
                                    "headset": bridge.speaker_ring.drift_adjustments}
        out["audio_path"] = "native" if bridge.native is not None else "python"
        # The first moments of each stream are counted apart by the rings; the bench adds
        # them back so that its `underruns` is every underrun of the call.
        out["startup"] = {side: {"underruns": ring.startup_underruns,
                                 "overruns": ring.startup_overruns}
                          for side, ring in (("mic", bridge.mic_ring),
                                             ("headset", bridge.speaker_ring))}
        calls.hangup(log_id)
        out.update(sampler.stop())
        out["gc"] = gcw.stop()
        out["gil_probe"] = probe.stop()
        out["events"] = explain(events, gaps, probe, gcw, connected_at)
        out["t0_monotonic"] = connected_at
        if scroll is not None:
            out.update(scroll.stop())
        if load is not None:
            load.stop()
        t1 = time.monotonic()
        while not (ended and recs) and time.monotonic() - t1 < 5:
            yield 0.02
        out["gc_frozen"] = [frozen_in_call, gc.get_freeze_count()]

    run_script(call(), app.quit)
    app.exec()
    engine.stop()
    bridge.shutdown()
    db.close()
    info = recs[0] if recs else None
    print(json.dumps({
        "states": states, "ended": ended[0][1:] if ended else None,
        "recording": None if info is None else {
            "path": info.path, "sha256": info.sha256,  # type: ignore[attr-defined]
            "duration_s": info.duration_s},  # type: ignore[attr-defined]
        "counters": counters[-1] if counters else None,
        **out,
    }), flush=True)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
