"""Today's numbers for the status bar: calls, connected, talk time, dispositions.

Why one grouped SQL query: the status bar refreshes after every call and wrap-up; a single
`GROUP BY disposition` over today's slice of `ix_call_logs_started_at` gives every figure
at once (totals are sums of the groups), so the refresh stays well under a millisecond for
a 150-call day and never loads ORM objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import text

from agent_desktop.store.db import Database

Clock = Callable[[], datetime]

_SQL = text(
    "SELECT disposition, COUNT(*) AS calls,"
    " SUM(CASE WHEN answered_at IS NOT NULL THEN 1 ELSE 0 END) AS connected,"
    " COALESCE(SUM(talk_seconds), 0) AS talk,"
    " SUM(CASE WHEN direction = 'out' THEN 1 ELSE 0 END) AS outgoing"
    " FROM call_logs"
    " WHERE started_at >= :since AND started_at < :until AND deleted_at IS NULL"
    " AND (:agent = '' OR agent = :agent)"
    " GROUP BY disposition"
)


@dataclass(frozen=True)
class AgentStats:
    calls: int = 0
    outgoing: int = 0
    connected: int = 0
    talk_seconds: float = 0.0
    dispositions: dict[str, int] = field(default_factory=dict)  # most frequent first

    @property
    def connect_rate(self) -> float:
        return self.connected / self.calls if self.calls else 0.0


def format_duration(seconds: float) -> str:
    """1:02:03 / 4:05 — how a call-centre wallboard shows talk time."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class AgentStatsService:
    def __init__(self, db: Database, *, agent: str = "",
                 clock: Clock = lambda: datetime.now().astimezone()) -> None:
        self._db = db
        self._agent = agent
        self._clock = clock

    def today(self) -> AgentStats:
        """Calls started since local midnight (the clock's time zone)."""
        now = self._clock()
        start = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
        return self.between(start, start + timedelta(days=1))

    def between(self, since: datetime, until: datetime) -> AgentStats:
        params = {"since": _iso(since), "until": _iso(until), "agent": self._agent}
        with self._db.engine.connect() as conn:
            rows = conn.execute(_SQL, params).all()
        calls = outgoing = connected = 0
        talk = 0.0
        dispositions: dict[str, int] = {}
        for disposition, n, conn_n, talk_s, out_n in rows:
            calls += int(n)
            outgoing += int(out_n or 0)
            connected += int(conn_n or 0)
            talk += float(talk_s or 0.0)
            if disposition:
                dispositions[str(disposition)] = int(n)
        ordered = dict(sorted(dispositions.items(), key=lambda kv: (-kv[1], kv[0])))
        return AgentStats(calls, outgoing, connected, talk, ordered)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")
