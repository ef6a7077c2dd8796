"""Connect and hang up calls back to back with the real SipEngine (run as a subprocess).

`python -m tests.integration.rig.rapid_calls BUSY_URI URI N` first places 25 calls to
BUSY_URI (each ends at once with 486), then N connect/hang-up cycles to URI, printing
`CYCLE i connected|<states>` per cycle and `DONE`. That is the pattern of the call
benchmark that aborted (measured: at the 7th cycle); an abort inside pjlib (ioqueue slots
exhausted by sockets closed less than 500 ms ago — see sip.engine.KEY_RECYCLE_S) shows as
exit code -6/134 instead.
"""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QCoreApplication

from agent_desktop.phone import CallState
from sip.config import SipConfig
from sip.engine import SipEngine


def main() -> int:
    busy_uri, uri, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = QCoreApplication([])
    engine = SipEngine(SipConfig(bind_address="127.0.0.1", codecs=("PCMU",)))
    engine.start()
    states: dict[int, list[str]] = {}
    engine.call_state_changed.connect(
        lambda cid, st, _c, _r: states.setdefault(cid, []).append(st))

    def until(pred: object, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not pred() and time.monotonic() < deadline:  # type: ignore[operator]
            app.processEvents()
            time.sleep(0.001)
        return bool(pred())  # type: ignore[operator]

    for _ in range(25):
        cid = engine.dial(busy_uri)
        until(lambda c=cid: CallState.DISCONNECTED in states.get(c, []))
    for i in range(n):
        cid = engine.dial(uri)
        ok = until(lambda c=cid: CallState.CONNECTED in states.get(c, []))
        if ok:
            engine.hangup(cid)
        until(lambda c=cid: CallState.DISCONNECTED in states.get(c, []))
        print(f"CYCLE {i} {'connected' if ok else states.get(cid)}", flush=True)
    engine.stop()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
