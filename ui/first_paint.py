"""First paint of the customer list: run deferred start-up work after it, and the benchmark
hook that reports it.

Why defer: an agent waits for rows on screen; the Today list, follow-up reminders, status-bar
figures and similar are not needed for that first frame, so they run right after it.
The benchmark measures from the spawn of the process, not from `main()`, so interpreter
start-up and imports count — that is what an agent waits for.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QTableView, QWidget

log = logging.getLogger(__name__)


class StartupTimer:
    """Milliseconds per start-up phase, logged once the app is up (support and the
    first-paint budget need to know where start-up time goes).

    Each phase is logged as wall/CPU milliseconds: on a busy machine the wall clock mostly
    measures the neighbours, the CPU time of this process measures our own work.
    """

    def __init__(self) -> None:
        self._t0 = self._last = time.perf_counter()
        self._cpu0 = self._last_cpu = time.process_time()
        self.phases: dict[str, tuple[float, float]] = {}
        self.first_paint_ms: float | None = None
        self.first_paint_cpu_ms: float | None = None

    def mark(self, phase: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.phases[phase] = (round((now - self._last) * 1000, 1),
                              round((cpu - self._last_cpu) * 1000, 1))
        self._last, self._last_cpu = now, cpu

    def first_paint(self) -> None:
        """Mark the first frame (once; later calls do nothing)."""
        if self.first_paint_ms is None:
            self.mark("show + first paint")
            self.first_paint_ms = round((self._last - self._t0) * 1000, 1)
            self.first_paint_cpu_ms = round((self._last_cpu - self._cpu0) * 1000, 1)

    def report(self) -> None:
        total = round((self._last - self._t0) * 1000, 1)
        log.info("start-up after main() (wall/CPU ms): first paint %.0f/%.0f, "
                 "everything up %.0f/%.0f: %s", self.first_paint_ms or 0.0,
                 self.first_paint_cpu_ms or 0.0, total,
                 (self._last_cpu - self._cpu0) * 1000,
                 ", ".join(f"{k} {w:.0f}/{c:.0f}" for k, (w, c) in self.phases.items()))


class AfterFirstPaint(QObject):
    """Calls `callback` once, just after `table` has painted (with rows if it has any)."""

    def __init__(self, table: QTableView, callback: Callable[[], None],
                 *, require_rows: bool = False) -> None:
        super().__init__(table)
        self._table = table
        self._callback = callback
        self._require_rows = require_rows
        self._done = False
        table.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (not self._done and event.type() == QEvent.Type.Paint
                and (not self._require_rows or self._table.model().rowCount() > 0)):
            self._done = True
            self._table.viewport().removeEventFilter(self)
            # Run after this paint event has been handled (the rows are on screen).
            QTimer.singleShot(0, self._callback)
        return False


def _rss_mib() -> float | None:
    """Resident memory now, from /proc (no psutil import inside the timed start-up)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


class FirstPaintProbe(QObject):
    """The benchmark hook: notes when rows are first painted, then, once the whole app is
    up (`ready()`), prints `FIRST_PAINT {"ms", "rss_mib", "epoch"}` and quits.

    `rss_mib` is taken when everything is built (not at the first frame, when the store and
    the other panes are not loaded yet), so it is the memory of the app as the agent uses
    it. A second line, `STARTUP {...}`, carries diagnostics: CPU time and RSS at the first
    frame, and when everything was up.

    With `watch=False` the caller calls `painted()` itself, first thing after the paint
    (the early-frame start-up does, so nothing can run in between).
    """

    def __init__(self, table: QTableView, app: QApplication, *, watch: bool = True) -> None:
        super().__init__(table)
        self._app = app
        self._painted_at: float | None = None
        self._paint_cpu_ms = 0.0
        self._paint_rss: float | None = None
        self._ready_at: float | None = None
        self._early = not watch
        self._store_at_paint = False
        self._hook = AfterFirstPaint(table, self.painted, require_rows=True) if watch else None

    def painted(self) -> None:
        if self._painted_at is not None:
            return
        self._painted_at = time.time()
        self._paint_cpu_ms = round(time.process_time() * 1000.0, 1)  # since exec()
        self._paint_rss = _rss_mib()
        self._store_at_paint = "sqlalchemy" in sys.modules
        if self._ready_at is not None:
            self._report()

    def ready(self) -> None:
        """Everything is built: report (now, or right after the first paint)."""
        if self._ready_at is None:
            self._ready_at = time.time()
            if self._painted_at is not None:
                self._report()

    def _report(self) -> None:
        import json

        import psutil

        assert self._painted_at is not None and self._ready_at is not None
        proc = psutil.Process()
        created = proc.create_time()
        ms = (self._painted_at - created) * 1000.0
        rss = proc.memory_info().rss / (1024 * 1024)
        # `epoch` lets the launching process time from its own spawn: psutil's
        # create_time rests on /proc/stat's whole-second boot time (up to 1 s off).
        sys.stdout.write("FIRST_PAINT " + json.dumps({"ms": round(ms, 1),
                                                      "rss_mib": round(rss, 1),
                                                      "epoch": self._painted_at}) + "\n")
        sys.stdout.write("STARTUP " + json.dumps({
            "cpu_ms_at_first_paint": self._paint_cpu_ms,
            "rss_mib_at_first_paint": self._paint_rss,
            "early_frame": self._early,  # painted before the store was opened
            "sqlalchemy_loaded_at_first_paint": self._store_at_paint,
            "ready_epoch": self._ready_at}) + "\n")
        sys.stdout.flush()
        self._app.quit()


def window_layout(window: QMainWindow) -> dict[str, Any]:
    """Where everything sits in `window`: central panes, docks (shown, area, tabbed with
    whom), the dock tab bars (tabs, raised tab), status and menu bars, splitter sizes.

    Why: the first frame must already have the finished window's layout (nothing may jump
    when the store, the workspace or the phone arrive); tests compare this before and
    after, and the e2e hook saves it next to its screenshots.
    """
    from PySide6.QtWidgets import QDockWidget, QSplitter, QTabBar

    def rect(w: QWidget | None) -> list[int] | None:
        if w is None:
            return None
        top_left = w.mapTo(window, w.rect().topLeft())
        return [top_left.x(), top_left.y(), w.width(), w.height()]

    # A dock tabbed behind another keeps a leftover geometry off screen: not compared.
    docks = {d.objectName(): {"rect": None if d.visibleRegion().isEmpty() else rect(d),
                              "visible": d.isVisible(),
                              "area": window.dockWidgetArea(d).name,
                              "tabbed_with": sorted(t.objectName()
                                                    for t in window.tabifiedDockWidgets(d))}
             for d in window.findChildren(QDockWidget)}
    tab_bars = [{"rect": rect(b), "tabs": [b.tabText(i) for i in range(b.count())],
                 "current": b.currentIndex()}
                for b in window.findChildren(QTabBar)
                if b.isVisible() and b.parent() is window]
    central = window.centralWidget()
    splitter = central if isinstance(central, QSplitter) else None
    panes = splitter.widget(1) if splitter is not None else None
    return {"central": rect(central), "list": rect(getattr(window, "customer_list", None)),
            "detail": rect(panes), "status_bar": rect(window.statusBar()),
            "menu_bar": rect(window.menuBar()), "docks": docks, "dock_tabs": tab_bars,
            "splitter": splitter.sizes() if splitter is not None else None}


def save_layout_shot(window: QMainWindow, name: str) -> None:
    """The e2e hook (AGENT_DESKTOP_LAYOUT_SHOTS=folder): the window as on screen (PNG) and
    its `window_layout` (JSON), saved as `name`.png / `name`.json. Does nothing unset."""
    folder = os.environ.get("AGENT_DESKTOP_LAYOUT_SHOTS")
    if not folder:
        return
    import json

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    screen = window.screen()
    g = window.geometry()  # the client area, without the window manager's frame
    pixmap = screen.grabWindow(0, g.x(), g.y(), g.width(), g.height()) if screen else None
    if pixmap is None or pixmap.isNull():
        pixmap = window.grab()
    pixmap.save(str(out / f"{name}.png"))
    (out / f"{name}.json").write_text(json.dumps(window_layout(window), indent=1),
                                      encoding="utf-8")
    log.info("layout shot %s saved in %s", name, out)
