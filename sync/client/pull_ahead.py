"""Fetch the next pulled page on a helper thread while the current one is being applied.

Why: a page costs the server time to build and this process time to decode and write. In
sequence a long download costs their sum; with one page fetched ahead it costs about the
slower of the two (the server is another process, and the socket wait and SQLite's C code
release the GIL). Only reads happen on the helper thread: every database write stays on
the caller's thread, so a page is still applied with its cursor in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

Fetch = Callable[[str | None, int], dict[str, Any]]


class PageFetcher:
    """At most one request ahead, keyed by the cursor it was made with."""

    def __init__(self, fetch: Fetch, release: Callable[[], None]) -> None:
        self._fetch = fetch
        self._release = release  # run on the helper thread before it ends
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[str | None, Future[dict[str, Any]]] | None = None

    def get(self, cursor: str | None, limit: int) -> dict[str, Any]:
        """The page at `cursor`: the one fetched ahead if it was for this cursor (its
        error, if it failed, is raised now), else a request made here and now."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == cursor:
            return ahead[1].result()
        return self._fetch(cursor, limit)

    def prefetch(self, cursor: str | None, limit: int) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="sync-pull-ahead")
        self._ahead = (cursor, self._pool.submit(self._fetch, cursor, limit))

    def ready(self, cursor: str | None) -> dict[str, Any] | None:
        """A look at the page fetched ahead for `cursor` if it has already arrived without
        error, else None (it stays for `get`, which also raises a failed request's error)."""
        ahead = self._ahead
        if ahead is None or ahead[0] != cursor or not ahead[1].done() \
                or ahead[1].exception() is not None:
            return None
        return ahead[1].result()

    def close(self) -> None:
        """Wait for a request still in flight (its page is dropped, unapplied) and end the
        helper thread, closing its HTTP session."""
        self._ahead = None
        if self._pool is not None:
            self._pool.submit(self._release)
            self._pool.shutdown(wait=True)
            self._pool = None
