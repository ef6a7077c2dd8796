"""The softphone panel: registration, the call in progress, and every call control.

Why it talks only to `CallService` and `PhoneBackend`: the panel must work the same with
the real pjsua2 engine and with the fake used in tests, and it must never be able to
abort the process by misusing pjsua2. Calls are identified by CallLog id.

Keys (window-wide): Ctrl+D dials the selected customer's chosen number, Ctrl+E hangs up,
Esc hangs up while a call is live (and only then, so Esc keeps its meaning elsewhere),
Ctrl+Shift+A answers a ringing call.

Signals:
    open_customer_requested(int): show this customer in the detail pane (incoming caller).
    new_customer_requested(str): an unknown caller's number, to start a new customer.
    call_placed(int): a CallLog id for a call this panel started.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from agent_desktop.calls import CallError, CallService
from agent_desktop.phone import CallState, MediaStats, PhoneBackend, RegState
from ui.call_incoming import IncomingCallBanner
from ui.call_keypad import CallKeypad

log = logging.getLogger(__name__)

_LIVE = (CallState.CALLING, CallState.RINGING, CallState.CONNECTING, CallState.CONNECTED)


def format_elapsed(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60:02d}:{s % 60:02d}"


class SoftphonePanel(QWidget):
    open_customer_requested = Signal(int)
    new_customer_requested = Signal(str)
    call_placed = Signal(int)

    def __init__(self, calls: CallService, phone: PhoneBackend,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("softphonePanel")
        self._calls = calls
        self._phone = phone
        self._customer_id = 0
        self._current: int | None = None  # CallLog id of the call on screen
        self._state = ""
        self._incoming: int | None = None
        self._incoming_customer = 0
        self._incoming_number = ""
        self._connected_at: float | None = None
        self._held = False
        self._muted = False
        self._rec_paused = False
        self._build()
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._update_timer)
        calls.call_started.connect(self._on_started)
        calls.call_state.connect(self._on_state)
        calls.call_ended.connect(self._on_ended)
        calls.incoming.connect(self._on_incoming)
        calls.hold_changed.connect(self._on_hold)
        calls.mute_changed.connect(self._on_mute)
        calls.media_stats.connect(self._on_stats)
        calls.recording_paused.connect(self._on_recording_paused)
        calls.error.connect(self.show_message)
        phone.registration_changed.connect(self._on_registration)
        state, code, text = phone.registration_state()
        self._on_registration(str(state), code, text)
        self._update_controls()

    # -- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        self.reg_label = QLabel(self)
        self.reg_label.setObjectName("registrationLabel")
        self.customer_label = QLabel(self.tr("No customer selected"), self)
        self.customer_label.setObjectName("softphoneCustomer")
        self.number_combo = QComboBox(self)
        self.number_combo.setObjectName("numberCombo")
        self.dial_button = QPushButton(self.tr("Dial"), self)
        self.dial_button.setObjectName("dialButton")
        self.dial_button.setToolTip(self.tr("Call the selected customer (Ctrl+D)"))
        self.dial_button.clicked.connect(self.dial_selected)

        self.manual_edit = QLineEdit(self)
        self.manual_edit.setObjectName("manualNumber")
        self.manual_edit.setPlaceholderText(self.tr("Number or SIP address"))
        self.manual_edit.returnPressed.connect(self.dial_manual)
        self.manual_dial_button = QPushButton(self.tr("Call"), self)
        self.manual_dial_button.setObjectName("manualDialButton")
        self.manual_dial_button.clicked.connect(self.dial_manual)

        self.state_label = QLabel(self.tr("Idle"), self)
        self.state_label.setObjectName("callStateLabel")
        self.timer_label = QLabel("", self)
        self.timer_label.setObjectName("callTimerLabel")
        self.quality_label = QLabel("", self)
        self.quality_label.setObjectName("callQualityLabel")
        self.message_label = QLabel("", self)
        self.message_label.setObjectName("softphoneMessage")
        self.message_label.setWordWrap(True)

        self.hangup_button = QPushButton(self.tr("Hang up"), self)
        self.hangup_button.setObjectName("hangupButton")
        self.hangup_button.setToolTip(self.tr("End the call (Ctrl+E or Esc)"))
        self.hangup_button.clicked.connect(self.hangup)
        self.hold_button = QPushButton(self.tr("Hold"), self)
        self.hold_button.setObjectName("holdButton")
        self.hold_button.setCheckable(True)
        self.hold_button.clicked.connect(self._toggle_hold)
        self.mute_button = QPushButton(self.tr("Mute"), self)
        self.mute_button.setObjectName("muteButton")
        self.mute_button.setCheckable(True)
        self.mute_button.clicked.connect(self._toggle_mute)
        self.pause_rec_button = QPushButton(self.tr("Pause recording"), self)
        self.pause_rec_button.setObjectName("pauseRecordingButton")
        self.pause_rec_button.setToolTip(self.tr("Stop recording while the customer gives "
                                                 "card details; the gap is marked"))
        self.pause_rec_button.setCheckable(True)
        self.pause_rec_button.clicked.connect(self._toggle_recording)
        self.keypad_button = QPushButton(self.tr("Keypad"), self)
        self.keypad_button.setObjectName("keypadButton")
        self.keypad_button.setCheckable(True)
        self.transfer_button = QPushButton(self.tr("Transfer"), self)
        self.transfer_button.setObjectName("transferButton")
        self.transfer_button.setCheckable(True)

        self.keypad = CallKeypad(self)
        self.keypad.key_pressed.connect(self._on_key)
        self.keypad.hide()
        self.keypad_button.toggled.connect(self.keypad.setVisible)

        self.transfer_edit = QLineEdit(self)
        self.transfer_edit.setObjectName("transferTarget")
        self.transfer_edit.setPlaceholderText(self.tr("Transfer to number or SIP address"))
        self.transfer_edit.returnPressed.connect(self.transfer)
        self.transfer_go = QPushButton(self.tr("Transfer now"), self)
        self.transfer_go.setObjectName("transferGoButton")
        self.transfer_go.clicked.connect(self.transfer)
        self.transfer_row = QWidget(self)
        tl = QHBoxLayout(self.transfer_row)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.transfer_edit)
        tl.addWidget(self.transfer_go)
        self.transfer_row.hide()
        self.transfer_button.toggled.connect(self._show_transfer)

        self.banner = IncomingCallBanner(self)
        self.banner.answer_clicked.connect(self.answer)
        self.banner.reject_clicked.connect(self.reject)
        self.banner.customer_clicked.connect(self._incoming_customer_clicked)

        lay = QVBoxLayout(self)
        lay.addWidget(self.reg_label)
        lay.addWidget(self.banner)
        lay.addWidget(self.customer_label)
        row = QHBoxLayout()
        row.addWidget(self.number_combo, 1)
        row.addWidget(self.dial_button)
        lay.addLayout(row)
        row2 = QHBoxLayout()
        row2.addWidget(self.manual_edit, 1)
        row2.addWidget(self.manual_dial_button)
        lay.addLayout(row2)
        status = QHBoxLayout()
        status.addWidget(self.state_label, 1)
        status.addWidget(self.timer_label)
        lay.addLayout(status)
        lay.addWidget(self.quality_label)
        # Two rows of three: the panel fits the dock width reserved in the first frame
        # (startup.PHONE_DOCK_WIDTH) — one row of five made the dock widen as it arrived.
        controls = QGridLayout()
        for i, b in enumerate((self.hangup_button, self.hold_button, self.mute_button,
                               self.keypad_button, self.transfer_button,
                               self.pause_rec_button)):
            controls.addWidget(b, i // 3, i % 3)
        lay.addLayout(controls)
        lay.addWidget(self.transfer_row)
        lay.addWidget(self.keypad)
        lay.addWidget(self.message_label)
        lay.addStretch(1)

        ctx = Qt.ShortcutContext.WindowShortcut
        self.dial_shortcut = QShortcut(QKeySequence("Ctrl+D"), self, self.dial_selected,
                                       context=ctx)
        self.hangup_shortcut = QShortcut(QKeySequence("Ctrl+E"), self, self.hangup,
                                         context=ctx)
        self.esc_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.hangup,
                                      context=ctx)
        self.answer_shortcut = QShortcut(QKeySequence("Ctrl+Shift+A"), self, self.answer,
                                         context=ctx)

    # -- customer selection ---------------------------------------------------------------
    def set_customer(self, customer_id: int) -> None:
        """Show this customer's numbers for Dial (0 = no customer selected)."""
        self._customer_id = customer_id
        self.number_combo.clear()
        if customer_id <= 0:
            self.customer_label.setText(self.tr("No customer selected"))
        else:
            name = self._calls.customer_name(customer_id)
            self.customer_label.setText(name or self.tr("Customer not found"))
            for n in self._calls.customer_numbers(customer_id):
                text = f"{n.label}: {n.raw}" if n.label else n.raw
                self.number_combo.addItem(text, n.raw)
            if self.number_combo.count() == 0 and name:
                self.customer_label.setText(self.tr("%1 — no phone number").replace("%1",
                                                                                      name))
        self._update_controls()

    # -- requests -------------------------------------------------------------------------
    def dial_selected(self) -> None:
        if self._customer_id <= 0 or self.number_combo.count() == 0:
            self.show_message(self.tr("Select a customer with a phone number first."))
            return
        self._dial(self._customer_id, str(self.number_combo.currentData()))

    def dial_customer(self, customer_id: int, number: str = "") -> int | None:
        """Call a customer (e.g. from a follow-up reminder); first number when not given."""
        self.set_customer(customer_id)
        if number:
            idx = self.number_combo.findData(number)
            if idx >= 0:
                self.number_combo.setCurrentIndex(idx)
        if self.number_combo.count() == 0:
            self.show_message(self.tr("This customer has no phone number."))
            return None
        return self._dial(customer_id, number or str(self.number_combo.currentData()))

    def dial_manual(self) -> None:
        number = self.manual_edit.text().strip()
        if not number:
            self.show_message(self.tr("Type a number to call."))
            return
        if self._dial(None, number) is not None:
            self.manual_edit.clear()

    def _dial(self, customer_id: int | None, number: str) -> int | None:
        if self._is_live():
            self.show_message(self.tr("Hang up the current call first."))
            return None
        try:
            log_id = self._calls.dial(customer_id, number)
        except CallError as exc:
            self.show_message(str(exc))
            return None
        self.show_message("")
        self.call_placed.emit(log_id)
        return log_id

    def hangup(self) -> None:
        target = self._current if self._current is not None else self._incoming
        if target is None:
            return
        self._request(lambda: self._calls.hangup(target))

    def answer(self) -> None:
        if self._incoming is None:
            return
        log_id = self._incoming
        if self._current is not None and self._state == CallState.CONNECTED and not self._held:
            self._request(lambda: self._calls.hold(self._current or 0, True))
        if self._request(lambda: self._calls.answer(log_id)):
            self.banner.hide()
            self._incoming = None
            self._current = log_id
            self._state = CallState.CONNECTING
            self._set_state_text(self.tr("Connecting…"))
            self._update_controls()

    def reject(self) -> None:
        if self._incoming is not None:
            log_id = self._incoming
            self._request(lambda: self._calls.reject(log_id))

    def transfer(self) -> None:
        if self._current is None:
            return
        target = self.transfer_edit.text().strip()
        if not target:
            self.show_message(self.tr("Type the number to transfer to."))
            return
        log_id = self._current
        if self._request(lambda: self._calls.transfer(log_id, target)):
            self.show_message(self.tr("Transferring to %1…").replace("%1", target))
            self.transfer_button.setChecked(False)

    def _toggle_hold(self) -> None:
        want = self.hold_button.isChecked()
        self.hold_button.setChecked(self._held)  # shown once the far end confirms
        if self._current is not None:
            log_id = self._current
            self._request(lambda: self._calls.hold(log_id, want))

    def _toggle_mute(self) -> None:
        want = self.mute_button.isChecked()
        self.mute_button.setChecked(self._muted)
        if self._current is not None:
            log_id = self._current
            self._request(lambda: self._calls.set_mute(log_id, want))

    def _toggle_recording(self) -> None:
        want = self.pause_rec_button.isChecked()
        self.pause_rec_button.setChecked(self._rec_paused)
        if self._current is not None:
            log_id = self._current
            self._request(lambda: self._calls.pause_recording(log_id, want))

    def _on_recording_paused(self, log_id: int, paused: bool) -> None:
        if log_id == self._current:
            self._rec_paused = paused
            self.pause_rec_button.setChecked(paused)
            self.pause_rec_button.setText(self.tr("Resume recording") if paused
                                          else self.tr("Pause recording"))

    def _on_key(self, key: str) -> None:
        if self._current is not None and self._state == CallState.CONNECTED:
            log_id = self._current
            self._request(lambda: self._calls.send_dtmf(log_id, key))
        else:
            self.manual_edit.insert(key)

    def _show_transfer(self, on: bool) -> None:
        self.transfer_row.setVisible(on)
        if on:
            self.transfer_edit.setFocus()

    def _incoming_customer_clicked(self) -> None:
        if self._incoming_customer:
            self.open_customer_requested.emit(self._incoming_customer)
        else:
            self.new_customer_requested.emit(self._incoming_number)

    def _request(self, action: Callable[[], None]) -> bool:
        try:
            action()
        except CallError as exc:
            self.show_message(str(exc))
            return False
        return True

    def show_message(self, text: str) -> None:
        self.message_label.setText(text)

    # -- events ---------------------------------------------------------------------------
    def _on_registration(self, state: str, _code: int, text: str) -> None:
        marks = {RegState.REGISTERED: "●", RegState.DIRECT: "●", RegState.FAILED: "✖",
                 RegState.REGISTERING: "…", RegState.UNREGISTERED: "○"}
        self.reg_label.setText(f"{marks.get(RegState(state), '')} {text}".strip())
        self.reg_label.setProperty("regState", state)

    def _on_started(self, log_id: int) -> None:
        if self._calls.state_of(log_id) == CallState.INCOMING:
            return
        if self._current is None or not self._is_live():
            self._current = log_id
            self._state = CallState.CALLING
            self._held = self._muted = False
            self._connected_at = None
            self.timer_label.setText("")
            self.quality_label.setText("")
            self._set_state_text(self.tr("Calling…"))
            self._update_controls()

    def _on_state(self, log_id: int, state: str) -> None:
        if log_id != self._current or state == CallState.DISCONNECTED:
            return
        self._state = state
        texts = {CallState.CALLING: self.tr("Calling…"), CallState.RINGING: self.tr("Ringing…"),
                 CallState.CONNECTING: self.tr("Connecting…"),
                 CallState.CONNECTED: self.tr("Connected")}
        self._set_state_text(texts.get(CallState(state), state))
        if state == CallState.CONNECTED and self._connected_at is None:
            self._connected_at = time.monotonic()
            self._update_timer()
            self._tick.start()
        self._update_controls()

    def _on_ended(self, log_id: int, outcome: str, reason: str) -> None:
        if log_id == self._incoming:
            self._incoming = None
            self.banner.hide()
            if outcome == "missed":
                self._set_state_text(self.tr("Missed call from %1").replace(
                    "%1", self._incoming_number))
        if log_id != self._current:
            self._update_controls()
            return
        self._current = None
        self._state = ""
        self._tick.stop()
        self._held = self._muted = self._rec_paused = False
        self.hold_button.setChecked(False)
        self.mute_button.setChecked(False)
        self.pause_rec_button.setChecked(False)
        self.pause_rec_button.setText(self.tr("Pause recording"))
        self.transfer_button.setChecked(False)
        self._set_state_text(self.tr("Call ended: %1").replace("%1", reason))
        self._update_controls()

    def _on_incoming(self, log_id: int, customer_id: int, number: str, display: str) -> None:
        self._incoming = log_id
        self._incoming_customer = customer_id
        self._incoming_number = number
        name = self._calls.customer_name(customer_id) if customer_id else ""
        self.banner.show_call(name or display, number, bool(customer_id))
        if customer_id:
            self.open_customer_requested.emit(customer_id)
        self._update_controls()

    def _on_hold(self, log_id: int, held: bool) -> None:
        if log_id == self._current:
            self._held = held
            self.hold_button.setChecked(held)
            self.hold_button.setText(self.tr("Resume") if held else self.tr("Hold"))
            self._set_state_text(self.tr("On hold") if held else self.tr("Connected"))

    def _on_mute(self, log_id: int, muted: bool) -> None:
        if log_id == self._current:
            self._muted = muted
            self.mute_button.setChecked(muted)
            self.mute_button.setText(self.tr("Unmute") if muted else self.tr("Mute"))

    def _on_stats(self, log_id: int, st: MediaStats) -> None:
        if log_id != self._current:
            return
        self.quality_label.setText(
            self.tr("%1 · jitter %2 ms · loss %3 %").replace("%1", st.codec)
            .replace("%2", f"{st.rx_jitter_ms:.1f}").replace("%3", f"{st.rx_loss_percent:.1f}"))

    # -- display --------------------------------------------------------------------------
    def _set_state_text(self, text: str) -> None:
        self.state_label.setText(text)

    def _update_timer(self) -> None:
        if self._connected_at is not None:
            self.timer_label.setText(format_elapsed(time.monotonic() - self._connected_at))

    def _is_live(self) -> bool:
        return self._current is not None and self._state in _LIVE

    def _update_controls(self) -> None:
        live = self._is_live()
        connected = live and self._state == CallState.CONNECTED
        self.dial_button.setEnabled(not live and self.number_combo.count() > 0)
        self.number_combo.setEnabled(not live)
        self.manual_dial_button.setEnabled(not live)
        self.hangup_button.setEnabled(live or self._incoming is not None)
        for b in (self.hold_button, self.mute_button, self.transfer_button,
                  self.pause_rec_button):
            b.setEnabled(connected)
        self.esc_shortcut.setEnabled(live)
        self.answer_shortcut.setEnabled(self._incoming is not None)

    @property
    def current_call(self) -> int | None:
        return self._current
