"""Throughput benchmark: agent actions and non-talk UI seconds per call, power dialer vs a
manual flow, and how fast the wrap-up dialog opens after hang-up.

    .venv/bin/python -m tests.bench.throughput [--calls 20] [--talk-s 0.3]
    (or `python -m tests.bench throughput` once registered in tests/bench/__main__.py)

One process, the real parts: our pjsua2 SipEngine (with the stereo recorder) dialling our
simulated customer line (`sip.simline`, started here on loopback), CallService, the real
PowerDialer + WrapupService + WrapupDialog (offscreen Qt), keys sent with QTest to the
real widgets. Every key or click the script sends is one agent action.

- Power mode over `--calls` customers: the dialer dials; after `--talk-s` the agent hangs
  up (1 key), presses a disposition hotkey (1 key) and Enter (1 key); the dialer dials the
  next as soon as the wrap-up is saved.
- Manual flow over the same number of customers, in the same run: click the customer in a
  list, click Dial, hang up, click "Log call", which builds a plain form; click the
  disposition combo, pick an item, click into the notes, type a short note, click Save.
- `ui_overhead_s_per_call` = (wall time − talk time) / calls: ringing, set-up, the app's
  own work and the scripted keys (the script has no human think time).
- `wrapup_open_ms_p95`: CallService.call_ended → the reused dialog filled, shown and
  painted (`repaint()`, so unrelated queued events such as the recording's hash are not
  counted); `wrapup_open_rebuild_ms_p95` builds a new WrapupDialog each time (the
  naive way) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TARGETS = {"actions_per_call": 3.0, "ui_overhead_s_per_call": 2.0, "wrapup_open_ms_p95": 100.0}
NOTE = "call back ok"


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


class Bench:
    """Holds the app parts; `power()` and `manual()` each run one scripted session."""

    def __init__(self, tmp: Path, calls: int, talk_s: float) -> None:
        from PySide6.QtWidgets import QApplication

        from agent_desktop.calls import CallService
        from agent_desktop.dialplan import DialPlan
        from agent_desktop.phones import PhoneNormalizer
        from agent_desktop.settings import Settings
        from agent_desktop.store.db import Database
        from agent_desktop.store.models import Customer, PhoneNumber
        from agent_desktop.wrapup import WrapupService
        from sip.config import SipConfig
        from sip.engine import SipEngine
        from sip.recorder import StereoRecorder
        from tests.integration.rig.simline import SimLine
        from ui.wrapup_dialog import WrapupDialog

        self.app = QApplication.instance() or QApplication([])
        self.talk_ms = int(talk_s * 1000)
        self.n = calls
        self.line = SimLine(ring_ms=200)
        self.db = Database.open(tmp / "agent.sqlite3")
        self.settings = Settings.load(tmp / "settings.toml")
        self.settings.set("dialer.calling_hours", "00:00-23:59")
        self.customers: list[int] = []
        with self.db.transaction() as s:
            for i in range(2 * calls):
                number = f"+86138{i:07d}0"  # a valid CN mobile; last digit 0: the line answers
                c = Customer(name=f"Bench {i:03d}", name_key=f"bench {i:03d}")
                c.phones.append(PhoneNumber(raw=number, e164=number, valid=True))
                s.add(c)
                s.flush()
                self.customers.append(c.id)
        self.engine = SipEngine(SipConfig(bind_address="127.0.0.1", rtp_timeout_s=10,
                                          recordings_dir=tmp / "recordings"),
                                recorder_factory=StereoRecorder)
        self.engine.start()

        class NoCallers:
            def caller_id(self, number: str) -> int | None:
                return None

        self.calls = CallService(self.db, self.engine,
                                 DialPlan(PhoneNormalizer("CN"), self.line.domain), NoCallers(),
                                 recordings_dir=tmp / "recordings")
        self.wrapups = WrapupService(self.db, self.settings, agent="bench")
        self.dialog = WrapupDialog(self.wrapups)
        self.actions = 0
        self.talk_s_total = 0.0

    def close(self) -> None:
        self.engine.stop()
        self.line.stop()
        self.db.close()

    # ------------------------------------------------------------------ helpers
    def key(self, widget: Any, key: Any, modifier: Any = None) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        self.actions += 1
        QTest.keyClick(widget, key, modifier or Qt.KeyboardModifier.NoModifier)

    def click(self, widget: Any, pos: Any = None) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        self.actions += 1
        if pos is None:
            QTest.mouseClick(widget, Qt.MouseButton.LeftButton)
        else:
            QTest.mouseClick(widget, Qt.MouseButton.LeftButton,
                             Qt.KeyboardModifier.NoModifier, pos)

    def wait(self, done: Callable[[], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError("benchmark step timed out")
            self.app.processEvents()
            time.sleep(0.001)

    def hang_up_after_talk(self, log_id: int) -> None:
        """Talk for talk_ms after CONNECTED, then the agent's hang-up key (1 action)."""
        from agent_desktop.phone import CallState

        connected: list[float] = []

        def on_state(lid: int, state: str) -> None:
            if lid == log_id and state == CallState.CONNECTED and not connected:
                connected.append(time.monotonic())

        self.calls.call_state.connect(on_state)
        self.wait(lambda: bool(connected) or self.calls.state_of(log_id) is None)
        self.calls.call_state.disconnect(on_state)
        if not connected:
            raise RuntimeError(f"call {log_id} was not answered")
        self.wait(lambda: time.monotonic() - connected[0] >= self.talk_ms / 1000)
        self.talk_s_total += time.monotonic() - connected[0]
        self.actions += 1
        self.calls.hangup(log_id)

    # ------------------------------------------------------------------ power mode
    def power(self) -> dict[str, Any]:
        from PySide6.QtCore import Qt

        from agent_desktop.dialer import DialerMode, DialerState, PowerDialer

        dialed: list[int] = []
        opened_ms: list[float] = []
        dialer = PowerDialer(self.db, self.settings,
                             lambda cid, number: dialed.append(self.calls.dial(cid, number))  # type: ignore[func-returns-value]
                             or dialed[-1], can_dial=self.wrapups.can_dial)
        dialer.set_mode(DialerMode.POWER)
        self.calls.call_ended.connect(dialer.on_call_ended)
        self.wrapups.wrapup_saved.connect(dialer.on_wrapup_saved)

        def on_ended(log_id: int, outcome: str, _reason: str) -> None:
            if outcome != "answered":
                return
            t0 = time.perf_counter()
            self.dialog.show_wrapup(log_id)
            self.dialog.repaint()  # painted now, without running unrelated queued events
            opened_ms.append((time.perf_counter() - t0) * 1000)

        self.calls.call_ended.connect(on_ended)
        self.actions = 0
        self.talk_s_total = 0.0
        dialer.load(self.customers[: self.n])
        start = time.monotonic()
        dialer.start()
        handled = 0
        while dialer.state is not DialerState.FINISHED:
            self.wait(lambda h=handled: len(dialed) > h or dialer.state is DialerState.FINISHED)  # type: ignore[misc]
            if dialer.state is DialerState.FINISHED:
                break
            log_id = dialed[handled]
            handled += 1
            self.hang_up_after_talk(log_id)
            self.wait(lambda lid=log_id: self.dialog.isVisible()  # type: ignore[misc]
                      and self.dialog.current_call() == lid)
            self.key(self.dialog.dispositions, Qt.Key.Key_1)
            self.key(self.dialog.dispositions, Qt.Key.Key_Return)
        wall = time.monotonic() - start
        self.calls.call_ended.disconnect(on_ended)
        self.calls.call_ended.disconnect(dialer.on_call_ended)
        self.wrapups.wrapup_saved.disconnect(dialer.on_wrapup_saved)
        n = len(dialed)
        if n != self.n:
            raise RuntimeError(f"power mode dialled {n} of {self.n} customers: "
                               + "; ".join(e.note for e in dialer.entries if e.note))
        return {"calls": n, "actions": self.actions, "wall_s": wall,
                "talk_s": self.talk_s_total, "wrapup_open_ms": opened_ms}

    # ------------------------------------------------------------------ manual flow
    def manual(self) -> dict[str, Any]:
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import (
            QComboBox,
            QDialog,
            QListWidget,
            QPlainTextEdit,
            QPushButton,
            QVBoxLayout,
            QWidget,
        )

        from agent_desktop.wrapup import WrapupData

        window = QWidget()
        lay = QVBoxLayout(window)
        listing = QListWidget()
        ids = self.customers[self.n: 2 * self.n]
        for cid in ids:
            listing.addItem(f"customer {cid}")
        dial_button = QPushButton("Dial")
        log_button = QPushButton("Log call")
        for w in (listing, dial_button, log_button):
            lay.addWidget(w)
        window.resize(400, 600)
        window.show()
        dispositions = self.wrapups.dispositions()
        ended: list[int] = []
        self.calls.call_ended.connect(lambda lid, *_a: ended.append(lid))
        self.actions = 0
        self.talk_s_total = 0.0
        start = time.monotonic()
        for row, cid in enumerate(ids):
            item = listing.item(row)
            listing.scrollToItem(item)
            self.click(listing.viewport(), listing.visualItemRect(item).center())
            if listing.currentRow() != row:
                raise RuntimeError(f"the click did not select row {row}")
            number = self.calls.customer_numbers(cid)[0].e164 or ""
            log_ids: list[int] = []
            dial_button.clicked.connect(
                lambda _=False, c=cid, num=number, out=log_ids: out.append(self.calls.dial(c, num)))
            self.click(dial_button)
            dial_button.clicked.disconnect()
            log_id = log_ids[0]
            self.hang_up_after_talk(log_id)
            self.wait(lambda lid=log_id: lid in ended)  # type: ignore[misc]
            form = QDialog(window)  # the usual "log call" form, built when asked for
            combo = QComboBox(form)
            combo.addItems(dispositions)
            notes = QPlainTextEdit(form)
            save = QPushButton("Save", form)
            flay = QVBoxLayout(form)
            for w in (combo, notes, save):  # type: ignore[assignment]
                flay.addWidget(w)
            save.clicked.connect(lambda _=False, lid=log_id, c=combo, t=notes, f=form: (
                self.wrapups.save(lid, WrapupData(disposition=c.currentText(),
                                                  notes=t.toPlainText())), f.close()))
            log_button.clicked.connect(form.show)
            self.click(log_button)
            log_button.clicked.disconnect()
            self.app.processEvents()
            self.click(combo)  # opens the drop-down
            self.wait(lambda c=combo: c.view().isVisible())  # type: ignore[misc]
            self.key(combo.view(), Qt.Key.Key_Down)
            self.key(combo.view(), Qt.Key.Key_Return)
            self.wait(lambda c=combo: not c.view().isVisible())  # type: ignore[misc]
            if combo.currentIndex() != 1:
                raise RuntimeError("the click did not choose the disposition")
            self.click(notes)
            for ch in NOTE:
                self.key(notes, ch)
            self.click(save)
            form.deleteLater()
        wall = time.monotonic() - start
        window.close()
        return {"calls": len(ids), "actions": self.actions, "wall_s": wall,
                "talk_s": self.talk_s_total}

    def rebuild_open_ms(self, samples: int) -> list[float]:
        """Naive baseline: a new WrapupDialog per call (construction + first show)."""
        from ui.wrapup_dialog import WrapupDialog

        pending = [p.call_log_id for p in self.wrapups.pending_drafts()]
        with self.db.session() as s:
            from sqlalchemy import select

            from agent_desktop.store.models import CallLog

            ids = list(s.scalars(select(CallLog.id).order_by(CallLog.id.desc()).limit(samples)))
        out = []
        for lid in ids or pending:
            t0 = time.perf_counter()
            d = WrapupDialog(self.wrapups)
            d.show_wrapup(lid)
            d.repaint()
            out.append((time.perf_counter() - t0) * 1000)
            d.hide()
            d.deleteLater()
        return out


def run(argv: Sequence[str], bench_dir: Path) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m tests.bench throughput")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--talk-s", type=float, default=0.3)
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        bench = Bench(Path(tmp), args.calls, args.talk_s)
        try:
            power = bench.power()
            manual = bench.manual()
            rebuild = bench.rebuild_open_ms(min(20, args.calls))
        finally:
            bench.close()
    n, m = max(1, power["calls"]), max(1, manual["calls"])
    result = {
        "calls": power["calls"],
        "talk_s_per_call": round(args.talk_s, 3),
        "actions_per_call": round(power["actions"] / n, 2),
        "ui_overhead_s_per_call": round((power["wall_s"] - power["talk_s"]) / n, 3),
        "wrapup_open_ms_p95": round(p95(power["wrapup_open_ms"]), 2),
        "wrapup_open_ms_p50": round(statistics.median(power["wrapup_open_ms"] or [0.0]), 2),
        "wrapup_open_rebuild_ms_p95": round(p95(rebuild), 2),
        "manual_calls": manual["calls"],
        "manual_actions_per_call": round(manual["actions"] / m, 2),
        "manual_ui_overhead_s_per_call": round((manual["wall_s"] - manual["talk_s"]) / m, 3),
        "targets": TARGETS,
    }
    result["meets_targets"] = all(result[k] <= v for k, v in TARGETS.items())
    return result


def main() -> int:
    bench_dir = Path(".bench")
    result = run(sys.argv[1:], bench_dir)
    bench_dir.mkdir(exist_ok=True)
    (bench_dir / "throughput.json").write_text(json.dumps(result, indent=2) + "\n",
                                               encoding="utf-8")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
