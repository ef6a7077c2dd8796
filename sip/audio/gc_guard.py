"""Keep a full garbage collection of the whole heap from stopping call audio.

Why (measured with the call benchmark's per-event diagnostics, docs/decisions.md): a
collection holds the GIL from start to end, and every audio callback needs the GIL — the
pjmedia clock's port callbacks and the Qt audio thread's reads. A generation-2
collection walks every tracked object in the process: with pjsua2, SQLAlchemy, Qt and
the customer list loaded that took 97–228 ms here, longer than any prebuffer a
conversation tolerates (40 ms), and the one that came 2 s into a call left a mic underrun
and three overruns in a single instant. Generations 0 and 1 took 2–20 ms.

`gc.freeze()` moves every object that exists now into a permanent generation the
collector does not walk, in O(1) (it splices lists). Done when a call's audio starts,
collections during the call only walk what the call created (list pages, log records),
and `gc.unfreeze()` at the end of the call hands the frozen objects back to the oldest
generation, so garbage cycles from before the call are still collected — just not while
the agent is talking. If something else froze the heap already (a start-up
`gc.freeze()` in the composition root), the guard freezes the new objects too and leaves
the heap frozen at the end rather than undoing that choice.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


class CallGcGuard:
    """`enter()` when call audio starts, `exit()` when it stops; both idempotent."""

    def __init__(self) -> None:
        self._active = False
        self._was_frozen = False

    @property
    def active(self) -> bool:
        return self._active

    def enter(self) -> None:
        if self._active:
            return
        self._active = True
        self._was_frozen = gc.get_freeze_count() > 0
        gc.freeze()
        log.debug("call audio: %d objects kept out of garbage collection",
                  gc.get_freeze_count())

    def exit(self) -> None:
        if not self._active:
            return
        self._active = False
        if not self._was_frozen:
            gc.unfreeze()
