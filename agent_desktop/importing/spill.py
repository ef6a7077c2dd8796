"""A workbook read once per import: the scan keeps its rows in a file the run reads back.

Why: openpyxl's read-only reader costs ~90 µs of CPU a row (20k rows × 7 cells: 1.85 s;
the same rows as CSV: 0.09 s), and the import reads the file twice (the scan finds the
duplicates before anything is written). The scan records every row it reads — header,
bad rows and all, exactly as the reader gave them — with `marshal`, and the run reads
that back in a tenth of the time. Memory stays flat (a 100k-row sheet would be ~75 MB of
Python objects); the plan's file stamp still makes the run refuse a workbook that changed.

The file lives next to the database (the agent's own data folder, mode 0600 from
`mkstemp`, not a shared /tmp) and is removed after the run, or when the plan is dropped.
"""

from __future__ import annotations

import logging
import marshal
import os
import tempfile
import weakref
from collections.abc import Generator, Iterator
from pathlib import Path

from agent_desktop.importing.readers import RawRow

log = logging.getLogger(__name__)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:  # never fatal: a leftover temporary file, said in the log
        log.warning("could not remove the import's row file %s: %r", path, exc)


class RowSpill:
    """Rows recorded while the scan reads them; `rows()` gives them back once complete."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=".import-rows-", suffix=".bin", dir=directory)
        self.path = Path(name)
        self._out = os.fdopen(fd, "wb")
        self.complete = False
        self._cleanup = weakref.finalize(self, _remove, self.path)

    def record(self, rows: Iterator[RawRow]) -> Generator[RawRow, None, None]:
        """Pass `rows` through, writing each one down first."""
        dump, out = marshal.dump, self._out
        for row in rows:
            dump((row.line, row.values, row.error, row.last_line), out)
            yield row

    def finish(self) -> None:
        """The scan read the whole file: the recording can stand in for it."""
        self._out.close()
        self.complete = True

    def rows(self) -> Generator[RawRow, None, None]:
        """The recorded rows, in order, as `RawRow`s equal to those the reader gave."""
        if not self.complete:
            raise RuntimeError("the row file of an unfinished scan cannot be read")
        with self.path.open("rb") as fh:
            load = marshal.load
            while True:
                try:
                    line, values, error, last_line = load(fh)
                except EOFError:
                    return
                yield RawRow(line, values, error, last_line)

    def discard(self) -> None:
        """Remove the file now (also done when this object is garbage collected)."""
        if not self._out.closed:
            self._out.close()
        self.complete = False
        self._cleanup()
