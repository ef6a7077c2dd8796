"""Today's figures in the status bar: "Calls 42 · Connected 18 · Talk 1:02:03 · Sale 5".

Why refresh on signals (call ended, wrap-up saved) rather than a timer: the numbers only
change when a call ends or is wrapped up, and the query is one grouped SELECT. A slow
timer still runs so the figures roll over at local midnight.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QWidget

from agent_desktop.agent_stats import AgentStats, AgentStatsService, format_duration

TOP_DISPOSITIONS = 3


class AgentStatsWidget(QLabel):
    """A status-bar label; call `refresh()` (any arguments ignored) when calls change."""

    def __init__(self, service: AgentStatsService, parent: QWidget | None = None,
                 *, rollover_ms: int = 60_000) -> None:
        super().__init__(parent)
        self._service = service
        self.stats = AgentStats()
        self._timer = QTimer(self)
        self._timer.setInterval(rollover_ms)
        self._timer.timeout.connect(self.refresh)
        if rollover_ms > 0:
            self._timer.start()
        self.refresh()

    def refresh(self, *_args: object) -> None:
        self.stats = s = self._service.today()
        parts = [
            self.tr("Calls %1").replace("%1", str(s.calls)),
            self.tr("Connected %1").replace("%1", str(s.connected)),
            self.tr("Talk %1").replace("%1", format_duration(s.talk_seconds)),
        ]
        parts += [f"{name} {n}" for name, n in list(s.dispositions.items())[:TOP_DISPOSITIONS]]
        self.setText(" · ".join(parts))
        tip = [self.tr("Today"),
               self.tr("Outgoing: %1").replace("%1", str(s.outgoing)),
               self.tr("Connect rate: %1%").replace("%1", f"{s.connect_rate * 100:.0f}")]
        tip += [f"{name}: {n}" for name, n in s.dispositions.items()]
        self.setToolTip("\n".join(tip))
