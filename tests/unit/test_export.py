"""Export → import round trip on real SQLite files, for CSV UTF-8, CSV GB18030 and XLSX."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from agent_desktop.customers import PHONE_LABELS, STAGES, STATUSES
from agent_desktop.exporting import (
    CustomerExporter,
    ExportCancelled,
    ExportError,
    ExportFormat,
)
from agent_desktop.importing import DuplicateAction, ImportService, ReadOptions
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Note, PhoneNumber, Tag

NORMALIZER = PhoneNormalizer("CN")
CJK = "张王李赵刘陈杨黄周吴伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华"

TEXT = st.text(
    alphabet=st.one_of(st.characters(blacklist_categories=("Cs", "Cc")),
                       st.sampled_from([",", ";", '"', "\n", "'", "=", "张", "、", "\t"])),
    max_size=15,
).map(str.strip)
CHINESE_NAME = st.text(alphabet=st.sampled_from(CJK), min_size=1, max_size=4)
NAME = st.one_of(CHINESE_NAME, TEXT.filter(bool),
                 st.tuples(CHINESE_NAME, TEXT).map(lambda t: f"{t[0]} {t[1]}".strip()))
TAG = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"),
                                     blacklist_characters=",;、，；"),
              min_size=1, max_size=12).map(str.strip).filter(bool)
NOTE = st.text(alphabet=st.one_of(st.characters(blacklist_categories=("Cs", "Cc")),
                                  st.sampled_from(["\n", ",", '"', "张", "；"])),
               min_size=1, max_size=40).map(str.strip).filter(bool)
PHONE = st.one_of(
    st.integers(0, 9999).map(lambda n: f"138 0013 {n:04d}"),
    st.integers(0, 99).map(lambda n: f"+1 (415) 555-01{n:02d}"),
    st.integers(0, 999).map(lambda n: f"+49 30 1234{n:03d}"),
    st.sampled_from(["12", "ext. 7", "0000"]),
)
#: Labels the importer reads back from a column header today ("other" comes back as
#: "mobile": the import side has no word for it yet; see test_other_label_and_...).


@st.composite
def customer(draw: st.DrawFn, labels: tuple[str, ...] = PHONE_LABELS,
             max_notes: int = 3) -> dict[str, object]:
    tags = draw(st.lists(TAG, max_size=4, unique_by=str.casefold))
    raws = draw(st.lists(PHONE, max_size=3, unique_by=lambda p: NORMALIZER.normalize(p)
                         .rev_digits or p))
    return {
        "name": draw(NAME), "company": draw(TEXT), "city": draw(TEXT),
        "country": draw(st.sampled_from(["", "CN", "US", "DE"])), "email": draw(TEXT),
        "status": draw(st.sampled_from(STATUSES)), "stage": draw(st.sampled_from(STAGES)),
        "owner": draw(TEXT), "do_not_call": draw(st.booleans()),
        "tags": tags, "phones": [(raw, draw(st.sampled_from(labels))) for raw in raws],
        "notes": draw(st.lists(NOTE, max_size=max_notes)),
    }


def _wipe(db: Database) -> None:
    with db.engine.begin() as conn:
        for table in ("notes", "tags", "phone_numbers", "customers", "outbox"):
            conn.execute(text(f"DELETE FROM {table}"))


def _store(db: Database, rows: list[dict[str, object]]) -> None:
    with db.transaction() as s:
        for r in rows:
            fields = {k: v for k, v in r.items() if k not in ("tags", "phones", "notes")}
            c = Customer(**fields)
            s.add(c)
            if r["phones"] or r["tags"] or r["notes"]:
                s.flush()  # children need c.id; a bare row waits for the commit's flush
            phones: list[tuple[str, str]] = r["phones"]  # type: ignore[assignment]
            for i, (raw, label) in enumerate(phones):
                n = NORMALIZER.normalize(raw)
                s.add(PhoneNumber(customer_id=c.id, raw=raw, label=label, e164=n.e164,
                                  rev_digits=n.rev_digits, valid=n.valid, position=i))
            for t in r["tags"]:  # type: ignore[attr-defined]
                s.add(Tag(customer_id=c.id, name=t))
            notes: list[str] = r["notes"]  # type: ignore[assignment]
            for i, body in enumerate(notes):
                s.add(Note(customer_id=c.id, body=body,
                           created_at=f"2026-11-20T09:00:0{i}.000+00:00"))


def _snapshot(db: Database) -> list[tuple[object, ...]]:
    with db.transaction() as s:
        out: list[tuple[object, ...]] = []
        for c in s.scalars(select(Customer).order_by(Customer.id)):
            phones = sorted((p for p in c.phones if p.deleted_at is None),
                            key=lambda p: (p.position, p.id))
            notes = sorted((n for n in c.notes if n.deleted_at is None),
                           key=lambda n: (n.created_at, n.id))
            out.append((c.name, c.company, c.city, c.country, c.email, c.status, c.stage,
                        c.owner, c.do_not_call, [(p.raw, p.label) for p in phones],
                        sorted(t.name for t in c.tags if t.deleted_at is None),
                        [n.body for n in notes]))
        return out


def _round_trip(source: Database, target: Database, path: Path, fmt: ExportFormat,
                rows: list[dict[str, object]]) -> None:
    _wipe(source)
    _wipe(target)
    _store(source, rows)
    result = CustomerExporter(source).export(path, fmt)
    assert result.rows == len(rows) and not result.warnings
    service = ImportService(target, NORMALIZER)
    options = ReadOptions(encoding="gb18030") if fmt is ExportFormat.CSV_GB18030 else None
    plan = service.scan(service.preview(path, options))
    plan.set_all(DuplicateAction.NEW)  # same numbers in the file are different people here
    imported = service.run(plan)
    assert not imported.rejected, imported.rejected
    assert imported.imported == len(rows)


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Database]]:
    root = tmp_path_factory.mktemp("roundtrip")
    a, b = Database.open(root / "a.sqlite3"), Database.open(root / "b.sqlite3")
    yield a, b
    a.close()
    b.close()


@pytest.mark.parametrize("fmt", list(ExportFormat))
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(customer(), min_size=1, max_size=6))
def test_export_then_import_gives_the_same_customers(
        dbs: tuple[Database, Database], tmp_path: Path, fmt: ExportFormat,
        rows: list[dict[str, object]]) -> None:
    """Names (Chinese too), fields, status, stage, do-not-call, every phone in order with
    its label, tags and the note come back exactly."""
    source, target = dbs
    _round_trip(source, target, tmp_path / f"out{fmt.suffix}", fmt, rows)
    assert _snapshot(target) == _snapshot(source)


def _read_back(path: Path, fmt: ExportFormat) -> tuple[list[str], list[list[str]]]:
    if fmt is ExportFormat.XLSX:
        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            ws = wb.active
            assert ws is not None
            rows = [["" if v is None else str(v) for v in r]
                    for r in ws.iter_rows(values_only=True)]
        finally:
            wb.close()
    else:
        encoding = "utf-8-sig" if fmt is ExportFormat.CSV_UTF8 else "gb18030"
        with path.open(encoding=encoding, newline="") as f:
            rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.mark.parametrize("fmt", list(ExportFormat))
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(customer(), min_size=1, max_size=6))
def test_the_file_carries_every_label_and_every_note(
        dbs: tuple[Database, Database], tmp_path: Path, fmt: ExportFormat,
        rows: list[dict[str, object]]) -> None:
    """What the file holds, read by a plain CSV/XLSX reader: each phone under a
    "Phone k (label)" header in position order, each note in its own cell, oldest first."""
    source, _ = dbs
    _wipe(source)
    _store(source, rows)
    path = tmp_path / f"file{fmt.suffix}"
    CustomerExporter(source).export(path, fmt)
    header, body = _read_back(path, fmt)
    assert header[:9] == ["Name", "Company", "City", "Country", "Email", "Status", "Stage",
                          "Owner", "Do not call"]
    assert len(body) == len(rows)
    phone_cols = [(i, h) for i, h in enumerate(header) if h.startswith("Phone ")]
    note_cols = [i for i, h in enumerate(header) if h == "Note" or h.startswith("Note ")]
    for cells, row in zip(body, _snapshot(source), strict=True):
        cells += [""] * (len(header) - len(cells))  # XLSX rows may end early
        assert cells[0] == row[0]
        phones = []
        for i, h in phone_cols:
            if cells[i]:
                position, label = h[len("Phone "):].split(" ", 1)
                phones.append((int(position), cells[i], label.strip("()")))
        assert [p[0] for p in phones] == list(range(1, len(phones) + 1))
        assert [(raw, label) for _pos, raw, label in phones] == row[9]
        assert [cells[i] for i in note_cols if cells[i]] == row[11]
        assert sorted(t for t in cells[header.index("Tags")].split(", ") if t) == row[10]


@pytest.mark.parametrize("fmt", [ExportFormat.CSV_UTF8, ExportFormat.XLSX])
def test_other_label_and_several_notes_round_trip(dbs: tuple[Database, Database],
                                                  tmp_path: Path, fmt: ExportFormat) -> None:
    source, target = dbs
    rows: list[dict[str, object]] = [{
        "name": "陈静", "company": "", "city": "上海", "country": "CN", "email": "",
        "status": "interested", "stage": "proposal", "owner": "", "do_not_call": False,
        "tags": ["VIP"], "phones": [("021 6888 1234", "other"), ("13800138000", "mobile")],
        "notes": ["第一次联系", "wants a quote\nby Friday"]}]
    _round_trip(source, target, tmp_path / f"gap{fmt.suffix}", fmt, rows)
    assert _snapshot(target) == _snapshot(source)


def test_csv_utf8_has_bom_and_gb18030_has_none(tmp_path: Path,
                                               dbs: tuple[Database, Database]) -> None:
    source, _ = dbs
    _wipe(source)
    _store(source, [{"name": "张伟", "company": "", "city": "北京", "country": "CN",
                     "email": "", "status": "new", "stage": "lead", "owner": "",
                     "do_not_call": False, "tags": ["VIP"],
                     "phones": [("13800138000", "mobile")], "notes": []}])
    exporter = CustomerExporter(source)
    exporter.export(tmp_path / "u.csv", ExportFormat.CSV_UTF8)
    exporter.export(tmp_path / "g.csv", ExportFormat.CSV_GB18030)
    assert (tmp_path / "u.csv").read_bytes().startswith(b"\xef\xbb\xbfName,Company")
    gb = (tmp_path / "g.csv").read_bytes()
    assert gb.startswith(b"Name,") and "张伟".encode("gb18030") in gb
    assert gb.decode("gb18030").splitlines()[0].endswith("Phone 1 (mobile),Tags,Note")


def test_xlsx_keeps_formula_like_text_as_text_and_strips_control_chars(
        tmp_path: Path, dbs: tuple[Database, Database]) -> None:
    source, _ = dbs
    _wipe(source)
    _store(source, [{"name": "=HYPERLINK(\"x\")", "company": "a\x07b", "city": "",
                     "country": "", "email": "", "status": "new", "stage": "lead",
                     "owner": "", "do_not_call": True, "tags": [], "phones": [], "notes": []}])
    result = CustomerExporter(source).export(tmp_path / "x.xlsx", ExportFormat.XLSX)
    assert result.warnings and "control characters" in result.warnings[0]
    wb = openpyxl.load_workbook(tmp_path / "x.xlsx")
    ws = wb.active
    assert ws is not None
    assert ws["A2"].value == "=HYPERLINK(\"x\")" and ws["A2"].data_type == "s"
    assert ws["B2"].value == "ab" and ws["I2"].value == "yes"
    wb.close()


def test_export_of_selected_ids_and_cancel_and_bad_folder(
        tmp_path: Path, dbs: tuple[Database, Database]) -> None:
    source, _ = dbs
    _wipe(source)
    base = {"company": "", "city": "", "country": "", "email": "", "status": "new",
            "stage": "lead", "owner": "", "do_not_call": False, "tags": [], "phones": [],
            "notes": []}
    _store(source, [dict(base, name=f"P{i}") for i in range(2500)])
    exporter = CustomerExporter(source)
    with source.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM customers WHERE name IN "
                                               "('P3', 'P2400')"))]
    res = exporter.export(tmp_path / "sel.csv", ExportFormat.CSV_UTF8, ids=ids)
    assert res.rows == 2
    lines = (tmp_path / "sel.csv").read_text(encoding="utf-8-sig").splitlines()
    assert [ln.split(",")[0] for ln in lines[1:]] == ["P3", "P2400"]
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        assert total == 2500
        cancel.set()

    with pytest.raises(ExportCancelled):
        exporter.export(tmp_path / "all.csv", ExportFormat.CSV_UTF8, progress=progress,
                        cancel=cancel)
    assert seen == [1000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sel.csv"]  # nothing half-written
    with pytest.raises(ExportError, match="does not exist"):
        exporter.export(tmp_path / "nope" / "x.csv", ExportFormat.CSV_UTF8)
