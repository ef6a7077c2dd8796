"""Registration outcome in plain words, and the backoff between attempts.

Why our own backoff: pjsua's built-in retry uses one fixed interval, which either hammers
a registrar that is down or leaves an agent unregistered for minutes after it is back.
Attempts after a failure wait 2, 5, 10, 30, 60, 120 then 300 s; success resets it.
"""

from __future__ import annotations

from agent_desktop.phone import RegState

_UNREACHABLE = {408, 503, 502, 504, 0}


def describe_registration(code: int, reason: str, expiration: int) -> tuple[RegState, str]:
    """(state, sentence) for a REGISTER result as pjsua2 reports it in `onRegState`."""
    if 200 <= code < 300:
        if expiration > 0:
            return RegState.REGISTERED, "Registered"
        return RegState.UNREGISTERED, "Not registered"
    if code in (401, 403, 407):
        return RegState.FAILED, f"Wrong password ({code})"
    if code == 404:
        return RegState.FAILED, "Unknown SIP user (404)"
    if code in _UNREACHABLE or code >= 700:
        shown = f" ({code})" if code else ""
        return RegState.FAILED, f"Registrar unreachable{shown}"
    return RegState.FAILED, f"Registration refused: {reason} ({code})"


class RegistrationPolicy:
    def __init__(self, backoff_s: tuple[int, ...]) -> None:
        if not backoff_s or any(d <= 0 for d in backoff_s):
            raise ValueError("Registration backoff needs positive delays.")
        self._backoff = backoff_s
        self._failures = 0

    @property
    def failures(self) -> int:
        return self._failures

    def next_delay(self) -> int:
        delay = self._backoff[min(self._failures, len(self._backoff) - 1)]
        self._failures += 1
        return delay

    def succeeded(self) -> None:
        self._failures = 0
