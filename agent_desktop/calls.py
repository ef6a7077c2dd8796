"""The call workflow: every call leaves a correct CallLog, whatever happens on the wire.

Why a service between the UI and the phone: the CallLog row must exist before the first
SIP packet (a crash mid-call still leaves a trace), must be finalised exactly once with an
outcome an agent understands ("Busy", "No answer after 30 s"), and the no-answer timeout
is the app's job because pjsip never times out a ringing call by itself. The UI talks to
this service by CallLog id; the service talks to a `PhoneBackend` by call id.

Signals:
    call_started(log_id): a CallLog row exists for a new outgoing or incoming call.
    call_state(log_id, state): a `CallState` value as the call progresses.
    call_ended(log_id, outcome, reason): finalised; `reason` is a human sentence.
    incoming(log_id, customer_id, number, display_name): ringing; customer_id 0 = unknown.
    hold_changed(log_id, held) / mute_changed(log_id, muted)
    recording_paused(log_id, paused)
    media_stats(log_id, MediaStats)
    error(message): a plain sentence for the agent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from agent_desktop.call_recovery import recover_interrupted_calls
from agent_desktop.dialplan import DialPlan, DialPlanError
from agent_desktop.phone import CallState, MediaStats, PhoneBackend, PhoneError, RecordingInfo
from agent_desktop.store.db import Database
from agent_desktop.store.errors import storage_problem
from agent_desktop.store.models import CallLog, Customer, PhoneNumber, Recording, utcnow

log = logging.getLogger(__name__)

WRITE_BEHIND_MS = 100
OUTCOMES = ("answered", "busy", "no_answer", "rejected", "failed", "cancelled", "missed")


class CallError(RuntimeError):
    """A call request refused before anything was dialled; `str()` is for the agent."""


class CallerLookup(Protocol):
    def caller_id(self, number: str) -> int | None: ...


@dataclass(frozen=True)
class DialableNumber:
    phone_id: int
    label: str
    raw: str
    e164: str | None
    valid: bool


@dataclass(frozen=True)
class EndFacts:
    """What is known when a call ends, for `describe_end`."""

    direction: str  # "out" | "in"
    answered: bool
    sip_code: int
    sip_reason: str
    local_hangup: bool = False
    rejected: bool = False
    timed_out_after_s: int = 0  # > 0 when our no-answer timer hung up
    via_registrar: bool = False


def describe_end(f: EndFacts) -> tuple[str, str]:
    """(outcome, human reason) for a finished call — pure, so every branch is unit-tested."""
    if f.answered:
        if f.local_hangup:
            return "answered", "Call ended by you"
        if f.sip_code in (408, 503) or f.sip_reason.lower().startswith("connection lost"):
            return "answered", f"Connection lost ({f.sip_reason or f.sip_code})"
        return "answered", ("Customer hung up" if f.direction == "out" else "Caller hung up")
    if f.direction == "in":
        if f.rejected:
            return "rejected", "Rejected by you"
        if f.local_hangup:
            return "rejected", "Ended by you before answering"
        return "missed", "Missed call"
    if f.timed_out_after_s:
        return "no_answer", f"No answer after {f.timed_out_after_s} s"
    code = f.sip_code
    low = f.sip_reason.lower()
    if "certificate" in low or "tls_" in low or "ssl" in low:
        return "failed", ("Secure connection refused: the other side's certificate is not "
                          "trusted (check the CA file in settings)")
    if f.local_hangup and code in (0, 487):
        return "cancelled", "Cancelled"
    if code in (486, 600):
        return "busy", "Busy"
    if code == 603:
        return "rejected", "Declined by the customer"
    if code in (480, 487):
        return "no_answer", "Not reachable now" if code == 480 else "No answer"
    if code in (404, 484, 604):
        return "failed", "Number not found"
    if code in (401, 403, 407):
        return "failed", f"Not allowed to call this number ({code})"
    if code in (408, 503) or code == 0:
        where = "Registrar unreachable" if f.via_registrar else "No response from the number"
        return "failed", f"{where} ({code})" if code else where
    detail = f"{f.sip_reason} ({code})" if f.sip_reason else f"SIP {code}"
    return "failed", f"Call failed: {detail}"


_OUTCOME_WORDS = {"answered": "Answered", "busy": "Busy", "no_answer": "No answer",
                  "rejected": "Rejected", "failed": "Failed", "cancelled": "Cancelled",
                  "missed": "Missed call"}


def describe_logged(outcome: str | None, sip_code: int | None, sip_reason: str,
                    direction: str = "out") -> str:
    """A short reason for a stored CallLog (the timeline), from what the row keeps."""
    if outcome is None:
        return "In progress"
    if outcome in ("failed", "no_answer", "rejected") and sip_code:
        _o, human = describe_end(EndFacts(direction, False, sip_code, sip_reason,
                                          rejected=direction == "in"))
        return human
    return _OUTCOME_WORDS.get(outcome, outcome)


@dataclass
class _Active:
    log_id: int
    call_id: int
    direction: str
    number: str
    customer_id: int | None
    state: str
    answered_mono: float | None = None
    local_hangup: bool = False
    rejected: bool = False
    timed_out_after_s: int = 0
    timer: QTimer | None = None
    transferred_to: str = ""


class CallService(QObject):
    call_started = Signal(int)
    call_state = Signal(int, str)
    call_ended = Signal(int, str, str)
    incoming = Signal(int, int, str, str)
    hold_changed = Signal(int, bool)
    mute_changed = Signal(int, bool)
    recording_paused = Signal(int, bool)
    media_stats = Signal(int, object)
    error = Signal(str)

    def __init__(self, db: Database, backend: PhoneBackend, dialplan: DialPlan,
                 callers: CallerLookup, *, no_answer_timeout_s: int = 30,
                 recordings_dir: Path | None = None, agent: str = "",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        if no_answer_timeout_s <= 0:
            raise ValueError("The no-answer timeout must be a positive number of seconds.")
        self._db = db
        self._backend = backend
        self._dialplan = dialplan
        self._callers = callers
        self.no_answer_timeout_s = no_answer_timeout_s
        self._recordings_dir = recordings_dir
        self._agent = agent
        self._active: dict[int, _Active] = {}  # by log id
        self._log_of_call: dict[int, int] = {}  # call id -> log id (kept: late signals)
        self._pending: dict[int, dict[str, str]] = {}  # CallLog updates not yet written
        backend.call_state_changed.connect(self._on_call_state)
        backend.incoming_call.connect(self._on_incoming)
        backend.hold_changed.connect(self._on_hold)
        backend.mute_changed.connect(self._on_mute)
        backend.media_stats.connect(self._on_stats)
        backend.recording_paused.connect(self._on_recording_paused)
        backend.recording_started.connect(self._on_recording_started)
        backend.recording_finished.connect(self._on_recording_finished)

    def recover_interrupted(self) -> list[int]:
        """Finalise call logs a crash left open (see agent_desktop.call_recovery); calls
        live in this process are left alone. Returns the finalised CallLog ids."""
        return recover_interrupted_calls(self._db, self._recordings_dir,
                                         exclude_log_ids=set(self._active))

    def set_dialplan(self, dialplan: DialPlan) -> None:
        """Settings changed (prefix, domain, registrar): used from the next dial on."""
        self._dialplan = dialplan

    # -- queries for the panel ------------------------------------------------------------
    def customer_numbers(self, customer_id: int) -> list[DialableNumber]:
        with self._db.session() as s:
            rows = s.scalars(select(PhoneNumber).where(
                PhoneNumber.customer_id == customer_id, PhoneNumber.deleted_at.is_(None)
            ).order_by(PhoneNumber.position, PhoneNumber.id)).all()
            return [DialableNumber(p.id, p.label, p.raw, p.e164, p.valid) for p in rows]

    def customer_name(self, customer_id: int) -> str:
        with self._db.session() as s:
            c = s.get(Customer, customer_id)
            return c.name if c is not None and c.deleted_at is None else ""

    def active_log_ids(self) -> list[int]:
        return list(self._active)

    def state_of(self, log_id: int) -> str | None:
        a = self._active.get(log_id)
        return a.state if a else None

    # -- requests -------------------------------------------------------------------------
    def dial(self, customer_id: int | None, number: str) -> int:
        """Place the call and create its CallLog (state dialing); returns the CallLog id.

        Why the INVITE goes out before the row is written: the row costs 3–8 ms of SQLite
        on a busy machine, and the agent's click should reach the customer within 5 ms.
        The row is still written in this same step, before any event about the call can
        be processed, with `started_at` taken before the INVITE; if it cannot be written
        the call is hung up at once and CallError says why.

        Raises CallError for a number that cannot be dialled or while another call is
        being placed. A failure of the phone itself is not raised: the CallLog is
        finalised as failed and `call_ended`/`error` say why.
        """
        busy = [a for a in self._active.values()
                if a.state in (CallState.CALLING, CallState.RINGING, CallState.CONNECTING)]
        if busy:
            raise CallError("A call is already being placed; hang up first.")
        try:
            target = self._dialplan.to_target(number)
        except DialPlanError as exc:
            log.info("refused to dial %r: %s", number, exc)
            raise CallError(str(exc)) from exc
        started_at = utcnow()
        try:
            call_id = self._backend.dial(target.uri)
        except PhoneError as exc:
            log_id = self._insert_outgoing(customer_id, number, target.e164, started_at)
            log.warning("call log %d: the phone refused the call: %s", log_id, exc)
            self._finalise_row(log_id, None, 0, str(exc), "failed")
            self.call_started.emit(log_id)
            self.call_ended.emit(log_id, "failed", str(exc))
            self.error.emit(str(exc))
            return log_id
        try:
            log_id = self._insert_outgoing(customer_id, number, target.e164, started_at)
        except SQLAlchemyError as exc:
            log.error("call to %s stopped: the call log could not be written: %s",
                      target.uri, exc)
            with contextlib.suppress(PhoneError):
                self._backend.hangup(call_id)
            plain = storage_problem(exc)
            raise CallError("The call was stopped because it could not be written to the "
                            "call log. " + (plain or f"({type(exc).__name__}; details are "
                                            "in the log)")) from exc
        log.info("call log %d: dialling %s (customer %s)", log_id, target.uri, customer_id)
        a = _Active(log_id, call_id, "out", number.strip(), customer_id, CallState.CALLING)
        self._active[log_id] = a
        self._log_of_call[call_id] = log_id
        a.timer = QTimer(self)
        a.timer.setSingleShot(True)
        a.timer.timeout.connect(lambda lid=log_id: self._no_answer(lid))
        a.timer.start(self.no_answer_timeout_s * 1000)
        self.call_started.emit(log_id)
        return log_id

    def _insert_outgoing(self, customer_id: int | None, number: str, e164: str | None,
                         started_at: str) -> int:
        with self._db.transaction() as s:
            row = CallLog(customer_id=customer_id, direction="out", number=number.strip(),
                          e164=e164, state="dialing", agent=self._agent, started_at=started_at)
            s.add(row)
            s.flush()
            return row.id

    def answer(self, log_id: int) -> None:
        a = self._require(log_id)
        self._run(lambda: self._backend.answer(a.call_id))

    def reject(self, log_id: int) -> None:
        a = self._require(log_id)
        a.rejected = True
        self._run(lambda: self._backend.reject(a.call_id, 603))

    def hangup(self, log_id: int) -> None:
        a = self._require(log_id)
        a.local_hangup = True
        self._run(lambda: self._backend.hangup(a.call_id))

    def hold(self, log_id: int, on: bool) -> None:
        a = self._require(log_id)
        if on:
            self._run(lambda: self._backend.hold(a.call_id))
        else:
            self._run(lambda: self._backend.resume(a.call_id))

    def set_mute(self, log_id: int, muted: bool) -> None:
        a = self._require(log_id)
        self._run(lambda: self._backend.set_mute(a.call_id, muted))

    def send_dtmf(self, log_id: int, digits: str) -> None:
        a = self._require(log_id)
        self._run(lambda: self._backend.send_dtmf(a.call_id, digits))

    def pause_recording(self, log_id: int, paused: bool) -> None:
        a = self._require(log_id)
        self._run(lambda: self._backend.pause_recording(a.call_id, paused))

    def transfer(self, log_id: int, number: str) -> None:
        """Blind-transfer a connected call to a number or SIP URI (dial plan applied)."""
        a = self._require(log_id)
        if a.state != CallState.CONNECTED:
            raise CallError("Only a connected call can be transferred.")
        try:
            uri = self._dialplan.to_uri(number)
        except DialPlanError as exc:
            raise CallError(str(exc)) from exc
        self._run(lambda: self._backend.transfer(a.call_id, uri))
        a.local_hangup = True  # the call ends at our side once the transfer is accepted
        a.transferred_to = number.strip()

    def _require(self, log_id: int) -> _Active:
        a = self._active.get(log_id)
        if a is None:
            raise CallError("That call has already ended.")
        return a

    def _run(self, action: Callable[[], None]) -> None:
        try:
            action()
        except PhoneError as exc:
            log.warning("phone request failed: %s", exc)
            raise CallError(str(exc)) from exc

    # -- backend events -------------------------------------------------------------------
    def _no_answer(self, log_id: int) -> None:
        a = self._active.get(log_id)
        if a is None or a.answered_mono is not None:
            return
        log.info("call log %d: no answer after %d s, cancelling", log_id,
                 self.no_answer_timeout_s)
        a.timed_out_after_s = self.no_answer_timeout_s
        try:
            self._backend.hangup(a.call_id)
        except PhoneError as exc:
            log.warning("call log %d: cancel after timeout failed: %s", log_id, exc)

    def _on_incoming(self, call_id: int, number: str, display_name: str) -> None:
        customer_id = None
        try:
            customer_id = self._callers.caller_id(number)
        except Exception:  # a lookup failure must not lose the call
            log.exception("caller-ID lookup failed for %r", number)
        e164 = None
        norm = self._dialplan.normalizer.normalize(number)
        if norm.valid:
            e164 = norm.e164
        with self._db.transaction() as s:
            row = CallLog(customer_id=customer_id, direction="in", number=number, e164=e164,
                          state="ringing", agent=self._agent)
            s.add(row)
            s.flush()
            log_id = row.id
        self._active[log_id] = _Active(log_id, call_id, "in", number, customer_id,
                                       CallState.INCOMING)
        self._log_of_call[call_id] = log_id
        log.info("call log %d: incoming from %r (%r), customer %s", log_id, number,
                 display_name, customer_id)
        self.call_started.emit(log_id)
        self.incoming.emit(log_id, customer_id or 0, number, display_name)

    def _on_call_state(self, call_id: int, state: str, code: int, reason: str) -> None:
        log_id = self._log_of_call.get(call_id)
        a = self._active.get(log_id) if log_id is not None else None
        if a is None:
            log.debug("state %s for unknown/ended call %d ignored", state, call_id)
            return
        if state == CallState.DISCONNECTED:
            self._end(a, code, reason)
            return
        a.state = state
        if state == CallState.RINGING:
            self._write_later(a.log_id, state="ringing")
        elif state == CallState.CONNECTED and a.answered_mono is None:
            a.answered_mono = time.monotonic()
            if a.timer is not None:
                a.timer.stop()
            self._write_later(a.log_id, state="connected", answered_at=utcnow())
        self.call_state.emit(a.log_id, state)

    def _write_later(self, log_id: int, **fields: str) -> None:
        """Progress updates are written WRITE_BEHIND_MS later, merged (ringing + connected
        of a fast answer become one write), so call set-up never waits for SQLite; the
        final write at the end of the call is synchronous."""
        if not self._pending:
            QTimer.singleShot(WRITE_BEHIND_MS, self, self._flush_pending)
        self._pending.setdefault(log_id, {}).update(fields)

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        with self._db.transaction() as s:
            for log_id, fields in pending.items():
                row = s.get(CallLog, log_id)
                if row is None or row.state == "ended":
                    continue
                self._apply(row, fields)

    @staticmethod
    def _apply(row: CallLog, fields: dict[str, str]) -> None:
        if "answered_at" in fields:
            row.answered_at = fields["answered_at"]
        state = fields.get("state")
        if state == "connected" or (state == "ringing" and row.state == "dialing"):
            row.state = state

    def _end(self, a: _Active, code: int, reason: str) -> None:
        if a.timer is not None:
            a.timer.stop()
            a.timer = None
        self._active.pop(a.log_id, None)
        outcome, human = describe_end(EndFacts(
            direction=a.direction, answered=a.answered_mono is not None, sip_code=code,
            sip_reason=reason, local_hangup=a.local_hangup, rejected=a.rejected,
            timed_out_after_s=a.timed_out_after_s, via_registrar=bool(self._backend.registrar),
        ))
        if a.transferred_to and outcome == "answered":
            human = f"Transferred to {a.transferred_to}"
        talk = time.monotonic() - a.answered_mono if a.answered_mono is not None else 0.0
        self._finalise_row(a.log_id, talk, code, reason, outcome)
        log.info("call log %d ended: %s (%s; SIP %d %s), talk %.1f s", a.log_id, outcome,
                 human, code, reason, talk)
        self.call_state.emit(a.log_id, CallState.DISCONNECTED)
        self.call_ended.emit(a.log_id, outcome, human)

    def _finalise_row(self, log_id: int, talk: float | None, code: int, reason: str,
                      outcome: str) -> None:
        pending = self._pending.pop(log_id, {})
        with self._db.transaction() as s:
            row = s.get(CallLog, log_id)
            if row is None:
                log.error("call log %d vanished before it could be finalised", log_id)
                return
            self._apply(row, pending)
            row.state = "ended"
            row.ended_at = utcnow()
            row.sip_code = code or None
            row.sip_reason = reason
            row.talk_seconds = round(talk or 0.0, 3)
            row.outcome = outcome

    def _on_hold(self, call_id: int, held: bool) -> None:
        log_id = self._log_of_call.get(call_id)
        if log_id is not None and log_id in self._active:
            self.hold_changed.emit(log_id, held)

    def _on_mute(self, call_id: int, muted: bool) -> None:
        log_id = self._log_of_call.get(call_id)
        if log_id is not None and log_id in self._active:
            self.mute_changed.emit(log_id, muted)

    def _on_recording_paused(self, call_id: int, paused: bool) -> None:
        log_id = self._log_of_call.get(call_id)
        if log_id is not None and log_id in self._active:
            self.recording_paused.emit(log_id, paused)

    def _on_stats(self, call_id: int, stats: MediaStats) -> None:
        log_id = self._log_of_call.get(call_id)
        if log_id is not None and log_id in self._active:
            self.media_stats.emit(log_id, stats)

    # -- recordings -----------------------------------------------------------------------
    def _relative(self, path: str) -> str:
        p = Path(path)
        if self._recordings_dir is not None:
            try:
                return str(p.resolve().relative_to(self._recordings_dir.resolve()))
            except ValueError:
                pass
        return str(p)

    def _on_recording_started(self, call_id: int, path: str) -> None:
        log_id = self._log_of_call.get(call_id)
        if log_id is None:
            log.error("recording %s started for unknown call %d", path, call_id)
            return
        with self._db.transaction() as s:
            s.add(Recording(call_log_id=log_id, path=self._relative(path), state="recording"))

    def _on_recording_finished(self, call_id: int, info: RecordingInfo) -> None:
        log_id = self._log_of_call.get(call_id)
        if log_id is None:
            log.error("recording %s finished for unknown call %d", info.path, call_id)
            return
        rel = self._relative(info.path)
        sha = info.sha256 or _sha256_of(Path(info.path))
        with self._db.transaction() as s:
            row = s.scalars(select(Recording).where(Recording.call_log_id == log_id,
                                                    Recording.path == rel)).first()
            if row is None:
                row = Recording(call_log_id=log_id, path=rel)
                s.add(row)
            row.state = "complete"
            row.sha256 = sha
            row.duration_s = info.duration_s
            row.size_bytes = info.size_bytes
            row.paused_spans = json.dumps([list(span) for span in info.paused_spans])


def _sha256_of(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError as exc:
        log.error("cannot hash recording %s: %s", path, exc)
        return None
