"""Exponential backoff with full jitter (AWS architecture blog's "full jitter").

Fifty agents whose laptops reconnect at the same moment must not retry in lock-step:
each delay is uniform in [0, min(cap, base * 2**attempt)].
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delay generator; `reset()` after a success, `next_delay()` after each failure."""

    def __init__(self, base_s: float = 1.0, cap_s: float = 300.0,
                 rand: Callable[[], float] = random.random) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("backoff needs 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self._rand = rand
        self.attempt = 0

    def next_delay(self, at_least: float | None = None) -> float:
        """Delay before the next try; `at_least` honours a server's Retry-After."""
        ceiling = min(self.cap_s, self.base_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        delay = self._rand() * ceiling
        if at_least is not None:
            delay = max(delay, min(at_least, self.cap_s))
        return delay

    def reset(self) -> None:
        self.attempt = 0
