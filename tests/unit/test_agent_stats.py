"""AgentStatsService: today's calls, connected, talk time, dispositions from call_logs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import event

from agent_desktop.agent_stats import AgentStats, AgentStatsService, format_duration
from agent_desktop.store.models import CallLog
from agent_desktop.wrapup import to_iso
from tests.unit.test_wrapup import FakeClock, make_call, make_customer, make_db

SHANGHAI = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=SHANGHAI)
MIDNIGHT = datetime(2026, 11, 23, 0, 0, tzinfo=SHANGHAI)


def test_today_counts_in_one_query(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    cid = make_customer(db)
    make_call(db, cid, started=MIDNIGHT + timedelta(hours=9), talk=120, disposition="Sale")
    make_call(db, cid, started=MIDNIGHT + timedelta(hours=10), talk=30,
              disposition="Not interested")
    make_call(db, cid, started=MIDNIGHT + timedelta(hours=11), talk=15.4, disposition="Sale")
    make_call(db, cid, started=MIDNIGHT + timedelta(hours=12), answered=False,
              outcome="busy")
    make_call(db, cid, started=MIDNIGHT - timedelta(minutes=1), talk=999)  # yesterday
    with db.transaction() as s:
        s.add(CallLog(direction="in", number="123", started_at=to_iso(
            MIDNIGHT + timedelta(hours=13)), outcome="missed", agent="bob"))
    statements: list[str] = []

    def count(_conn: object, _cur: object, stmt: str, *_a: object) -> None:
        statements.append(stmt)

    event.listen(db.engine, "before_cursor_execute", count)
    stats = AgentStatsService(db, clock=FakeClock(NOW)).today()
    event.remove(db.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert stats == AgentStats(calls=5, outgoing=4, connected=3, talk_seconds=165.4,
                               dispositions={"Sale": 2, "Not interested": 1})
    assert round(stats.connect_rate, 2) == 0.6
    only_bob = AgentStatsService(db, agent="bob", clock=FakeClock(NOW)).today()
    assert (only_bob.calls, only_bob.connected) == (1, 0)


def test_empty_day_and_duration_format(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    stats = AgentStatsService(db, clock=FakeClock(NOW)).today()
    assert stats == AgentStats() and stats.connect_rate == 0.0
    assert format_duration(65.4) == "1:05"
    assert format_duration(3723) == "1:02:03"
