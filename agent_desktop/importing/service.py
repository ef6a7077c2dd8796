"""ImportService: preview → scan (validate + find duplicates) → run (write in batches).

Why two passes over the file: the agent must see the duplicate groups and choose merge /
new / skip before anything is written, and keeping 100,000 validated rows in memory
between the two steps would cost far more than reading the file again (reading is ~1 s per
100k rows; a stamp of size and mtime makes sure it is the same file). What the second
pass would repeat at a price, parsing the phone numbers, it takes from the plan
(`phone_cache.PhoneCache`).

Writes happen in `db.transaction()`, one transaction per batch: new customers through Core
with outbox rows identical to the ORM hook's (`core_rows.py`), merges through the ORM so
the hook records them, both in the batch's transaction. A failing batch is rolled back and
the result says exactly which lines were saved.

Thread use: every method blocks and may run on a worker thread (the dialog does that);
`progress` is called from that thread, `cancel` is checked between batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from agent_desktop.importing.duplicates import DuplicateFinder
from agent_desktop.importing.mapping import (
    CustomerDraft,
    Field,
    RowConverter,
    RowRejected,
    guess_mapping,
)
from agent_desktop.importing.phone_cache import PhoneCache
from agent_desktop.importing.readers import (
    ImportFileError,
    RawRow,
    ReadOptions,
    SourceFormat,
    iter_rows,
    resolve_format,
)
from agent_desktop.importing.results import (
    DuplicateAction,
    FileStamp,
    ImportPlan,
    ImportResult,
    Preview,
    RowProblem,
)
from agent_desktop.importing.spill import RowSpill
from agent_desktop.importing.writer import BatchWriter
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
PREVIEW_ROWS = 50
_CONTENT_MAX = 300


def _content(row: RawRow) -> str:
    text = row.text
    return text if len(text) <= _CONTENT_MAX else text[:_CONTENT_MAX] + "…"


class ImportService:
    """Imports customers from CSV/XLSX files into the local store."""

    def __init__(self, db: Database, normalizer: PhoneNormalizer, *,
                 batch_size: int = 2000) -> None:
        """`batch_size` rows per transaction. 2,000 rather than 1,000: each commit writes
        every page the batch touched (random-keyed uuid/number indexes, FTS segments) to
        the WAL and checkpoints it, so the writes shrink with fewer commits (20k rows:
        298 → 213 MiB for a 66 MiB database) while a batch still holds the write lock for
        only ~0.5 s and a failed batch names its lines."""
        self._db = db
        self._normalizer = normalizer
        self.batch_size = batch_size

    # -- step 1: preview -----------------------------------------------------------------

    def preview(self, path: Path, options: ReadOptions | None = None,
                limit: int = PREVIEW_ROWS) -> Preview:
        """Detect the format, read the header and the first rows, guess the mapping."""
        path = Path(path)
        options = options or ReadOptions()
        fmt = resolve_format(path, options)
        rows: list[tuple[int, tuple[str, ...]]] = []
        with closing(iter_rows(path, fmt)) as it:
            header = self._header(it, fmt)
            for row in it:
                rows.append((row.line, row.values))
                if len(rows) >= limit:
                    break
        if not rows:
            raise ImportFileError(f"The file has only a header (line {header.line}) and no "
                                  "customer rows to import.")
        headers = list(header.values)
        return Preview(path, options, fmt, header.line, headers, rows, guess_mapping(headers))

    @staticmethod
    def _header(it: Iterator[RawRow], fmt: SourceFormat) -> RawRow:
        header = next(it, None)
        if header is None:
            what = "sheet" if fmt.kind == "xlsx" else "file"
            raise ImportFileError(f"The {what} is empty: there is no header line and no rows.")
        if header.error:
            hint = (" Choose the file's encoding (GB18030 for Chinese Excel files)."
                    if "undecodable" in header.error else "")
            raise ImportFileError(f"The header (line {header.line}) cannot be read: "
                                  f"{header.error}.{hint}")
        if header.values and header.values[0].startswith("\ufeff"):
            # A UTF-8 BOM read with a plain "utf-8" override: not part of the first name.
            first = header.values[0].lstrip("\ufeff").strip()
            header = RawRow(header.line, (first, *header.values[1:]), "", header.last_line)
        return header

    # -- step 2: scan ----------------------------------------------------------------------

    def scan(self, preview: Preview, mapping: list[Field] | None = None,
             progress: Progress | None = None,
             cancel: threading.Event | None = None) -> ImportPlan:
        """Validate every row and find duplicate groups; writes nothing."""
        mapping = list(mapping if mapping is not None else preview.mapping)
        headers = preview.headers
        if len(mapping) != len(headers):
            raise ImportFileError(f"The mapping has {len(mapping)} columns but the file has "
                                  f"{len(headers)}.")
        phones = PhoneCache()
        converter = RowConverter(mapping, headers, self._normalizer,
                                 pad_short=preview.format.kind == "xlsx", phones=phones)
        stamp = FileStamp.of(preview.path)
        finder = DuplicateFinder()
        rejected: list[RowProblem] = []
        warnings: list[RowProblem] = []
        # A workbook's rows are recorded for the run (`spill.py`); a CSV is re-read.
        spill = self._spill() if preview.format.kind == "xlsx" else None
        source = iter_rows(preview.path, preview.format)
        try:
            total, valid, undecodable = self._scan_rows(
                spill.record(source) if spill is not None else source, preview.format,
                converter, finder, rejected, warnings, progress, cancel)
        except BaseException:
            if spill is not None:
                spill.discard()
            raise
        finally:
            source.close()
        if spill is not None:
            spill.finish()
        if total == 0:
            if spill is not None:
                spill.discard()
            raise ImportFileError("The file has only a header and no customer rows to import.")
        groups, group_of_line = finder.groups(self._db)
        fmt = preview.format
        if undecodable:
            fmt.notes.append(f"{undecodable} rows contain bytes that are not valid "
                             f"{fmt.encoding} text: the file is probably in another encoding.")
        log.info("scanned %s: %d rows, %d valid, %d rejected, %d duplicate groups",
                 preview.path, total, valid, len(rejected), len(groups))
        return ImportPlan(preview.path, fmt, headers, mapping, stamp, total, valid, rejected,
                          warnings, groups, group_of_line, phones, spill)

    def _spill(self) -> RowSpill | None:
        """A row file next to the database; None (read the workbook twice) if that fails."""
        folder = self._db.path.parent if self._db.path is not None else None
        if folder is None:
            return None
        try:
            return RowSpill(folder)
        except OSError as exc:
            log.warning("no row file for the import in %s (%r): the workbook is read twice",
                        folder, exc)
            return None

    def _scan_rows(self, rows: Iterator[RawRow], fmt: SourceFormat, converter: RowConverter,
                   finder: DuplicateFinder, rejected: list[RowProblem],
                   warnings: list[RowProblem], progress: Progress | None,
                   cancel: threading.Event | None) -> tuple[int, int, int]:
        """Validate every row and feed the duplicate finder: (rows, valid, undecodable)."""
        total = valid = undecodable = 0
        self._header(rows, fmt)
        for row in rows:
            total += 1
            if cancel is not None and cancel.is_set():
                raise ImportCancelled("The check was cancelled; nothing was imported.")
            draft = self._convert(converter, row, rejected, warnings)
            if draft is None:
                if "undecodable" in rejected[-1].reason:
                    undecodable += 1
                continue
            valid += 1
            finder.add(row.line, draft.name, draft.e164s)
            if progress is not None and total % 2000 == 0:
                progress(total, 0)
        return total, valid, undecodable

    @staticmethod
    def _convert(converter: RowConverter, row: RawRow, rejected: list[RowProblem],
                 warnings: list[RowProblem]) -> CustomerDraft | None:
        if row.error:
            rejected.append(RowProblem(row.line, "rejected", row.error, _content(row)))
            return None
        try:
            draft = converter.convert(row.line, row.values)
        except RowRejected as exc:
            rejected.append(RowProblem(row.line, "rejected", str(exc), _content(row)))
            return None
        warnings.extend(RowProblem(row.line, "warning", w, _content(row))
                        for w in draft.warnings)
        return draft

    # -- step 3: run -------------------------------------------------------------------------

    def run(self, plan: ImportPlan, progress: Progress | None = None,
            cancel: threading.Event | None = None) -> ImportResult:
        """Write the valid rows in batches following each group's action."""
        started = time.perf_counter()
        result = ImportResult(plan.path)
        if FileStamp.of(plan.path) != plan.stamp:
            raise ImportFileError("The file changed after it was checked; check it again "
                                  "before importing.")
        converter = RowConverter(plan.mapping, plan.headers, self._normalizer,
                                 pad_short=plan.format.kind == "xlsx", phones=plan.phones)
        writer = BatchWriter(self._normalizer)
        batch: list[tuple[CustomerDraft, DuplicateAction | None, int]] = []
        batch_warnings: list[RowProblem] = []
        last_line = 0

        def flush() -> bool:
            if not batch:
                result.committed_through = last_line
                return True
            first, last = batch[0][0].line, last_line
            try:
                with self._db.transaction() as s:
                    counts = self._write_batch(s, writer, plan, batch, batch_warnings)
            except (SQLAlchemyError, OSError) as exc:
                writer.forget_pending()
                log.error("import of %s failed in lines %d–%d: %r", plan.path, first, last, exc)
                result.failure = (f"saving lines {first}–{last} failed ({exc.__class__.__name__}"
                                  f": {str(exc).splitlines()[0]}).")
                return False
            writer.commit_pending()
            result.imported += counts[0]
            result.merged += counts[1]
            result.skipped += counts[2]
            result.warnings.extend(batch_warnings)
            result.committed_through = last
            batch.clear()
            batch_warnings.clear()
            if progress is not None:
                progress(result.total_rows, plan.total_rows)
            return True

        ok = True
        spill, plan.spill = plan.spill, None  # read once: a second run reads the file
        rows = spill.rows() if spill is not None and spill.complete else \
            iter_rows(plan.path, plan.format)
        with closing(rows) as it:
            self._header(it, plan.format)
            for row in it:
                if cancel is not None and cancel.is_set():
                    result.cancelled = True
                    break
                result.total_rows += 1
                last_line = row.last_line or row.line
                draft = self._convert(converter, row, result.rejected, batch_warnings)
                if draft is not None:
                    gid = plan.group_of_line.get(row.line)
                    action = plan.groups[gid].action if gid is not None else None
                    batch.append((draft, action, -1 if gid is None else gid))
                if len(batch) >= self.batch_size:
                    ok = flush()
                    if not ok:
                        break
        if ok:
            ok = flush()  # the rows already read, also when cancelled
        result.complete = ok and not result.cancelled
        log.info("phone numbers of %s: %d parsed, %d taken from the scan", plan.path,
                 plan.phones.misses, plan.phones.hits)
        plan.phones.clear()  # a second run of this plan parses again; memory freed now
        if spill is not None:
            spill.discard()
        result.seconds = time.perf_counter() - started
        log.info("imported %s: %s (%.1f s)", plan.path, result.summary(), result.seconds)
        return result

    def _write_batch(self, s: Session, writer: BatchWriter, plan: ImportPlan,
                     batch: list[tuple[CustomerDraft, DuplicateAction | None, int]],
                     warnings: list[RowProblem]) -> tuple[int, int, int]:
        imported = merged = skipped = 0
        for draft, action, gid in batch:
            if action is None:
                writer.create(s, draft)
                imported += 1
                continue
            group = plan.groups[gid]
            outcome = writer.apply(s, draft, group, warnings)
            if outcome == "new":
                imported += 1
            elif outcome == "merged":
                merged += 1
            else:
                skipped += 1
        writer.finish(s)
        return imported, merged, skipped


class ImportCancelled(RuntimeError):
    """The agent cancelled a scan; nothing was written."""
