"""Each phone number of an import parsed once: the scan's results reused by the run.

Why: `phonenumbers.parse` plus the validity check cost ~25-30 µs a number, and the import
reads the file twice (the scan finds duplicates before anything is written, the run
writes), so every number used to be parsed twice. The scan fills this cache and the run
takes its results from it; both ask through `normalize(normalizer, raw)`, so a number
that is not cached (over the limit, or another region) is simply parsed again — never a
different answer.

Memory: a valid number (nearly all of them) is kept as its E.164 text under its typed
text, ~170 bytes; the `NormalizedPhone` is rebuilt on a hit. The limit keeps a huge file
(250,000 numbers, ~40 MiB) from holding more than that; the numbers past it are parsed
twice as before.
"""

from __future__ import annotations

from agent_desktop.phones import NormalizedPhone, PhoneNormalizer

DEFAULT_LIMIT = 250_000


class PhoneCache:
    """Normalised numbers by (default region, text as passed); one cache per import."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        # region → typed text → E.164 of a valid number, or the whole result otherwise
        self._by_region: dict[str, dict[str, str | NormalizedPhone]] = {}
        self._size = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return self._size

    def normalize(self, normalizer: PhoneNormalizer, raw: str) -> NormalizedPhone:
        """What `normalizer.normalize(raw)` returns, from the cache when known."""
        known = self._by_region.get(normalizer.default_region)
        if known is None:
            known = self._by_region[normalizer.default_region] = {}
        found = known.get(raw)
        if found is not None:
            self.hits += 1
            if isinstance(found, str):  # "+" and ASCII digits, checked when stored
                return NormalizedPhone(raw, found, found[:0:-1], True)
            return found
        self.misses += 1
        n = normalizer.normalize(raw)
        if self._size < self.limit:
            self._size += 1
            e164 = n.e164
            plain = (n.valid and not n.problem and e164 is not None and e164[:1] == "+"
                     and e164[1:].isdigit() and e164.isascii()
                     and n.rev_digits == e164[:0:-1])
            known[raw] = e164 if plain and e164 is not None else n
        return n

    def clear(self) -> None:
        """Free the memory once the import is written."""
        self._by_region.clear()
        self._size = 0
