"""PowerDialer: skip rules with an injected clock and numbers from several regions, preview
countdown, power mode after wrap-up, retries after N minutes up to max attempts, pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_desktop.dialer import (
    DialerError,
    DialerMode,
    DialerState,
    EntryStatus,
    PowerDialer,
    parse_hours,
    zones_for,
)
from agent_desktop.settings import Settings
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, utcnow
from tests.unit.test_wrapup import FakeClock, make_customer, make_db, make_settings

# 10:00 UTC: Shanghai 18:00 and Berlin 11:00 are inside 09:00-21:00, New York 05:00 is not.
T = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CN, DE, US, AU = "+8613800138000", "+4930123456", "+12125551234", "+61212345678"


class FakeDial:
    """Stands in for CallService.dial: records (customer, number), returns log ids."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.fail_with: Exception | None = None

    def __call__(self, customer_id: int, number: str) -> int:
        if self.fail_with is not None:
            exc, self.fail_with = self.fail_with, None
            raise exc
        self.calls.append((customer_id, number))
        return 100 + len(self.calls)

    @property
    def last_log(self) -> int:
        return 100 + len(self.calls)


def make_dialer(db: Database, settings: Settings, clock: FakeClock, dial: FakeDial,
                **kw: object) -> PowerDialer:
    return PowerDialer(db, settings, dial, clock=clock, preview_seconds=5,
                       local_tz=UTC, tick_interval_ms=0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def env(tmp_path: Path) -> tuple[Database, Settings, FakeClock, FakeDial]:
    return make_db(tmp_path), make_settings(tmp_path), FakeClock(T), FakeDial()


Env = tuple[Database, Settings, FakeClock, FakeDial]


def test_skip_rules_dnc_invalid_no_number_and_calling_hours(env: Env) -> None:
    db, settings, clock, dial = env
    ids = [
        make_customer(db, "dnc", (CN,), dnc=True),
        make_customer(db, "invalid", ("+861234",)),  # stored as E.164 but not valid
        make_customer(db, "typed only", ("12",)),  # never parsed: no E.164
        make_customer(db, "no phone", ()),
        make_customer(db, "new york", (US,)),  # 05:00 local: deferred
        make_customer(db, "berlin", (DE,)),
    ]
    d = make_dialer(db, settings, clock, dial)
    messages: list[str] = []
    d.message.connect(messages.append)
    assert d.load([*ids, ids[0], 999_999]) == 7  # duplicate dropped, unknown id kept+skipped
    d.start()
    assert d.state is DialerState.PREVIEW
    cur = d.current()
    assert cur is not None and cur.name == "berlin" and cur.number == DE
    by_name = {e.name: e for e in d.entries}
    assert by_name["dnc"].status is EntryStatus.SKIPPED
    assert "do-not-call" in by_name["dnc"].note
    assert by_name["invalid"].note == "Skipped: invalid has no valid phone number."
    assert by_name["typed only"].status is EntryStatus.SKIPPED
    assert by_name["no phone"].note == "Skipped: no phone has no phone number."
    ny = by_name["new york"]
    assert ny.status is EntryStatus.DEFERRED
    assert ny.next_try_at == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert "Outside calling hours (05:00 local time, America/New_York)" in ny.note
    assert any("do-not-call" in m for m in messages)
    assert d.progress() == (5, 2)  # 4 skipped + unknown id; berlin + new york left


def test_preview_countdown_dials_at_zero_and_power_dials_after_wrapup(env: Env) -> None:
    db, settings, clock, dial = env
    a = make_customer(db, "a", (CN,))
    b = make_customer(db, "b", (DE,))
    c = make_customer(db, "c", ("+8613900139000",))
    d = make_dialer(db, settings, clock, dial)
    counts: list[int] = []
    d.countdown.connect(counts.append)
    d.load([a, b, c])
    d.start()
    assert counts == [5] and dial.calls == []
    clock.advance(seconds=2.5)
    d.tick()
    assert counts == [5, 3]
    clock.advance(seconds=2.5)
    d.tick()
    assert dial.calls == [(a, CN)] and d.state is DialerState.CALLING
    d.on_call_ended(dial.last_log, "answered", "Customer hung up")
    assert d.state is DialerState.WRAPUP
    d.on_wrapup_saved(999)  # someone else's wrap-up: ignored
    assert d.state is DialerState.WRAPUP
    d.on_wrapup_saved(dial.last_log, a)
    assert d.state is DialerState.PREVIEW and d.current() is not None
    d.set_mode(DialerMode.POWER)  # switching during a preview dials it now
    assert dial.calls[-1] == (b, DE)
    d.on_call_ended(dial.last_log, "answered", "Customer hung up")
    d.on_wrapup_saved(dial.last_log, b)
    assert dial.calls[-1] == (c, "+8613900139000"), "power mode dials right after wrap-up"
    d.on_call_ended(dial.last_log, "answered", "")
    d.on_wrapup_saved(dial.last_log, c)
    assert d.state is DialerState.FINISHED and d.progress() == (3, 0)


def test_busy_and_no_answer_retry_after_n_minutes_up_to_max_attempts(env: Env) -> None:
    db, settings, clock, dial = env
    settings.set("dialer.retry_after_min", 30)
    settings.set("dialer.max_attempts", 3)
    a = make_customer(db, "a", (CN,))
    d = make_dialer(db, settings, clock, dial)
    d.set_mode(DialerMode.POWER)
    d.load([a])
    d.start()
    assert len(dial.calls) == 1
    d.on_call_ended(dial.last_log, "busy", "Busy")
    e = d.entries[0]
    assert e.status is EntryStatus.RETRY and e.attempts == 1
    assert e.next_try_at == T + timedelta(minutes=30)
    assert "attempt 1 of 3" in e.note
    assert d.state is DialerState.WAITING
    clock.advance(minutes=29)
    d.tick()
    assert len(dial.calls) == 1
    clock.advance(minutes=1)
    d.tick()
    assert len(dial.calls) == 2
    d.on_call_ended(dial.last_log, "no_answer", "No answer after 30 s")
    clock.advance(minutes=30)
    d.tick()
    assert len(dial.calls) == 3
    d.on_call_ended(dial.last_log, "no_answer", "No answer after 30 s")
    assert e.status is EntryStatus.DONE and e.attempts == 3
    assert e.note == "No answer after 30 s; gave up after 3 attempts."
    assert d.state is DialerState.FINISHED
    clock.advance(minutes=60)
    d.tick()
    assert len(dial.calls) == 3


def test_failed_call_is_not_retried_and_a_refused_dial_moves_on(env: Env) -> None:
    db, settings, clock, dial = env
    a = make_customer(db, "a", (CN,))
    b = make_customer(db, "b", (DE,))
    d = make_dialer(db, settings, clock, dial)
    d.set_mode(DialerMode.POWER)
    d.load([a, b])
    dial.fail_with = RuntimeError("The number +8613800138000 cannot be dialled")
    messages: list[str] = []
    d.message.connect(messages.append)
    d.start()
    assert d.entries[0].status is EntryStatus.DONE
    assert d.entries[0].note.startswith("Could not dial:")
    assert dial.calls == [(b, DE)]
    d.on_call_ended(dial.last_log, "failed", "Number not found")
    assert d.entries[1].status is EntryStatus.DONE
    assert d.entries[1].note == "Number not found"
    assert any("cannot be dialled" in m for m in messages)


def test_call_ended_synchronously_inside_dial_is_handled(env: Env) -> None:
    db, settings, clock, _dial = env
    a = make_customer(db, "a", (CN,))
    holder: list[PowerDialer] = []

    def refusing_dial(_cid: int, _num: str) -> int:
        holder[0].on_call_ended(7, "failed", "Registrar unreachable")
        return 7

    d = PowerDialer(db, settings, refusing_dial, clock=clock, local_tz=UTC,
                    tick_interval_ms=0)
    holder.append(d)
    d.set_mode(DialerMode.POWER)
    d.load([a])
    d.start()
    assert d.entries[0].note == "Registrar unreachable"
    assert d.state is DialerState.FINISHED


def test_pause_holds_after_the_call_and_resume_continues(env: Env) -> None:
    db, settings, clock, dial = env
    a = make_customer(db, "a", (CN,))
    b = make_customer(db, "b", (DE,))
    d = make_dialer(db, settings, clock, dial)
    d.set_mode(DialerMode.POWER)
    d.load([a, b])
    d.start()
    d.pause()
    assert d.state is DialerState.PAUSED
    d.on_call_ended(dial.last_log, "answered", "")
    d.on_wrapup_saved(dial.last_log, a)
    assert len(dial.calls) == 1 and d.state is DialerState.PAUSED
    d.resume()
    assert dial.calls[-1] == (b, DE)


def test_pause_in_preview_stops_the_countdown_and_skip_moves_on(env: Env) -> None:
    db, settings, clock, dial = env
    a = make_customer(db, "a", (CN,))
    b = make_customer(db, "b", (DE,))
    d = make_dialer(db, settings, clock, dial)
    d.load([a, b])
    d.start()
    d.pause()
    clock.advance(seconds=60)
    d.tick()
    assert dial.calls == []
    d.resume()
    assert d.state is DialerState.PREVIEW
    d.skip()
    assert d.entries[0].status is EntryStatus.SKIPPED and d.entries[0].note == (
        "Skipped by you.")
    cur = d.current()
    assert cur is not None and cur.customer_id == b
    d.dial_now()
    assert dial.calls == [(b, DE)]


def test_wrapup_required_blocks_the_next_dial_until_saved(env: Env) -> None:
    db, settings, clock, dial = env
    a = make_customer(db, "a", (CN,))
    allowed = [False]
    d = make_dialer(db, settings, clock, dial,
                    can_dial=lambda: (allowed[0], "Wrap up the call with X first."))
    messages: list[str] = []
    d.message.connect(messages.append)
    d.set_mode(DialerMode.POWER)
    d.load([a])
    d.start()
    assert dial.calls == [] and messages[-1] == "Wrap up the call with X first."
    allowed[0] = True
    d.on_wrapup_saved(55, 0)
    assert dial.calls == [(a, CN)]


def test_dnc_set_by_sync_after_loading_is_honoured(env: Env) -> None:
    db, settings, clock, dial = env
    a = make_customer(db, "a", (CN,))
    b = make_customer(db, "b", (DE,))
    d = make_dialer(db, settings, clock, dial)
    d.set_mode(DialerMode.POWER)
    d.load([a, b])
    with db.transaction(applying_remote=True) as s:
        cb = s.get(Customer, b)
        assert cb is not None
        cb.do_not_call = True
    d.start()
    d.on_call_ended(dial.last_log, "busy", "Busy")
    assert d.entries[1].status is EntryStatus.SKIPPED and dial.calls == [(a, CN)]
    with db.transaction(applying_remote=True) as s:
        ca = s.get(Customer, a)
        assert ca is not None
        ca.deleted_at = utcnow()
    clock.advance(hours=2)
    d.tick()
    assert d.entries[0].note == "Skipped: the customer was deleted."


def test_calling_hours_parsing_and_time_zones() -> None:
    assert parse_hours("09:00-21:00")[0].hour == 9
    with pytest.raises(DialerError, match="not in the form 09:00-21:00"):
        parse_hours("9-21h")
    with pytest.raises(DialerError, match="same time"):
        parse_hours("09:00-09:00")
    assert [str(z) for z in zones_for(AU, UTC)] == ["Australia/Sydney"]
    assert len(zones_for("+18005551234", UTC)) > 10  # toll-free: every US/CA zone
    assert zones_for("not a number", UTC) == [UTC]


def test_window_across_midnight_and_bad_setting_stops_start(env: Env) -> None:
    db, settings, clock, dial = env
    a = make_customer(db, "a", (CN,))  # 18:00 in Shanghai
    settings.set("dialer.calling_hours", "20:00-02:00")
    d = make_dialer(db, settings, clock, dial)
    d.load([a])
    d.start()
    assert d.entries[0].status is EntryStatus.DEFERRED
    assert d.entries[0].next_try_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    settings.set("dialer.calling_hours", "whenever")
    d2 = make_dialer(db, settings, clock, dial)
    d2.load([a])
    with pytest.raises(DialerError, match="not in the form"):
        d2.start()
    with pytest.raises(DialerError, match="call list is empty"):
        make_dialer(db, settings, clock, dial).start()
