"""Export customers to CSV (UTF-8 with BOM, or GB18030) and XLSX, streaming.

Why these choices: Excel on Windows opens a UTF-8 CSV correctly only when it starts with a
BOM, and older Chinese Excel installs expect GB18030/GBK; XLSX avoids the question. The
columns are what the importer reads back (agent_desktop/importing/mapping.py guesses
them), so that export → import round-trips:

- Name, Company, City, Country, Email, Status, Stage, Owner, Do not call: one column each;
- phones: one column per (position, label) in use, in position order — "Phone 1 (mobile)",
  "Phone 1 (work)", "Phone 2 (mobile)" … — a customer's k-th number sits in the column of
  its label and the others of that position stay empty. A column header is the only place
  a spreadsheet can carry a label, and the importer reads columns left to right, so both
  order and label come back;
- Tags: one column, ", "-separated (a tag cannot contain a comma);
- notes: "Note" when no customer has more than one, else "Note 1" … "Note N", oldest first,
  one note per cell (never joined, so no text is merged or lost).

The importer reads every label back (mobile, work, home, fax, other) and each note column
as its own note. Sync bookkeeping, note authors and times, and follow-up tasks are not
exported.

Rows are read page by page with keyset pagination (never all customers as ORM objects),
written to a temporary file next to the target and renamed into place at the end, so a
failed or cancelled export never leaves half a file under the chosen name.

A value that starts with "=" is written as text in XLSX (never a formula). CSV carries the
text as it is: prefixing it would break the round trip; Excel users opening CSVs from
untrusted sources are warned by Excel itself.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text

from agent_desktop.customers import PHONE_LABELS
from agent_desktop.store.db import Database

log = logging.getLogger(__name__)

PAGE = 1000
FIXED_COLUMNS = ("Name", "Company", "City", "Country", "Email", "Status", "Stage", "Owner",
                 "Do not call")


class ExportFormat(StrEnum):
    CSV_UTF8 = "csv-utf8"
    CSV_GB18030 = "csv-gb18030"
    XLSX = "xlsx"

    @property
    def suffix(self) -> str:
        return ".xlsx" if self is ExportFormat.XLSX else ".csv"


class ExportError(RuntimeError):
    """The export could not be written; `str()` says why in plain words."""


class ExportCancelled(ExportError):
    """The agent cancelled; no file was written under the chosen name."""


@dataclass
class ExportResult:
    path: Path
    format: ExportFormat
    rows: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    values: list[str]


@dataclass(frozen=True)
class _Layout:
    """The variable columns: phone (position, label) slots and the number of notes."""

    phone_slots: tuple[tuple[int, str], ...]
    notes: int

    def header(self) -> list[str]:
        phones = [f"Phone {pos} ({label})" for pos, label in self.phone_slots]
        notes = ["Note"] if self.notes <= 1 else [f"Note {i + 1}" for i in
                                                  range(self.notes)]
        return [*FIXED_COLUMNS, *phones, "Tags", *notes]

    def cells(self, phones: list[tuple[str, str]], tags: list[str],
              notes: list[str]) -> list[str]:
        by_slot = {(i + 1, label): raw for i, (raw, label) in enumerate(phones)}
        out = [by_slot.get(slot, "") for slot in self.phone_slots]
        out.append(", ".join(tags))
        out += notes + [""] * (max(self.notes, 1) - len(notes))
        return out


def _label_order(label: str) -> tuple[int, str]:
    return (PHONE_LABELS.index(label) if label in PHONE_LABELS else len(PHONE_LABELS), label)


class CustomerExporter:
    """Writes live customers (all, or the given ids) to a file."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _layout(self, ids: Sequence[int] | None) -> _Layout:
        """Which phone (position, label) columns and how many note columns the chosen
        customers need (one pass over phones and notes, in pages of ids if chosen)."""
        where = "WHERE x.deleted_at IS NULL AND c.deleted_at IS NULL {extra}"
        slots_sql = ("SELECT DISTINCT rn, label FROM (SELECT x.label AS label, row_number()"
                     " OVER (PARTITION BY x.customer_id ORDER BY x.position, x.id) AS rn"
                     " FROM phone_numbers x JOIN customers c ON c.id = x.customer_id "
                     + where + ")")
        notes_sql = ("SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM notes x"
                     " JOIN customers c ON c.id = x.customer_id " + where +
                     " GROUP BY x.customer_id)")
        slots: set[tuple[int, str]] = set()
        notes = 0
        with self._db.engine.connect() as conn:
            if ids is None:
                slots.update((int(r), str(lb)) for r, lb in
                             conn.execute(text(slots_sql.format(extra=""))))
                notes = int(conn.execute(text(notes_sql.format(extra=""))).scalar_one())
            else:
                extra = "AND c.id IN :ids"
                slot_stmt = text(slots_sql.format(extra=extra)).bindparams(
                    bindparam("ids", expanding=True))
                note_stmt = text(notes_sql.format(extra=extra)).bindparams(
                    bindparam("ids", expanding=True))
                for i in range(0, len(ids), PAGE):
                    chunk = {"ids": list(ids[i:i + PAGE])}
                    slots.update((int(r), str(lb)) for r, lb in conn.execute(slot_stmt, chunk))
                    notes = max(notes, int(conn.execute(note_stmt, chunk).scalar_one()))
        ordered = tuple(sorted(slots, key=lambda s: (s[0], *_label_order(s[1]))))
        return _Layout(ordered, notes)

    def count(self, ids: Sequence[int] | None = None) -> int:
        if ids is not None:
            return len(ids)
        with self._db.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM customers WHERE deleted_at IS NULL")).scalar_one())

    def _pages(self, ids: Sequence[int] | None, layout: _Layout) -> Iterator[list[_Row]]:
        base = ("SELECT id, name, company, city, country, email, status, stage, owner,"
                " do_not_call FROM customers WHERE deleted_at IS NULL")
        with self._db.engine.connect() as conn:
            after = 0
            id_list = sorted(set(ids)) if ids is not None else None
            pos = 0
            while True:
                if id_list is None:
                    rows = conn.execute(text(base + " AND id > :after ORDER BY id LIMIT :n"),
                                        {"after": after, "n": PAGE}).all()
                else:
                    chunk = id_list[pos:pos + PAGE]
                    pos += PAGE
                    if not chunk:
                        return
                    rows = conn.execute(text(base + " AND id IN :ids ORDER BY id").bindparams(
                        bindparam("ids", expanding=True)), {"ids": chunk}).all()
                if not rows and id_list is None:
                    return
                page_ids = [r.id for r in rows]
                details = self._details(conn, page_ids)
                out: list[_Row] = []
                for r in rows:
                    ph, tags, notes = details[0][r.id], details[1][r.id], details[2][r.id]
                    values = [r.name, r.company, r.city, r.country, r.email, r.status,
                              r.stage, r.owner, "yes" if r.do_not_call else "no"]
                    values += layout.cells(ph, tags, notes)
                    out.append(_Row(values))
                yield out
                if rows:
                    after = rows[-1].id

    @staticmethod
    def _details(conn: Any, ids: list[int]) -> tuple[dict[int, list[tuple[str, str]]],
                                                     dict[int, list[str]],
                                                     dict[int, list[str]]]:
        phones: dict[int, list[tuple[str, str]]] = defaultdict(list)
        tags: dict[int, list[str]] = defaultdict(list)
        notes: dict[int, list[str]] = defaultdict(list)
        if not ids:
            return phones, tags, notes
        phone_stmt = text("SELECT customer_id, raw, label FROM phone_numbers WHERE deleted_at"
                          " IS NULL AND customer_id IN :ids ORDER BY customer_id, position, id"
                          ).bindparams(bindparam("ids", expanding=True))
        for cid, raw, label in conn.execute(phone_stmt, {"ids": ids}):
            phones[cid].append((raw, label))
        queries = (
            (tags, "SELECT customer_id, name FROM tags WHERE deleted_at IS NULL"
                   " AND customer_id IN :ids ORDER BY customer_id, id"),
            (notes, "SELECT customer_id, body FROM notes WHERE deleted_at IS NULL"
                    " AND customer_id IN :ids ORDER BY customer_id, created_at, id"),
        )
        for target, sql in queries:
            stmt = text(sql).bindparams(bindparam("ids", expanding=True))
            for cid, value in conn.execute(stmt, {"ids": ids}):
                target[cid].append(value)
        return phones, tags, notes

    def export(self, path: Path, fmt: ExportFormat, ids: Sequence[int] | None = None,
               progress: Callable[[int, int], None] | None = None,
               cancel: threading.Event | None = None) -> ExportResult:
        """Write the file; raises ExportError (or ExportCancelled) with nothing left behind."""
        started = time.perf_counter()
        path = Path(path)
        result = ExportResult(path, fmt)
        if not path.parent.is_dir():
            raise ExportError(f"The folder {path.parent} does not exist.")
        layout = self._layout(ids)
        header = layout.header()
        total = self.count(ids)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part",
                                            dir=path.parent)
        except OSError as exc:
            raise ExportError(f"Cannot write in {path.parent} ({exc.strerror}).") from exc
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            pages = self._pages(ids, layout)
            if fmt is ExportFormat.XLSX:
                self._write_xlsx(tmp, header, pages, result, total, progress, cancel)
            else:
                encoding = "utf-8-sig" if fmt is ExportFormat.CSV_UTF8 else "gb18030"
                self._write_csv(tmp, encoding, header, pages, result, total, progress, cancel)
            os.replace(tmp, path)
        except OSError as exc:
            log.error("export to %s failed: %r", path, exc)
            raise ExportError(f"Could not write {path.name} ({exc.strerror or exc}).") from exc
        finally:
            if tmp.exists():
                tmp.unlink()
        result.seconds = time.perf_counter() - started
        log.info("exported %d customers to %s in %.1f s", result.rows, path, result.seconds)
        return result

    @staticmethod
    def _tick(result: ExportResult, n: int, total: int,
              progress: Callable[[int, int], None] | None,
              cancel: threading.Event | None) -> None:
        result.rows += n
        if progress is not None:
            progress(result.rows, total)
        if cancel is not None and cancel.is_set():
            raise ExportCancelled("The export was cancelled; no file was written.")

    def _write_csv(self, tmp: Path, encoding: str, header: list[str],
                   pages: Iterator[list[_Row]], result: ExportResult, total: int,
                   progress: Callable[[int, int], None] | None,
                   cancel: threading.Event | None) -> None:
        with tmp.open("w", encoding=encoding, newline="") as fh:
            w = csv.writer(fh, lineterminator="\r\n")  # what Excel writes and expects
            w.writerow(header)
            for page in pages:
                w.writerows(r.values for r in page)
                self._tick(result, len(page), total, progress, cancel)

    def _write_xlsx(self, tmp: Path, header: list[str], pages: Iterator[list[_Row]],
                    result: ExportResult, total: int,
                    progress: Callable[[int, int], None] | None,
                    cancel: threading.Event | None) -> None:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        wb = Workbook(write_only=True)
        ws = wb.create_sheet("Customers")
        stripped = 0

        def cells(values: list[str]) -> list[Any]:
            nonlocal stripped
            out = []
            for v in values:
                clean = ILLEGAL_CHARACTERS_RE.sub("", v)
                if clean != v:
                    stripped += 1
                cell = WriteOnlyCell(ws, value=clean)
                cell.data_type = "s"  # text, even when it starts with "="
                out.append(cell)
            return out

        ws.append(cells(header))
        for page in pages:
            for r in page:
                ws.append(cells(r.values))
            self._tick(result, len(page), total, progress, cancel)
        wb.save(tmp)
        if stripped:
            result.warnings.append(f"{stripped} values contained control characters that "
                                   "XLSX cannot store; those characters were removed.")
