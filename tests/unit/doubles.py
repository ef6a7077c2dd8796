"""Small test doubles shared by unit tests (fixtures live in conftest.py)."""

from __future__ import annotations


class Callers:
    """Caller-ID lookup double: a fixed number → customer table, recording each question."""

    def __init__(self, table: dict[str, int]) -> None:
        self.table = table
        self.asked: list[str] = []

    def caller_id(self, number: str) -> int | None:
        self.asked.append(number)
        return self.table.get(number)
