"""Start and stop the real SipEngine repeatedly with calls in flight (run as a subprocess).

`python -m tests.integration.rig.engine_cycles DOMAIN CYCLES` prints `CYCLE n` per round
and `DONE` at the end; an abort in pjsua2's teardown shows as a non-zero exit code (134).
Each round leaves calls in every state: one connected, one ringing (never answered), one
just sent (stop() right after makeCall).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication

from agent_desktop.phone import CallState
from sip.config import SipConfig
from sip.engine import SipEngine


class Seen:
    """Every state each call went through."""

    def __init__(self) -> None:
        self.states: dict[int, list[str]] = {}

    def add(self, cid: int, state: str, _code: int, _reason: str) -> None:
        self.states.setdefault(cid, []).append(state)

    def reached(self, cid: int, state: str) -> bool:
        return state in self.states.get(cid, [])


def pump(app: QCoreApplication, until: float, done: Callable[[], bool]) -> None:
    while time.monotonic() < until and not done():
        app.processEvents()
        time.sleep(0.005)


def main() -> int:
    domain, cycles = sys.argv[1], int(sys.argv[2])
    app = QCoreApplication([])
    for n in range(1, cycles + 1):
        engine = SipEngine(SipConfig(bind_address="127.0.0.1"))
        seen = Seen()
        engine.call_state_changed.connect(seen.add)
        engine.start()
        answered = engine.dial(f"sip:answer@{domain}")
        ringing = engine.dial(f"sip:noanswer@{domain}")
        def both_up(s: Seen = seen, a: int = answered, r: int = ringing) -> bool:
            return s.reached(a, CallState.CONNECTED) and s.reached(r, CallState.RINGING)

        pump(app, time.monotonic() + 5, both_up)
        flying = engine.dial(f"sip:answer@{domain}")  # in flight at stop()
        engine.stop()
        all_ended = all(seen.reached(c, CallState.DISCONNECTED)
                        for c in (answered, ringing, flying))
        print(f"CYCLE {n} connected={seen.reached(answered, CallState.CONNECTED)} "
              f"ringing={seen.reached(ringing, CallState.RINGING)} all_ended={all_ended}",
              flush=True)
        del engine
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
