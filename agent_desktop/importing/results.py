"""Plain data the import hands back: preview, plan (after the scan), result (after the run).

These are frozen/plain dataclasses rather than ORM objects so that they can cross from the
worker thread to the GUI thread safely and be kept after the sessions are gone.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from agent_desktop.importing.mapping import Field
from agent_desktop.importing.phone_cache import PhoneCache
from agent_desktop.importing.readers import ReadOptions, SourceFormat
from agent_desktop.importing.spill import RowSpill


class DuplicateAction(StrEnum):
    """What to do with one duplicate group (rows sharing an E.164 number)."""

    MERGE = "merge"  # into the existing customer (or into the group's first row)
    NEW = "new"  # import every row as its own customer
    SKIP = "skip"  # leave out the rows that duplicate something


@dataclass(frozen=True)
class RowProblem:
    """One line of the report: `kind` is "rejected" or "warning"."""

    line: int
    kind: str
    reason: str
    content: str = ""


@dataclass(frozen=True)
class FileStamp:
    """Size and mtime at scan time: the run refuses a file that changed since."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Preview:
    """First rows of a file with the detected format and a guessed mapping."""

    path: Path
    options: ReadOptions
    format: SourceFormat
    header_line: int
    headers: list[str]
    rows: list[tuple[int, tuple[str, ...]]]  # (line, values), up to the preview limit
    mapping: list[Field]


@dataclass(frozen=True)
class ExistingMatch:
    customer_id: int
    name: str
    company: str


@dataclass
class DuplicateGroup:
    """File rows (and maybe existing customers) that share at least one E.164 number."""

    id: int
    lines: list[int]
    names: list[str]
    numbers: list[str]  # shared E.164 numbers
    existing: list[ExistingMatch] = field(default_factory=list)
    action: DuplicateAction = DuplicateAction.MERGE

    @property
    def against_existing(self) -> bool:
        return bool(self.existing)


@dataclass
class ImportPlan:
    """Everything the scan learned; the run needs it plus the agent's choices."""

    path: Path
    format: SourceFormat
    headers: list[str]
    mapping: list[Field]
    stamp: FileStamp
    total_rows: int
    valid_rows: int
    rejected: list[RowProblem]
    warnings: list[RowProblem]
    groups: list[DuplicateGroup]
    group_of_line: dict[int, int]
    # The scan's parsed numbers, reused by the run (each number parsed once per import).
    phones: PhoneCache = field(default_factory=PhoneCache, repr=False, compare=False)
    # A workbook's rows as the scan read them, for the run (`spill.py`); None for CSV.
    spill: RowSpill | None = field(default=None, repr=False, compare=False)

    def set_all(self, action: DuplicateAction) -> None:
        for g in self.groups:
            g.action = action


@dataclass
class ImportResult:
    """Exactly what happened. `complete` is False when the run stopped early; then
    `committed_through` is the last file line whose row is safely in the database."""

    path: Path
    total_rows: int = 0
    imported: int = 0  # new customers
    merged: int = 0  # rows merged into an existing customer or an earlier row
    skipped: int = 0  # duplicate rows the agent chose to skip
    rejected: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    committed_through: int = 0
    complete: bool = False
    cancelled: bool = False
    failure: str = ""
    seconds: float = 0.0

    @property
    def problems(self) -> list[RowProblem]:
        return sorted(self.rejected + self.warnings, key=lambda p: (p.line, p.kind))

    def summary(self) -> str:
        """One paragraph in plain words (English; the dialog builds its own translated one)."""
        parts = [f"{self.imported} imported as new customers", f"{self.merged} merged",
                 f"{self.skipped} skipped as duplicates", f"{len(self.rejected)} rejected"]
        text = f"{self.total_rows} rows read: " + ", ".join(parts) + "."
        if self.failure:
            text += (f" The import STOPPED: {self.failure} Rows up to line "
                     f"{self.committed_through} were saved; nothing after it was imported.")
        elif self.cancelled:
            text += (f" Cancelled: rows up to line {self.committed_through} were saved; "
                     "nothing after it was imported.")
        return text

    def write_report(self, target: Path) -> None:
        """The report as CSV (UTF-8 with BOM, so Excel shows Chinese correctly)."""
        with Path(target).open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["line", "kind", "reason", "content"])
            for p in self.problems:
                w.writerow([p.line, p.kind, p.reason, p.content])

    def report_text(self) -> str:
        """Tab-separated lines for the clipboard."""
        lines = [self.summary(), ""]
        lines += [f"{p.line}\t{p.kind}\t{p.reason}\t{p.content}" for p in self.problems]
        return "\n".join(lines)
