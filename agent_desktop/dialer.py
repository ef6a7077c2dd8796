"""The power dialer: a call list worked through in the rhythm talk, key, talk, key.

A state machine with no widgets (QtCore only for signals and its tick timer), driven by:
- the agent: `start()`, `pause()`, `resume()`, `skip()`, `dial_now()`, `set_mode()`;
- the call workflow: `on_call_ended(log_id, outcome, reason)` (CallService.call_ended);
- the wrap-up: `on_wrapup_saved(log_id, customer_id)` (WrapupService.wrapup_saved);
- time: `tick()`, called by its own QTimer, reading an injectable clock so tests are exact.

Modes: PREVIEW shows the next customer with a countdown (skip allowed) and dials when it
reaches zero or on `dial_now()`; POWER dials the next customer as soon as the previous
wrap-up is saved.

Why eligibility is checked when an entry comes up, not when the list is loaded: a list is
worked for hours; do-not-call flags arrive by sync, numbers get edited, and calling hours
move with the clock. A number outside its local calling window (time zone from the
number's region via `phonenumbers`; all zones of a multi-zone number must be inside) is
deferred to the window's next opening, not dropped. Busy / no answer are retried after
`dialer.retry_after_min` up to `dialer.max_attempts` attempts in total.

Signals:
    state_changed(str): a `DialerState` value.
    current_changed(object): the `DialEntry` on screen (previewed / being called) or None.
    countdown(int): whole seconds left before the previewed customer is dialled.
    progress_changed(int, int): done, left.
    entry_changed(int): row index in `entries` whose status/attempts changed.
    message(str): a plain sentence for the agent (why something was skipped, blocked…).
    list_loaded(int): a new call list of that many customers replaced `entries`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import NumberParseException
from phonenumbers import timezone as pn_timezone
from PySide6.QtCore import QObject, QTimer, Signal
from sqlalchemy import select

from agent_desktop.phone import install_emit_refcount_fix
from agent_desktop.settings import Settings
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, PhoneNumber

log = logging.getLogger(__name__)

# PySide6 6.12 drops a reference to True on each emit(); this module emits a lot.
install_emit_refcount_fix()

Clock = Callable[[], datetime]
DialFn = Callable[[int, str], int]  # (customer id, number) -> CallLog id
CanDialFn = Callable[[], tuple[bool, str]]

RETRY_OUTCOMES = frozenset({"busy", "no_answer"})


class DialerError(ValueError):
    """The dialer cannot work with its settings or input; `str()` is for the agent."""


class DialerMode(StrEnum):
    PREVIEW = "preview"
    POWER = "power"


class DialerState(StrEnum):
    IDLE = "idle"  # loaded, not started
    PREVIEW = "preview"  # next customer on screen, countdown running
    CALLING = "calling"  # our call is in progress
    WRAPUP = "wrapup"  # call answered and ended; waiting for the wrap-up to be saved
    WAITING = "waiting"  # nothing callable now; retries / calling hours pending
    PAUSED = "paused"
    FINISHED = "finished"


class EntryStatus(StrEnum):
    PENDING = "pending"
    CURRENT = "current"
    RETRY = "retry"  # busy / no answer: again at next_try_at
    DEFERRED = "deferred"  # outside local calling hours: again at next_try_at
    DONE = "done"
    SKIPPED = "skipped"


@dataclass
class DialEntry:
    customer_id: int
    name: str
    status: EntryStatus = EntryStatus.PENDING
    number: str = ""  # the number dialled / to dial (E.164)
    attempts: int = 0
    next_try_at: datetime | None = None
    last_outcome: str = ""
    note: str = ""  # plain words: why skipped/deferred, what happened last


def parse_hours(text: str) -> tuple[time, time]:
    """'09:00-21:00' → (09:00, 21:00); a window may cross midnight ('20:00-02:00')."""
    try:
        start_s, end_s = (p.strip() for p in text.split("-"))
        start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
    except ValueError as exc:
        raise DialerError(
            f"The calling hours setting “{text}” is not in the form 09:00-21:00.") from exc
    if start == end:
        raise DialerError(f"The calling hours “{text}” start and end at the same time.")
    return start, end


def _inside(local: time, start: time, end: time) -> bool:
    if start < end:
        return start <= local < end
    return local >= start or local < end


def zones_for(e164: str, fallback: tzinfo) -> list[tzinfo]:
    """Time zones of a number's region (all of them for a multi-zone number)."""
    try:
        names = pn_timezone.time_zones_for_number(phonenumbers.parse(e164))
    except NumberParseException:
        names = ()
    zones: list[tzinfo] = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            log.debug("no time zone data for %s (%s)", name, e164)
    return zones or [fallback]


class PowerDialer(QObject):
    state_changed = Signal(str)
    current_changed = Signal(object)
    countdown = Signal(int)
    progress_changed = Signal(int, int)
    entry_changed = Signal(int)
    message = Signal(str)
    list_loaded = Signal(int)

    def __init__(self, db: Database, settings: Settings, dial: DialFn, *,
                 can_dial: CanDialFn | None = None, clock: Clock | None = None,
                 preview_seconds: int = 10, local_tz: tzinfo | None = None,
                 tick_interval_ms: int = 250, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self._settings = settings
        self._dial = dial
        self._can_dial = can_dial or (lambda: (True, ""))
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        self._local_tz = local_tz or datetime.now().astimezone().tzinfo or UTC
        self.preview_seconds = preview_seconds
        self.mode = DialerMode.PREVIEW
        self.state = DialerState.IDLE
        self.entries: list[DialEntry] = []
        self._current: int | None = None  # index into entries
        self._deadline: datetime | None = None  # preview countdown end
        self._log_id: int | None = None  # CallLog of our call in progress
        self._dialing = False  # inside self._dial(): call_ended may arrive synchronously
        self._ended_during_dial = False
        self._blocked = False  # can_dial() said no (wrap-up required first)
        self._paused_from: DialerState | None = None
        self._last_countdown = -1
        self._timer = QTimer(self)
        self._timer.setInterval(tick_interval_ms)
        self._timer.timeout.connect(self.tick)
        self._auto_tick = tick_interval_ms > 0

    # ----------------------------------------------------------------- setup
    def load(self, customer_ids: Iterable[int]) -> int:
        """Make the call list (order kept, duplicates dropped); returns its length."""
        if self.state in (DialerState.CALLING, DialerState.WRAPUP):
            raise DialerError("Finish the current call before loading another call list.")
        ids = list(dict.fromkeys(int(i) for i in customer_ids))
        names: dict[int, str] = {}
        with self._db.session() as s:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                rows = s.execute(select(Customer.id, Customer.name)
                                 .where(Customer.id.in_(chunk))).all()
                names.update((int(r[0]), str(r[1])) for r in rows)
        self.entries = [DialEntry(cid, names.get(cid, "")) for cid in ids]
        for e in self.entries:
            if e.customer_id not in names:
                e.status, e.note = EntryStatus.SKIPPED, "This customer no longer exists."
        self._current = None
        self._set_state(DialerState.IDLE)
        self.list_loaded.emit(len(self.entries))
        self._emit_progress()
        log.info("call list loaded: %d customers", len(self.entries))
        return len(self.entries)

    def set_mode(self, mode: DialerMode | str) -> None:
        self.mode = DialerMode(mode)
        if self.mode is DialerMode.POWER and self.state is DialerState.PREVIEW:
            self.dial_now()

    # ----------------------------------------------------------------- agent actions
    def start(self) -> None:
        if not self.entries:
            raise DialerError("The call list is empty: search or filter customers first.")
        parse_hours(str(self._settings.get("dialer.calling_hours")))
        if self.state in (DialerState.IDLE, DialerState.FINISHED):
            if self._auto_tick:
                self._timer.start()
            self._advance()

    def pause(self) -> None:
        """Stop after the current call: nothing new is dialled until resume()."""
        if self.state in (DialerState.PAUSED, DialerState.IDLE, DialerState.FINISHED):
            return
        if self.state is DialerState.PREVIEW:
            self._deadline = None
        self._paused_from = self.state
        self._set_state(DialerState.PAUSED)

    def resume(self) -> None:
        if self.state is not DialerState.PAUSED:
            return
        was, self._paused_from = self._paused_from, None
        self.state = DialerState.WAITING  # leave PAUSED silently; the next _go() announces
        if was in (DialerState.CALLING, DialerState.WRAPUP) and self._log_id is not None:
            self._set_state(was)  # the call (or its wrap-up) is still going on
            return
        if was is DialerState.PREVIEW and self._current is not None:
            self._show_preview(self._current)
            return
        self._advance()

    def skip(self) -> None:
        """Skip the customer on screen (preview) and move on."""
        if self._current is None or self.state not in (DialerState.PREVIEW,
                                                       DialerState.PAUSED):
            return
        if self._log_id is not None:
            return  # a call is going on: hang up instead
        e = self.entries[self._current]
        self._finish(e, EntryStatus.SKIPPED, "Skipped by you.")
        self._current = None
        self._deadline = None
        if self.state is DialerState.PREVIEW:
            self._advance()
        else:
            self.current_changed.emit(None)

    def dial_now(self) -> None:
        if self.state is DialerState.PREVIEW and self._current is not None:
            self._place_call(self._current)

    def stop(self) -> None:
        self._timer.stop()
        self._deadline = None

    # ----------------------------------------------------------------- events
    def tick(self) -> None:
        now = self._clock()
        if self.state is DialerState.PREVIEW and self._deadline is not None:
            left = max(0, math.ceil((self._deadline - now).total_seconds()))
            if left != self._last_countdown:
                self._last_countdown = left
                self.countdown.emit(left)
            if left == 0 and self._current is not None:
                self._place_call(self._current)
        elif self.state is DialerState.WAITING and self._due_entry(now) is not None:
            self._advance()

    def on_call_ended(self, log_id: int, outcome: str, reason: str) -> None:
        if not (self._dialing or log_id == self._log_id) or self._current is None:
            return
        if self._dialing:
            self._ended_during_dial = True
        self._log_id = log_id
        e = self.entries[self._current]
        e.last_outcome = outcome
        max_attempts = max(1, int(self._settings.get("dialer.max_attempts")))
        if outcome == "answered":
            e.note = reason
            self._emit_entry(e)
            self._go(DialerState.WRAPUP)
            return
        self._log_id = None
        if outcome in RETRY_OUTCOMES and e.attempts < max_attempts:
            minutes = int(self._settings.get("dialer.retry_after_min"))
            e.status = EntryStatus.RETRY
            e.next_try_at = self._clock() + timedelta(minutes=minutes)
            e.note = (f"{reason}; attempt {e.attempts} of {max_attempts}, trying again "
                      f"in {minutes} min.")
            self._emit_entry(e)
        else:
            note = (f"{reason}; gave up after {e.attempts} attempts." if outcome in
                    RETRY_OUTCOMES else reason)
            self._finish(e, EntryStatus.DONE, note)
        self._current = None
        self._continue()

    def on_wrapup_saved(self, log_id: int, _customer_id: int = 0) -> None:
        if self._blocked and self._current is not None and self.state is DialerState.PREVIEW:
            # An older wrap-up was saved: the call we were held back from may go now.
            if self.mode is DialerMode.POWER:
                self._place_call(self._current)
            else:
                self._show_preview(self._current)
            return
        if log_id != self._log_id or self._current is None:
            return
        self._finish(self.entries[self._current], EntryStatus.DONE,
                     self.entries[self._current].note)
        self._current = None
        self._log_id = None
        self._continue()

    # ----------------------------------------------------------------- progress
    def progress(self) -> tuple[int, int]:
        done = sum(e.status in (EntryStatus.DONE, EntryStatus.SKIPPED) for e in self.entries)
        return done, len(self.entries) - done

    def current(self) -> DialEntry | None:
        return self.entries[self._current] if self._current is not None else None

    # ----------------------------------------------------------------- internals
    def _continue(self) -> None:
        if self.state is DialerState.PAUSED:
            self._paused_from = DialerState.WAITING
            self.current_changed.emit(None)
            return
        self._advance()

    def _advance(self) -> None:
        """Bring up the next callable entry (preview or dial), or wait, or finish."""
        while True:
            now = self._clock()
            idx = self._due_entry(now)
            if idx is None:
                waiting = [e.next_try_at for e in self.entries
                           if e.status in (EntryStatus.RETRY, EntryStatus.DEFERRED)
                           and e.next_try_at is not None]
                self.current_changed.emit(None)
                if waiting:
                    when = min(waiting).astimezone(self._local_tz).strftime("%H:%M")
                    self.message.emit(f"Nobody can be called right now; the next retry is "
                                      f"at {when}.")
                    self._go(DialerState.WAITING)
                else:
                    self._timer.stop()
                    done, _left = self.progress()
                    self.message.emit(f"Call list finished: {done} customers worked.")
                    self._go(DialerState.FINISHED)
                return
            if self._eligible(idx, now):
                break
        if self.mode is DialerMode.POWER:
            self._current = idx
            self.entries[idx].status = EntryStatus.CURRENT
            self._emit_entry(self.entries[idx])
            self.current_changed.emit(self.entries[idx])
            self._place_call(idx)
        else:
            self._show_preview(idx)

    def _due_entry(self, now: datetime) -> int | None:
        for i, e in enumerate(self.entries):
            if e.status is EntryStatus.PENDING or (
                    e.status in (EntryStatus.RETRY, EntryStatus.DEFERRED)
                    and e.next_try_at is not None and e.next_try_at <= now):
                return i
        return None

    def _eligible(self, idx: int, now: datetime) -> bool:
        """Re-check the entry against the live record; mark it skipped/deferred if not."""
        e = self.entries[idx]
        with self._db.session() as s:
            c = s.get(Customer, e.customer_id)
            if c is None or c.deleted_at is not None:
                self._finish(e, EntryStatus.SKIPPED, "Skipped: the customer was deleted.")
                return False
            e.name = c.name
            if c.do_not_call:
                self._finish(e, EntryStatus.SKIPPED, "Skipped: marked do-not-call.")
                return False
            phones = s.scalars(select(PhoneNumber).where(
                PhoneNumber.customer_id == c.id, PhoneNumber.deleted_at.is_(None)
            ).order_by(PhoneNumber.position, PhoneNumber.id)).all()
            numbers = [p.e164 for p in phones if p.e164 and _valid(p.e164)]
        if not numbers:
            why = "has no phone number" if not phones else "has no valid phone number"
            self._finish(e, EntryStatus.SKIPPED, f"Skipped: {e.name} {why}.")
            return False
        e.number = numbers[0]
        start, end = parse_hours(str(self._settings.get("dialer.calling_hours")))
        zones = zones_for(e.number, self._local_tz)
        outside = [z for z in zones if not _inside(now.astimezone(z).time(), start, end)]
        if outside:
            e.status = EntryStatus.DEFERRED
            e.next_try_at = max(_next_opening(now, z, start, end) for z in outside)
            local = now.astimezone(outside[0]).strftime("%H:%M")
            e.note = (f"Outside calling hours ({local} local time, {outside[0]}); "
                      f"will call after {start:%H:%M} there.")
            self._emit_entry(e)
            return False
        return True

    def _show_preview(self, idx: int) -> None:
        self._current = idx
        e = self.entries[idx]
        e.status = EntryStatus.CURRENT
        self._emit_entry(e)
        self._deadline = self._clock() + timedelta(seconds=self.preview_seconds)
        self._last_countdown = -1
        self._go(DialerState.PREVIEW)
        self.current_changed.emit(e)
        self.tick()

    def _place_call(self, idx: int) -> None:
        ok, why = self._can_dial()
        e = self.entries[idx]
        self._deadline = None
        if not ok:
            # Stay on this customer; the next saved wrap-up (or dial_now) tries again.
            self._blocked = True
            self.message.emit(why)
            self._go(DialerState.PREVIEW)
            return
        self._blocked = False
        e.attempts += 1
        e.status = EntryStatus.CURRENT
        self._current = idx
        self._go(DialerState.CALLING)
        self._dialing = True
        self._ended_during_dial = False
        try:
            log_id = self._dial(e.customer_id, e.number)
        except (RuntimeError, ValueError) as exc:
            log.warning("dialer could not dial customer %s (%s): %s", e.customer_id,
                        e.number, exc)
            self._dialing = False
            self._finish(e, EntryStatus.DONE, f"Could not dial: {exc}")
            self.message.emit(f"{e.name}: {exc}")
            self._current = None
            self._continue()
            return
        finally:
            self._dialing = False
        if not self._ended_during_dial:  # the phone may refuse and end it at once
            self._log_id = log_id
            self._emit_entry(e)

    def _go(self, state: DialerState) -> None:
        if self.state is DialerState.PAUSED and state not in (DialerState.FINISHED,):
            self._paused_from = state
            return
        self._set_state(state)

    def _set_state(self, state: DialerState) -> None:
        if state is not self.state:
            self.state = state
            self.state_changed.emit(str(state))

    def _finish(self, e: DialEntry, status: EntryStatus, note: str) -> None:
        e.status = status
        e.note = note
        e.next_try_at = None
        if status is EntryStatus.SKIPPED:
            log.info("dialer skipped customer %s: %s", e.customer_id, note)
            if note != "Skipped by you.":
                self.message.emit(f"{e.name or e.customer_id}: {note}")
        self._emit_entry(e)

    def _emit_entry(self, e: DialEntry) -> None:
        self.entry_changed.emit(self.entries.index(e))
        self._emit_progress()

    def _emit_progress(self) -> None:
        done, left = self.progress()
        self.progress_changed.emit(done, left)


def _valid(e164: str) -> bool:
    """A stored E.164 number that is (still) valid by today's numbering plan."""
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164))
    except NumberParseException:
        return False


def _next_opening(now: datetime, zone: tzinfo, start: time, _end: time) -> datetime:
    """The next moment the window opens in `zone`, as aware UTC."""
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), start, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), start, tzinfo=zone)
    return candidate.astimezone(UTC)


class CallListStore:
    """Saved call lists (name → customer ids) as small JSON files in one folder.

    Why files and not a table: a saved list is the agent's own working set on this machine
    (not a synced CRM object), and the schema is the lead's; a folder under the data dir
    keeps it local, inspectable, and written atomically (temp file + rename).
    """

    _SAFE = re.compile(r"[^\w\- ]+", re.UNICODE)

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str) -> Path:
        clean = self._SAFE.sub("", name).strip()
        if not clean:
            raise DialerError("Give the call list a name (letters, digits, spaces).")
        return self.folder / f"{clean}.json"

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def save(self, name: str, customer_ids: Iterable[int]) -> Path:
        ids = list(dict.fromkeys(int(i) for i in customer_ids))
        if not ids:
            raise DialerError("The call list is empty: search or filter customers first.")
        path = self._path(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"name": name.strip(), "customer_ids": ids}),
                       encoding="utf-8")
        tmp.replace(path)
        return path

    def load(self, name: str) -> list[int]:
        path = self._path(name)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return [int(i) for i in raw["customer_ids"]]
        except FileNotFoundError as exc:
            raise DialerError(f"There is no saved call list called “{name}”.") from exc
        except (ValueError, KeyError, TypeError) as exc:
            log.error("saved call list %s unreadable: %s", path, exc)
            raise DialerError(f"The saved call list “{name}” is damaged ({path.name}); "
                              "it was left as it is.") from exc
