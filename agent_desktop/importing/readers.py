"""Streaming readers for CSV and XLSX files, with line numbers and per-row problems.

Why our own wrapper around `csv`: Python's reader, left alone, lets one unclosed quote
swallow the rest of the file into a single value, and stops dead on a NUL byte or a bad
byte sequence. An agent importing 100,000 leads needs every other row imported and the bad
one named by its line. So we feed `csv.reader` physical lines we count ourselves, decode
with `surrogateescape` (undecodable bytes survive as markers we can report), and when a
quoted value runs away across lines we reject only the line where it started and resume
parsing on the next line.

Line numbers are file lines with the header as line 1 (for XLSX: sheet row numbers).
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

AUTO = ""
ENCODINGS: dict[str, str] = {
    "utf-8-sig": "UTF-8",
    "gb18030": "GB18030 / GBK (Chinese Excel)",
    "utf-16": "UTF-16 (Excel “Unicode text”)",
    "big5": "Big5 (traditional Chinese)",
    "cp1252": "Western (Windows-1252)",
}
DELIMITERS: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
# A quoted value may legitimately span lines (addresses, notes); beyond this many lines we
# treat it as a quote that was never closed, so a broken file cannot cost O(n²) re-parsing.
MAX_RECORD_LINES = 50
_DETECT_CHUNK = 1 << 20
_SURROGATE = re.compile("[\udc80-\udcff]")
_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; `str()` is a sentence for the agent."""


@dataclass(frozen=True)
class ReadOptions:
    """What the agent may override in the dialog; empty strings mean "detect"."""

    encoding: str = AUTO
    delimiter: str = AUTO
    sheet: str = AUTO


@dataclass(frozen=True)
class RawRow:
    """One record: its first line, its cell texts (stripped), or why it could not be read."""

    line: int
    values: tuple[str, ...]
    error: str = ""
    last_line: int = 0

    @property
    def text(self) -> str:
        """The row as the agent would recognise it, for the report."""
        return " | ".join(self.values)


@dataclass
class SourceFormat:
    """What was detected (or chosen) about a file."""

    kind: str  # "csv" | "xlsx"
    encoding: str = ""
    delimiter: str = ","
    sheet: str = ""
    sheets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # detection remarks shown to the agent


def _sniff_kind(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise ImportFileError(f"The file {path} does not exist.") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path} is a folder, not a file.") from None
    except OSError as exc:
        raise ImportFileError(f"The file {path} cannot be read ({exc.strerror}).") from exc
    if head.startswith(_XLSX_MAGIC):
        return "xlsx"
    if head.startswith(_OLE_MAGIC):
        raise ImportFileError(
            "This is an old Excel .xls workbook, which cannot be read. In Excel choose "
            "“Save as” → “Excel Workbook (.xlsx)” or “CSV UTF-8”, then import that file.")
    return "csv"


def _strictly_decodes(path: Path, encoding: str) -> tuple[bool, int]:
    """Whether the whole file decodes; else the byte offset of the first bad byte."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_DETECT_CHUNK)
            final = not chunk
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                return False, offset + exc.start
            if final:
                return True, -1
            offset += len(chunk)


def detect_encoding(path: Path) -> tuple[str, list[str]]:
    """UTF-8 (with or without BOM) if the whole file is valid UTF-8, else GB18030 if valid.

    Trying UTF-8 first is safe: GBK text is almost never valid UTF-8, while UTF-8 text is
    often "valid" GB18030 mojibake. GB18030 is a superset of GBK and GB2312, so one try
    covers what Excel in mainland China writes.
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", []
    ok, bad_utf8 = _strictly_decodes(path, "utf-8-sig")
    if ok:
        return "utf-8-sig", []
    ok, bad_gb = _strictly_decodes(path, "gb18030")
    if ok:
        return "gb18030", []
    note = (f"The file is neither valid UTF-8 (bad byte at offset {bad_utf8}) nor valid "
            f"GB18030 (bad byte at offset {bad_gb}). It is read as UTF-8; rows with "
            "undecodable bytes are rejected. Choose the right encoding if you know it.")
    log.warning("%s: %s", path, note)
    return "utf-8-sig", [note]


def encoding_label(code: str) -> str:
    """How the agent knows an encoding ("UTF-8", not "utf-8-sig")."""
    key = codecs.lookup(code).name if code else code
    aliases = {"utf-8": "utf-8-sig", "gbk": "gb18030", "gb2312": "gb18030"}
    return ENCODINGS.get(aliases.get(key, key), code)


def _sample_text(path: Path, encoding: str, size: int = 8 * 1024) -> str:
    """The first whole lines of the file, up to `size` characters.

    Small on purpose: csv.Sniffer's regular expressions are superlinear (measured: 8 ms
    for 4 KB, 1.9 s for 64 KB of the same file).
    """
    with path.open("r", encoding=encoding, errors="surrogateescape", newline="") as fh:
        text = fh.read(size)
    cut = max(text.rfind("\n"), text.rfind("\r"))
    return text[:cut + 1] if cut > 0 else text


def detect_delimiter(sample: str) -> str:
    """csv.Sniffer limited to , ; tab |, checked against the header; else count in header."""
    header = ""
    for line in sample.splitlines():
        if line.strip():
            header = line
            break
    candidates = "".join(DELIMITERS)
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=candidates).delimiter
        if sniffed in DELIMITERS and header.count(sniffed) > 0:
            return sniffed
    except csv.Error:
        pass
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


class _RecordTooLong(Exception):
    """Raised from inside the line feeder when a record spans too many lines."""


class _LineFeeder:
    """Feeds physical lines to csv.reader, remembering which lines the current record used,
    and lets us push lines back to re-parse them after a runaway quote."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._next_no = 1
        self._pushback: list[tuple[int, str]] = []
        self.consumed: list[tuple[int, str]] = []

    def __iter__(self) -> _LineFeeder:
        return self

    def __next__(self) -> str:
        if len(self.consumed) >= MAX_RECORD_LINES:
            raise _RecordTooLong
        if self._pushback:
            item = self._pushback.pop()
        else:
            item = (self._next_no, next(self._lines))
            self._next_no += 1
        self.consumed.append(item)
        return item[1]

    def push_back(self, items: list[tuple[int, str]]) -> None:
        self._pushback.extend(reversed(items))


def _plain_csv_error(message: str) -> str:
    if "expected after" in message:
        return ("broken quotes: text follows the closing quote of a quoted value "
                "(a quote inside a value must be doubled \"\")")
    if "NUL" in message:
        return "the line contains a NUL byte (binary data, not text)"
    if "unexpected end of data" in message:
        return "broken quotes: a quoted value is never closed"
    if "field larger than field limit" in message:
        return "a value is too long (more than 128 KiB)"
    return f"the line cannot be read as CSV ({message})"


def _undecodable(values: list[str], encoding: str) -> str:
    for i, v in enumerate(values):
        m = _SURROGATE.search(v)
        if m:
            byte = ord(m.group()) - 0xDC00
            return (f"undecodable bytes at column {i + 1} (byte 0x{byte:02X}): the line is "
                    f"not valid {encoding_label(encoding)} text")
    return ""


def iter_csv(path: Path, encoding: str, delimiter: str) -> Generator[RawRow, None, None]:
    """Every non-blank record of a CSV file, in order, with its first line number."""
    with path.open("r", encoding=encoding, errors="surrogateescape", newline="") as fh:
        feeder = _LineFeeder(iter(fh))

        def new_reader() -> Any:
            return csv.reader(feeder, delimiter=delimiter, quotechar='"', doublequote=True,
                              strict=True, skipinitialspace=False)

        reader = new_reader()
        while True:
            feeder.consumed = []
            error = ""
            try:
                values = next(reader)
            except StopIteration:
                return
            except _RecordTooLong:
                error = _plain_csv_error("unexpected end of data")
                values = []
            except csv.Error as exc:
                error = _plain_csv_error(str(exc))
                values = []
            consumed = feeder.consumed
            if not consumed:
                return
            first, last = consumed[0][0], consumed[-1][0]
            if error:
                # Reject the line where the record started; re-read the lines after it.
                feeder.push_back(consumed[1:])
                reader = new_reader()
                raw = consumed[0][1].rstrip("\r\n")
                yield RawRow(first, (raw,), error, first)
                continue
            if not any(v.strip() for v in values):
                continue  # a blank line (or only separators) carries no data
            bad = _undecodable(values, encoding)
            cells = tuple(v.strip() for v in values)
            if bad:
                yield RawRow(first, tuple(_SURROGATE.sub("\ufffd", c) for c in cells), bad, last)
                continue
            yield RawRow(first, cells, "", last)


def _cell_text(value: Any) -> str:
    """An XLSX cell as text the way the agent sees it: 13800138000, not 1.38e10."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:-9] if text.endswith("T00:00:00") else text
    return str(value).strip()


def xlsx_sheets(path: Path) -> list[str]:
    with _workbook(path) as wb:
        return list(wb.sheetnames)


@contextmanager
def _workbook(path: Path) -> Iterator[Any]:
    """A read-only workbook, closed afterwards (read-only mode keeps the file open).

    Opened from a file object so that openpyxl does not refuse an .xlsx saved under
    another extension; the content (a zip) decides, not the name.
    """
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    with path.open("rb") as fh:
        try:
            with warnings.catch_warnings():
                # openpyxl warns about styles and extensions it ignores; not the agent's
                # problem.
                warnings.simplefilter("ignore")
                wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError,
                ValueError) as exc:
            log.warning("cannot open workbook %s: %r", path, exc)
            raise ImportFileError(f"The file {path.name} is not a readable Excel workbook "
                                  f"({exc}).") from exc
        try:
            yield wb
        finally:
            wb.close()


def iter_xlsx(path: Path, sheet: str) -> Generator[RawRow, None, None]:
    """Rows of one sheet with their sheet row numbers; trailing empty cells dropped."""
    with _workbook(path) as wb:
        if sheet and sheet not in wb.sheetnames:
            raise ImportFileError(f"The workbook has no sheet named “{sheet}”.")
        ws = wb[sheet] if sheet else wb.worksheets[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
                cells = [_cell_text(v) for v in row]
                while cells and not cells[-1]:
                    cells.pop()
                if cells:
                    yield RawRow(number, tuple(cells), "", number)


def resolve_format(path: Path, options: ReadOptions) -> SourceFormat:
    """Detect what the agent did not choose: file kind, encoding, delimiter, sheet."""
    path = Path(path)
    kind = _sniff_kind(path)
    if kind == "xlsx":
        sheets = xlsx_sheets(path)
        if not sheets:
            raise ImportFileError("The workbook has no sheets.")
        sheet = options.sheet or sheets[0]
        if sheet not in sheets:
            raise ImportFileError(f"The workbook has no sheet named “{sheet}”.")
        return SourceFormat("xlsx", sheet=sheet, sheets=sheets)
    if path.stat().st_size == 0:
        raise ImportFileError("The file is empty.")
    notes: list[str] = []
    if options.encoding:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            raise ImportFileError(f"Unknown encoding “{options.encoding}”.") from None
        encoding = options.encoding
    else:
        encoding, notes = detect_encoding(path)
    delimiter = options.delimiter or detect_delimiter(_sample_text(path, encoding))
    return SourceFormat("csv", encoding=encoding, delimiter=delimiter, notes=notes)


def iter_rows(path: Path, fmt: SourceFormat) -> Generator[RawRow, None, None]:
    if fmt.kind == "xlsx":
        return iter_xlsx(Path(path), fmt.sheet)
    return iter_csv(Path(path), fmt.encoding, fmt.delimiter)
