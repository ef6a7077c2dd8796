"""A workbook is read once per import: the scan records its rows, the run reads them back.

openpyxl costs ~90 µs a row, so reading an .xlsx a second time for the run cost more than
the rest of the import; these tests check the recording gives the run exactly the rows the
workbook gives, leaves no file behind in any outcome, and that the import still works
(reading the workbook twice) when no file can be made.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import agent_desktop.importing.service as service_module
from agent_desktop.importing import ImportCancelled, ImportFileError, ImportService
from agent_desktop.importing.readers import RawRow, iter_rows
from agent_desktop.importing.spill import RowSpill
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, PhoneNumber

ROWS = 130


def workbook(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["姓名", "手机号", "城市", "标签", "备注"])
    for i in range(ROWS):
        if i == 17:
            ws.append([None, 13900000000 + i, "上海"])  # rejected: no name
        else:
            ws.append([f"客户{i}", 13800000000 + i, f"城市{i % 3}", "VIP", None if i % 2 else
                       f"备注 {i}, “引号”"])
    ws.append(["客户0", "13800000000", "北京"])  # duplicate of the first row
    path = tmp_path / "c.xlsx"
    wb.save(path)
    return path


def leftovers(db: Database) -> list[Path]:
    assert db.path is not None
    return sorted(db.path.parent.glob(".import-rows-*"))


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    real = service_module.iter_rows

    def counting(path: Path, fmt: object) -> object:
        reads.append(1)
        return real(path, fmt)  # type: ignore[arg-type]

    monkeypatch.setattr(service_module, "iter_rows", counting)
    return reads


def stored(db: Database) -> list[tuple[str, str, list[str | None]]]:
    with db.transaction() as s:
        return [(c.name, c.city, [p.e164 for p in c.phones])
                for c in s.scalars(select(Customer).order_by(Customer.id))]


def test_the_run_reads_the_scans_recording_not_the_workbook(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = workbook(tmp_path)
    reads = count_reads(monkeypatch)
    service = ImportService(db, PhoneNormalizer("CN"), batch_size=40)
    plan = service.scan(service.preview(path))
    assert len(reads) == 2  # preview and scan
    assert plan.spill is not None and plan.spill.complete and len(leftovers(db)) == 1
    result = service.run(plan)
    assert len(reads) == 2  # the run read none
    assert result.complete and (result.imported, result.merged) == (ROWS - 1, 1)
    assert [(p.line, p.reason) for p in result.rejected] == [(19, "missing name")]
    assert result.committed_through == ROWS + 2
    assert leftovers(db) == [] and plan.spill is None
    rows = stored(db)
    assert rows[0] == ("客户0", "城市0", ["+8613800000000"])
    last = ROWS - 1
    assert rows[-1] == (f"客户{last}", f"城市{last % 3}", [f"+86{13800000000 + last}"])


def test_same_customers_as_reading_the_workbook_twice(db: Database, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No row file possible (a folder that refuses it): the workbook is read again by the
    run, and the result is what the recording gives."""
    path = workbook(tmp_path)
    service = ImportService(db, PhoneNormalizer("CN"), batch_size=40)
    with_spill = service.run(service.scan(service.preview(path)))
    first = stored(db)
    other = Database.open(tmp_path / "other.sqlite3")
    try:
        def refuse(_folder: Path) -> RowSpill:
            raise PermissionError("read-only folder")

        monkeypatch.setattr(service_module, "RowSpill", refuse)
        reads = count_reads(monkeypatch)
        plain = ImportService(other, PhoneNormalizer("CN"), batch_size=40)
        plan = plain.scan(plain.preview(path))
        assert plan.spill is None
        without = plain.run(plan)
        assert len(reads) == 3
        assert stored(other) == first
        assert (without.imported, without.merged, [p.line for p in without.rejected]) == (
            with_spill.imported, with_spill.merged, [p.line for p in with_spill.rejected])
    finally:
        other.close()


def test_no_row_file_is_left_by_a_cancelled_or_empty_scan(db: Database, tmp_path: Path) -> None:
    import threading

    service = ImportService(db, PhoneNormalizer("CN"))
    preview = service.preview(workbook(tmp_path))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ImportCancelled):
        service.scan(preview, cancel=cancel)
    assert leftovers(db) == []
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["姓名", "手机号"])
    ws.append(["Only", "13800000000"])
    lone = tmp_path / "lone.xlsx"
    wb.save(lone)
    lone_preview = service.preview(lone)
    ws.delete_rows(2)
    wb.save(lone)  # only the header is left when the scan reads it
    with pytest.raises(ImportFileError, match="only a header"):
        service.scan(lone_preview)
    assert leftovers(db) == []


def test_a_changed_workbook_is_refused_and_a_dropped_plan_leaves_no_file(
        db: Database, tmp_path: Path) -> None:
    import gc

    path = workbook(tmp_path)
    service = ImportService(db, PhoneNormalizer("CN"))
    plan = service.scan(service.preview(path))
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws is not None
    ws.append(["新客户", "13700000000"])
    wb.save(path)
    with pytest.raises(ImportFileError, match="changed after it was checked"):
        service.run(plan)
    with db.transaction() as s:
        assert s.scalar(select(PhoneNumber.id)) is None
    assert len(leftovers(db)) == 1
    del plan
    gc.collect()
    assert leftovers(db) == []


cells = st.text(max_size=12)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(1, 10**6), st.lists(cells, max_size=6),
                               st.sampled_from(["", "undecodable bytes", "unclosed quote"]),
                               st.integers(0, 10**6)), max_size=30))
def test_recorded_rows_read_back_equal(tmp_path_factory: pytest.TempPathFactory,
                                       rows: list[tuple[int, list[str], str, int]]) -> None:
    raw = [RawRow(line, tuple(values), error, last) for line, values, error, last in rows]
    spill = RowSpill(tmp_path_factory.mktemp("spill"))
    assert list(spill.record(iter(raw))) == raw
    with pytest.raises(RuntimeError):
        next(spill.rows())
    spill.finish()
    assert list(spill.rows()) == raw
    with closing(spill.rows()) as again:
        assert list(again) == raw
    spill.discard()
    assert not spill.path.exists()


def test_workbook_rows_recorded_exactly(db: Database, tmp_path: Path) -> None:
    path = workbook(tmp_path)
    service = ImportService(db, PhoneNormalizer("CN"))
    preview = service.preview(path)
    with closing(iter_rows(path, preview.format)) as it:
        direct = list(it)
    plan = service.scan(preview)
    assert plan.spill is not None
    assert list(plan.spill.rows()) == direct
