"""How common each digit trigram is in the search documents' phones column, and which
trigrams of a long digit run to ask FTS5 for (used by `agent_desktop.search`)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Connection


class DigitStats:
    """How common each digit trigram is in the phones column, from a small sample.

    Why: a digit query is a trigram phrase, and FTS5 walks the doclist of every trigram of
    it. Some trigrams sit in most numbers ("861" of +86 1xx, "491" of +49 1xx): counting
    "861" alone costs ~30 ms at 1M customers, so "486135" cost 8.4 ms of CPU while
    `NEAR("486" "135", 2)` costs 0.5 ms. Queries of 5+ digits therefore ask FTS5 for the
    pair of trigrams cheapest to read and check (at their distance) and check the exact
    digit run with LIKE on the candidates, or for the exact phrase when every trigram is
    rare enough (`narrow`). The sample only steers the choice; results are exact either way.
    """

    CHUNKS = 6
    CHUNK_ROWS = 300
    # What checking one candidate costs (fetch its search document, LIKE the run) in doclist
    # entries read: ~2.3 µs against ~11 ns at 1M (thread CPU of NEAR pairs and phrases of
    # the bench's 5-7 digit queries, 19 to 5176 candidates).
    CANDIDATE_COST = 200.0
    MAX_AGE_S = 600.0
    # A sample of a nearly empty store (first start, before an import or the first sync)
    # is taken again soon: the store may hold a million rows a minute later.
    SMALL_MAX_AGE_S = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._share: dict[str, float] = {}
        self._docs = 0
        self._taken_at = -1e18

    def share(self, conn: Connection) -> dict[str, float]:
        with self._lock:
            full = self._docs >= self.CHUNKS * self.CHUNK_ROWS
            if time.monotonic() - self._taken_at > (
                    self.MAX_AGE_S if full else self.SMALL_MAX_AGE_S):
                self._share = self._sample(conn)
                self._taken_at = time.monotonic()
            return self._share

    def _sample(self, conn: Connection) -> dict[str, float]:
        """Contiguous id ranges spread over the table: a few pages each, not a scan."""
        # Two subqueries: `SELECT min(id), max(id)` in one select is a full scan in
        # SQLite (~100 ms at 1M, on the first digit query and every refresh); alone each
        # is one b-tree descent.
        lo, hi = conn.exec_driver_sql(
            "SELECT (SELECT min(id) FROM customer_search_docs),"
            " (SELECT max(id) FROM customer_search_docs)").one()
        self._docs = 0
        if lo is None:
            return {}
        counts: dict[str, int] = {}
        docs = 0
        step = max(1, (int(hi) - int(lo)) // self.CHUNKS)
        for start in range(int(lo), int(hi) + 1, step):
            for (phones,) in conn.exec_driver_sql(
                    "SELECT phones FROM customer_search_docs WHERE id >= ? AND id < ?"
                    " ORDER BY id LIMIT ?", (start, start + step, self.CHUNK_ROWS)):
                docs += 1
                for gram in {phones[i:i + 3] for i in range(len(phones) - 2)}:
                    counts[gram] = counts.get(gram, 0) + 1
        self._docs = docs
        return {g: n / docs for g, n in counts.items()}

    @classmethod
    def narrow(cls, digits: str, share: dict[str, float]) -> tuple[str, str, int] | None:
        """The two trigrams of `digits` cheapest to ask for together, and how many tokens
        apart they are; None when the exact phrase is cheaper (always for <= 4 digits)."""
        if len(digits) < 5 or not share:
            return None
        grams = [digits[i:i + 3] for i in range(len(digits) - 2)]
        f = [share.get(g, 0.0) for g in grams]

        def cost(i: int, j: int) -> tuple[float, int]:
            # Reading both doclists, plus the candidates both occur in (each fetched and
            # checked). Overlapping trigrams share digits, so they are not independent:
            # each extra digit is roughly 1 in 10. Adjacent trigrams (a 4-digit run) left
            # ~900 candidates at 1M, 2-3 ms; two trigrams further apart 19-77, 0.5 ms.
            d = j - i
            both = f[i] * f[j] if d >= 3 else min(f[i], f[j]) * 10.0 ** -d
            return f[i] + f[j] + cls.CANDIDATE_COST * both, -d

        (c, _d), i, j = min((cost(i, j), i, j) for i in range(len(grams))
                            for j in range(i + 1, len(grams)))
        # The phrase walks every trigram's doclist but leaves no candidate to check.
        if sum(f) <= c:
            return None
        return grams[i], grams[j], j - i - 1
