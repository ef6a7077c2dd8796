"""Drive the real running app from a JSON scenario (the end-to-end test's hands and eyes).

Why in-process: under Xvfb there is no agent and xdotool cannot type Chinese through an
input method. Running QTest key clicks and `QInputMethodEvent` commit strings against the
real widgets of the real process (started exactly like an agent starts it) exercises the
same code paths, and screenshots are grabbed from the X screen itself.

Scenario file: {"result": path, "screenshots": dir, "timeout_s": 20, "steps": [...]}, each
step {"op": ..., ...}; see `_op_*` below. The result file gets {"ok", "steps", "error"}
and the app quits when the scenario ends (exit code stays 0; the test reads the result).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QInputMethodEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from ui.main_window import MainWindow

log = logging.getLogger(__name__)

Condition = Callable[[], bool]


class ScenarioError(RuntimeError):
    pass


class ScriptedScenario(QObject):
    def __init__(self, path: Path, window: MainWindow, app: QApplication) -> None:
        super().__init__(window)
        spec = json.loads(path.read_text(encoding="utf-8"))
        self._window = window
        self._app = app
        self._steps: list[dict[str, Any]] = list(spec["steps"])
        self._result_path = Path(spec["result"])
        self._shots = Path(spec.get("screenshots", path.parent))
        self._timeout = float(spec.get("timeout_s", 20))
        self._log: list[dict[str, Any]] = []
        self._index = -1
        self._last_synced = ""
        self._wait: Condition | None = None
        self._deadline = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(25)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._window.raise_()
        self._window.activateWindow()
        self._timer.start()
        self._next()

    # -- engine --------------------------------------------------------------------------

    def _next(self) -> None:
        self._index += 1
        if self._index >= len(self._steps):
            self._finish(True, "")
            return
        step = self._steps[self._index]
        handler = getattr(self, f"_op_{step['op']}", None)
        if handler is None:
            self._finish(False, f"unknown op {step['op']!r}")
            return
        try:
            info: dict[str, Any] = {"op": step["op"]}
            self._log.append(info)
            self._wait = handler(step, info)
            self._deadline = time.monotonic() + float(step.get("timeout_s", self._timeout))
        except Exception as exc:
            log.exception("scenario step %d failed", self._index)
            self._finish(False, f"step {self._index} ({step['op']}): {exc}")

    def _tick(self) -> None:
        if self._wait is None:
            self._next()
            return
        try:
            ok = self._wait()
        except Exception as exc:
            self._finish(False, f"step {self._index}: {exc}")
            return
        if ok:
            self._wait = None
            self._next()
        elif time.monotonic() > self._deadline:
            self._finish(False, f"step {self._index} ({self._steps[self._index]['op']}) "
                                "timed out waiting")

    def _finish(self, ok: bool, error: str) -> None:
        self._timer.stop()
        self._result_path.write_text(json.dumps(
            {"ok": ok, "error": error, "steps": self._log}, ensure_ascii=False, indent=1),
            encoding="utf-8")
        log.info("scenario finished ok=%s %s", ok, error)
        QTimer.singleShot(0, self._window.close)
        QTimer.singleShot(50, self._app.quit)

    # -- helpers -------------------------------------------------------------------------

    def _widget(self, name: str) -> QWidget:
        w = {"search": self._window.customer_list.search,
             "table": self._window.customer_list.table,
             "tag_input": self._window.detail.tags.input,
             "today": self._window.today.table}.get(name)
        if w is None:
            w = self._window.findChild(QWidget, name)
        if w is None:
            raise ScenarioError(f"no widget {name!r}")
        return w

    def _rows(self) -> list[str]:
        m = self._window.customer_list.model
        return [str(m.index(r, 0).data()) for r in range(min(m.rowCount(), 20))]

    def _search_settled(self, text: str) -> Condition:
        m = self._window.customer_list.model
        return lambda: m.query == text.strip()

    # -- operations (each returns a condition to wait for, or None) ------------------------

    def _op_wait_rows(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        m = self._window.customer_list.model
        return lambda: m.rowCount() >= int(step.get("min", 1))

    def _op_type(self, step: dict[str, Any], info: dict[str, Any]) -> Condition | None:
        w = self._widget(step["target"])
        w.setFocus(Qt.FocusReason.OtherFocusReason)
        QTest.keyClicks(w, step["text"], Qt.KeyboardModifier.NoModifier, 15)
        return self._search_settled(step["text"]) if step["target"] == "search" else None

    def _op_ime(self, step: dict[str, Any], info: dict[str, Any]) -> Condition | None:
        """An input method commits `text` (how Chinese arrives from Pinyin IMEs)."""
        w = self._widget(step["target"])
        w.setFocus(Qt.FocusReason.OtherFocusReason)
        preedit = QInputMethodEvent(step.get("preedit", ""), [])
        QApplication.sendEvent(w, preedit)
        commit = QInputMethodEvent()
        commit.setCommitString(step["text"])
        QApplication.sendEvent(w, commit)
        return self._search_settled(step["text"]) if step["target"] == "search" else None

    def _op_clear(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        w = self._widget("search")
        w.setFocus(Qt.FocusReason.OtherFocusReason)
        QTest.keyClick(w, Qt.Key.Key_Escape)
        return self._search_settled("")

    def _op_rows(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        """Record the visible result names; wait until at least `min` rows are shown."""
        m = self._window.customer_list.model

        def ready() -> bool:
            info["rows"] = self._rows()
            info["query"] = m.query
            return m.rowCount() >= int(step.get("min", 1))
        return ready

    def _op_key(self, step: dict[str, Any], info: dict[str, Any]) -> None:
        w = self._widget(step["target"])
        w.setFocus(Qt.FocusReason.OtherFocusReason)
        key = getattr(Qt.Key, f"Key_{step['key']}")
        QTest.keyClick(w, key)

    def _op_open_row(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        """Arrow down to row `row` of the results and press Enter (focus → detail pane)."""
        table = self._window.customer_list.table
        table.setFocus(Qt.FocusReason.OtherFocusReason)
        table.setCurrentIndex(table.model().index(0, 0))
        for _ in range(int(step.get("row", 0))):
            QTest.keyClick(table, Qt.Key.Key_Down)
        QTest.keyClick(table, Qt.Key.Key_Return)
        detail = self._window.detail

        def opened() -> bool:
            if detail.detail is None:
                return False
            info["customer_id"] = detail.detail.id
            info["name"] = detail.detail.name
            return True
        return opened

    def _op_add_tag(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        detail = self._window.detail
        w = detail.tags.input
        w.setFocus(Qt.FocusReason.OtherFocusReason)
        QTest.keyClicks(w, step["text"], Qt.KeyboardModifier.NoModifier, 10)
        QTest.keyClick(w, Qt.Key.Key_Return)

        def tagged() -> bool:
            tags = list(detail.detail.tags) if detail.detail else []
            info["tags"] = tags
            return step["text"] in tags and step["text"] in detail.tags.tags()
        return tagged

    def _op_set_field(self, step: dict[str, Any], info: dict[str, Any]) -> None:
        w = self._window.detail.inputs[step["field"]]
        w.setFocus(Qt.FocusReason.OtherFocusReason)
        w.selectAll()
        QTest.keyClicks(w, step["text"], Qt.KeyboardModifier.NoModifier, 10)

    def _op_save(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        detail = self._window.detail
        QTest.keyClick(detail.inputs["name"], Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
        return lambda: not detail.is_dirty()

    def _op_tab(self, step: dict[str, Any], info: dict[str, Any]) -> None:
        self._window.tabs.setCurrentIndex(int(step["index"]))

    def _op_wait(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        until = time.monotonic() + float(step.get("ms", 200)) / 1000
        return lambda: time.monotonic() >= until

    # -- the call workflow (needs the softphone; see agent_desktop.app._start_phone) --------

    def _softphone(self) -> Any:
        panel = self._window.findChild(QWidget, "softphonePanel")
        if panel is None:
            raise ScenarioError("the softphone is not running")
        return panel

    def _op_wait_phone(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        def up() -> bool:
            info["dialer"] = self._window.findChild(QWidget, "dialerPanel") is not None
            return self._window.findChild(QWidget, "softphonePanel") is not None
        return up

    def _op_dial(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        """Ctrl+D dials the selected customer; waits until the call is connected."""
        panel = self._softphone()
        # From the results table: a focused line edit takes Ctrl+D/Ctrl+E itself on X11
        # (delete / end of line), so the softphone's window shortcuts never see them there.
        table = self._window.customer_list.table
        table.setFocus(Qt.FocusReason.OtherFocusReason)
        QTest.keyClick(table, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)

        def connected() -> bool:
            info["state"] = panel.state_label.text()
            info["message"] = panel.message_label.text()
            call = panel.current_call
            info["call_log_id"] = call
            return call is not None and panel._calls.state_of(call) == "connected"
        return connected

    def _op_hangup(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        """Ctrl+E hangs up; waits for the wrap-up dialog that opens at hang-up."""
        table = self._window.customer_list.table
        table.setFocus(Qt.FocusReason.OtherFocusReason)
        QTest.keyClick(table, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
        return lambda: (d := self._window.findChild(QWidget, "wrapupDialog")) is not None \
            and d.isVisible()

    def _op_wrapup(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        """Pick disposition #n (as hotkey n would), type notes, save (Enter)."""
        dialog: Any = self._window.findChild(QWidget, "wrapupDialog")
        info["call_log_id"] = dialog.current_call()
        dialog.choose_disposition(int(step.get("disposition", 1)) - 1)
        dialog.notes.insertPlainText(step.get("notes", ""))
        dialog.save()
        return lambda: not dialog.isVisible()

    # -- sync (see agent_desktop.app._start_sync) -----------------------------------------

    def _op_wait_sync(self, step: dict[str, Any], info: dict[str, Any]) -> Condition:
        """Wait for the sync status `status` (default online); with `after_previous`, for
        a round that finished after the last recorded one."""
        previous = self._last_synced

        def ready() -> bool:
            widget: Any = self._window.findChild(QWidget, "syncStatus")
            if widget is None:
                return False
            info["status"] = widget.status
            info["last_synced"] = widget.last_synced_iso
            info["error"] = widget.error_text
            ok = widget.status == step.get("status", "online") and bool(widget.last_synced_iso)
            if ok and step.get("after_previous"):
                ok = widget.last_synced_iso != previous
            if ok:
                self._last_synced = widget.last_synced_iso
            return bool(ok)
        return ready

    def _op_screenshot(self, step: dict[str, Any], info: dict[str, Any]) -> None:
        """Grab the X screen (what a person would see), falling back to the window."""
        self._shots.mkdir(parents=True, exist_ok=True)
        path = self._shots / f"{step['name']}.png"
        QApplication.processEvents()
        screen = self._window.screen()
        pixmap = None
        if screen is not None:
            if step.get("window"):  # just the app window, e.g. for the README
                g = self._window.frameGeometry()
                pixmap = screen.grabWindow(0, g.x(), g.y(), g.width(), g.height())
            else:
                pixmap = screen.grabWindow(0)
        if pixmap is None or pixmap.isNull():
            pixmap = self._window.grab()
        if not pixmap.save(str(path)):
            raise ScenarioError(f"could not save {path}")
        info["path"] = str(path)
        info["size"] = [pixmap.width(), pixmap.height()]
