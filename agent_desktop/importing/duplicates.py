"""Duplicate detection by E.164: rows of the file that share a number, and rows whose
number an existing customer already has (looked up through `ix_phone_numbers_e164`).

Rows are grouped with union-find: if row 3 shares a number with row 9 and row 9 shares
another number with row 40, all three are one group, so a merge never splits a person.
Only valid numbers (with an E.164 form) take part: an unparsable number is too uncertain to
claim two rows are the same customer.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import bindparam, text

from agent_desktop.importing.results import DuplicateGroup, ExistingMatch
from agent_desktop.store.db import Database

_LOOKUP_CHUNK = 500


class DuplicateFinder:
    """Feed every valid row with `add()`, then call `groups()` once."""

    def __init__(self) -> None:
        self._first_line: dict[str, int] = {}
        self._count: dict[str, int] = defaultdict(int)
        self._parent: dict[int, int] = {}
        self._numbers: dict[int, list[str]] = {}
        self._names: dict[int, str] = {}

    def _find(self, line: int) -> int:
        root = line
        while self._parent.get(root, root) != root:
            root = self._parent[root]
        while line != root:  # path compression
            nxt = self._parent.get(line, line)
            self._parent[line] = root
            line = nxt
        return root

    def add(self, line: int, name: str, e164s: list[str]) -> None:
        if not e164s:
            return
        self._numbers[line] = e164s
        self._names[line] = name
        for e in e164s:
            self._count[e] += 1
            first = self._first_line.get(e)
            if first is None:
                self._first_line[e] = line
            else:
                a, b = self._find(line), self._find(first)
                if a != b:
                    self._parent[max(a, b)] = min(a, b)

    def _existing(self, db: Database) -> dict[str, list[ExistingMatch]]:
        found: dict[str, list[ExistingMatch]] = defaultdict(list)
        numbers = list(self._first_line)
        sql = text(
            "SELECT p.e164, c.id, c.name, c.company FROM phone_numbers p"
            " JOIN customers c ON c.id = p.customer_id"
            " WHERE p.e164 IN :nums AND p.deleted_at IS NULL AND c.deleted_at IS NULL"
            " ORDER BY c.id"
        ).bindparams(bindparam("nums", expanding=True))
        with db.engine.connect() as conn:
            for i in range(0, len(numbers), _LOOKUP_CHUNK):
                chunk = numbers[i:i + _LOOKUP_CHUNK]
                for e164, cid, name, company in conn.execute(sql, {"nums": chunk}):
                    matches = found[e164]
                    if all(m.customer_id != cid for m in matches):
                        matches.append(ExistingMatch(cid, name, company))
        return found

    def groups(self, db: Database) -> tuple[list[DuplicateGroup], dict[int, int]]:
        """Groups in file order and a map line → group id for every grouped line."""
        existing = self._existing(db)
        members: dict[int, list[int]] = defaultdict(list)
        for line in sorted(self._numbers):
            members[self._find(line)].append(line)
        groups: list[DuplicateGroup] = []
        group_of_line: dict[int, int] = {}
        for root in sorted(members):
            lines = members[root]
            shared: list[str] = []
            matches: list[ExistingMatch] = []
            for line in lines:
                for e in self._numbers[line]:
                    dup = self._count[e] > 1 or e in existing
                    if dup and e not in shared:
                        shared.append(e)
                    for m in existing.get(e, []):
                        if all(x.customer_id != m.customer_id for x in matches):
                            matches.append(m)
            if len(lines) < 2 and not matches:
                continue
            gid = len(groups)
            groups.append(DuplicateGroup(gid, lines, [self._names[ln] for ln in lines],
                                         shared, matches))
            for line in lines:
                group_of_line[line] = gid
        return groups, group_of_line
