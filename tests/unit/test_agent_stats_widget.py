"""The status-bar stats label shows today's figures from the real query and refreshes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pytestqt.qtbot import QtBot

from agent_desktop.agent_stats import AgentStatsService
from tests.unit.test_agent_stats import MIDNIGHT, NOW
from tests.unit.test_wrapup import FakeClock, make_call, make_customer, make_db
from ui.agent_stats_widget import AgentStatsWidget


def test_label_shows_today_and_refreshes(tmp_path: Path, qtbot: QtBot) -> None:
    db = make_db(tmp_path)
    cid = make_customer(db)
    make_call(db, cid, started=MIDNIGHT + timedelta(hours=9), talk=125, disposition="Sale")
    w = AgentStatsWidget(AgentStatsService(db, clock=FakeClock(NOW)), rollover_ms=0)
    qtbot.addWidget(w)
    assert w.text() == "Calls 1 · Connected 1 · Talk 2:05 · Sale 1"
    make_call(db, cid, started=MIDNIGHT + timedelta(hours=10), answered=False)
    w.refresh(123, "busy", "Busy")  # connected straight to CallService.call_ended
    assert w.text().startswith("Calls 2 · Connected 1 · Talk 2:05")
    assert "Connect rate: 50%" in w.toolTip()
