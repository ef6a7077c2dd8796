"""Property tests of the CSV reader: any text survives, bad rows are found by their line."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_desktop.importing import ImportFileError, ImportService, ReadOptions
from agent_desktop.importing.readers import detect_delimiter, iter_csv
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database

# Any printable text, plus the characters that make CSV hard. No lone surrogates (not
# encodable) and no other control characters (Excel cannot type them either).
CELL = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc")),
        st.sampled_from([",", ";", "\t", '"', "\n", " ", "、", "张"]),
    ),
    max_size=12,
).map(str.strip)


def _write(rows: list[list[str]], delimiter: str, encoding: str) -> Path:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    fd, name = tempfile.mkstemp(suffix=".csv")
    path = Path(name)
    with open(fd, "wb") as fh:
        fh.write(buf.getvalue().encode(encoding))
    return path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 5), data=st.data(), delimiter=st.sampled_from([",", ";", "\t"]),
       encoding=st.sampled_from(["utf-8-sig", "gb18030"]))
def test_written_rows_read_back_identically_with_line_numbers(
        width: int, data: st.DataObject, delimiter: str, encoding: str) -> None:
    header = [f"col{i}" for i in range(width)]
    body = data.draw(st.lists(st.lists(CELL, min_size=width, max_size=width), max_size=15))
    rows = [header, *body]
    path = _write(rows, delimiter, encoding)
    try:
        got = list(iter_csv(path, encoding, delimiter))
    finally:
        path.unlink()
    expected = [r for r in rows if any(v.strip() for v in r)]  # blank records are skipped
    assert [list(r.values) for r in got] == expected
    assert all(not r.error for r in got)
    # Line numbers: 1 + the physical lines of every record before (quoted newlines count).
    line = 1
    starts: list[int] = []
    for r in rows:
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerow(r)
        if any(v.strip() for v in r):
            starts.append(line)
        line += buf.getvalue().replace("\r\n", "\n").count("\n")
    assert [r.line for r in got] == starts


PLAIN = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"),
                                       blacklist_characters='",\n\r'),
                min_size=1, max_size=10).map(str.strip).filter(bool)


@settings(max_examples=100, deadline=None)
@given(good=st.lists(st.tuples(PLAIN, PLAIN), min_size=1, max_size=30),
       bad_at=st.lists(st.integers(0, 30), max_size=4, unique=True),
       kind=st.sampled_from(["unclosed", "text-after-quote"]))
def test_bad_rows_are_reported_at_their_line_and_the_rest_read(
        good: list[tuple[str, str]], bad_at: list[int], kind: str) -> None:
    lines = ["name,city"]
    expected_bad: list[int] = []
    for i, (a, b) in enumerate(good):
        if i in bad_at:
            lines.append(f'"{a},{b}' if kind == "unclosed" else f'"{a}"x,{b}')
            expected_bad.append(len(lines))
        lines.append(f"{a},{b}")
    fd, name = tempfile.mkstemp(suffix=".csv")
    path = Path(name)
    with open(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(lines) + "\n")
    try:
        got = list(iter_csv(path, "utf-8-sig", ","))
    finally:
        path.unlink()
    assert [r.line for r in got if r.error] == expected_bad
    assert all("broken quotes" in r.error for r in got if r.error)
    assert [r.values for r in got if not r.error][1:] == good


@given(st.sampled_from([",", ";", "\t"]), st.integers(2, 6))
def test_delimiter_detection(delimiter: str, width: int) -> None:
    header = delimiter.join(f"列{i}" for i in range(width))
    row = delimiter.join(f"v{i}" for i in range(width))
    assert detect_delimiter(f"{header}\r\n{row}\r\n{row}\r\n") == delimiter


@pytest.fixture(scope="module")
def scan_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    d = Database.open(tmp_path_factory.mktemp("props") / "p.sqlite3")
    yield d
    d.close()


NAME_OR_EMPTY = st.one_of(st.just(""), CELL.filter(bool))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(NAME_OR_EMPTY, CELL), max_size=20),
       encoding=st.sampled_from(["utf-8-sig", "gb18030"]))
def test_scan_rejects_exactly_the_nameless_rows_by_file_line(
        scan_db: Database, rows: list[tuple[str, str]], encoding: str) -> None:
    """Through the whole service: multi-line quoted notes shift line numbers, and the
    report still names the file line where each bad record starts."""
    records = [["name", "note"], *[list(r) for r in rows]]
    path = _write(records, ",", encoding)
    try:
        service = ImportService(scan_db, PhoneNormalizer("CN"))
        expected: list[int] = []
        line = 2
        for name, note in rows:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow([name, note])
            if not name and note:
                expected.append(line)
            line += buf.getvalue().count("\n")
        if not any(n or t for n, t in rows):
            with pytest.raises(ImportFileError):
                service.preview(path)
            return
        plan = service.scan(service.preview(path, ReadOptions(encoding=encoding)))
    finally:
        path.unlink()
    assert [p.line for p in plan.rejected] == expected
    assert all(p.reason == "missing name" for p in plan.rejected)
    assert plan.valid_rows == sum(1 for n, _ in rows if n)
