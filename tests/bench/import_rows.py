"""Import benchmark: rows/s for a generated Chinese-Excel-style CSV (GB18030), end to end.

    .venv/bin/python -m tests.bench.import_rows [--rows 100000] [--baseline-rows 3000]
    (or `python -m tests.bench import_rows` once registered in tests/bench/__main__.py)

Measures, on a fresh migrated SQLite file: preview, scan (validate + duplicates), run
(batched ORM writes with outbox rows and search indexing), as rows/s, plus peak RSS. The
naive baseline, in the same run on its own fresh file: one ORM `session.add` per row
through the relationships with the search triggers in place, one commit at the end (the
obvious implementation), over the first `--baseline-rows` rows of the same kind of file,
compared with ours over the same rows (`small_rows_per_s`).

Diagnostics (not targets): where the run's wall time went — this thread's CPU
(`run_cpu_s`), its wait for a CPU while runnable (`run_runqueue_wait_s`, from
/proc/thread-self/schedstat: other processes' load), and the rest (`run_blocked_s`: I/O and
page-cache throttling while writing) — plus what the run wrote (`run_written_mib`); and
`small_reimport_rows_per_s`: the small file imported a second time into the same database,
where every row is a duplicate of an existing customer and is merged into it. With
`--xlsx-rows N` the same kind of rows as a workbook: `xlsx_rows_per_s` (preview + scan + run,
wall) and `xlsx_cpu_rows_per_s`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil


def write_csv(path: Path, rows: int) -> None:
    """Mixed Chinese/Latin rows, 2 numbers, tags, a note; ~1% duplicates, a few bad rows."""
    with path.open("w", encoding="gb18030", newline="") as fh:
        fh.write("姓名,公司,城市,手机号,办公电话,标签,备注\r\n")
        for i in range(rows):
            if i % 997 == 500:
                fh.write(f",无名公司{i},上海,1390000{i % 10000:04d},,,\r\n")  # missing name
                continue
            dup = i - 1 if i % 101 == 100 else i  # every 101st row repeats a number
            name = f"张伟{i}" if i % 2 else f"Wang Fang {i}"
            fh.write(f"{name},公司{i % 500},城市{i % 50},13{8 + dup % 2}{dup:08d},"
                     f"010-{6000_0000 + i},VIP、重点{i % 7},\"备注, 第{i}行\"\r\n")


def write_xlsx(path: Path, rows: int) -> None:
    """The CSV's rows as a workbook (strings, as a spreadsheet export keeps phone numbers)."""
    import csv

    import openpyxl

    source = path.with_suffix(".csv")
    write_csv(source, rows)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    with source.open(encoding="gb18030", newline="") as fh:
        for row in csv.reader(fh):
            ws.append(row)
    wb.save(path)


def naive_import(db: Any, path: Path) -> None:
    """The obvious importer: DictReader, objects through the relationships, triggers on,
    one session and one commit for the whole file, no per-row report."""
    import csv

    from agent_desktop.phones import PhoneNormalizer
    from agent_desktop.store.models import Customer, Note, PhoneNumber, Tag

    normalizer = PhoneNormalizer("CN")
    with path.open(encoding="gb18030", newline="") as fh, db.transaction() as s:
        for row in csv.DictReader(fh):
            if not row["姓名"]:
                continue
            c = Customer(name=row["姓名"], company=row["公司"], city=row["城市"])
            for raw in (row["手机号"], row["办公电话"]):
                p = normalizer.normalize(raw)
                c.phones.append(PhoneNumber(raw=raw, e164=p.e164, rev_digits=p.rev_digits,
                                            valid=p.valid))
            c.tags = [Tag(name=t) for t in row["标签"].split("、") if t]
            c.notes = [Note(body=row["备注"])]
            s.add(c)


def _runqueue_wait_s() -> float:
    """Seconds this thread has waited, runnable, for a CPU (0 where schedstat is absent)."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _written_bytes() -> int:
    """Bytes this process handed to write(2) and friends so far (0 if unknown)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run(argv: Sequence[str], bench_dir: Path) -> dict[str, Any]:
    from agent_desktop.importing import ImportService
    from agent_desktop.phones import PhoneNormalizer
    from agent_desktop.store.db import Database
    ap = argparse.ArgumentParser(prog="import_rows")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--baseline-rows", type=int, default=3000)
    ap.add_argument("--xlsx-rows", type=int, default=0)
    args = ap.parse_args(list(argv))
    proc = psutil.Process()
    out: dict[str, Any] = {"rows": args.rows}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv_path = root / "big.csv"
        write_csv(csv_path, args.rows)
        out["file_mib"] = round(csv_path.stat().st_size / 2**20, 1)
        db = Database.open(root / "bench.sqlite3")
        service = ImportService(db, PhoneNormalizer("CN"))
        t0 = time.perf_counter()
        preview = service.preview(csv_path)
        t1 = time.perf_counter()
        c1 = time.process_time()
        plan = service.scan(preview)
        t2 = time.perf_counter()
        c2 = time.process_time()
        q2, w2 = _runqueue_wait_s(), _written_bytes()
        result = service.run(plan)
        t3 = time.perf_counter()
        c3 = time.process_time()
        q3, w3 = _runqueue_wait_s(), _written_bytes()
        db.close()
        out.update({
            "preview_ms": round((t1 - t0) * 1000, 1),
            "scan_rows_per_s": round(args.rows / (t2 - t1)),
            "run_rows_per_s": round(args.rows / (t3 - t2)),
            "total_rows_per_s": round(args.rows / (t3 - t0)),
            # Diagnostics: rows per second of this process's CPU time, which the other
            # processes of a loaded machine do not inflate as they do wall time.
            "scan_cpu_rows_per_s": round(args.rows / max(1e-9, c2 - c1)),
            "run_cpu_rows_per_s": round(args.rows / max(1e-9, c3 - c2)),
            "run_wall_s": round(t3 - t2, 2),
            "run_cpu_s": round(c3 - c2, 2),
            "run_runqueue_wait_s": round(q3 - q2, 2),
            "run_blocked_s": round(max(0.0, (t3 - t2) - (c3 - c2) - (q3 - q2)), 2),
            "run_written_mib": round((w3 - w2) / 2**20),
            "load_avg_1m": round(os.getloadavg()[0], 1),
            "imported": result.imported, "merged": result.merged,
            "rejected": len(result.rejected), "duplicate_groups": len(plan.groups),
            "rss_mib": round(proc.memory_info().rss / 2**20, 1),
        })

        # Same-size comparison: ours and the naive importer over the first N rows.
        n = args.baseline_rows
        small = root / "small.csv"
        write_csv(small, n)
        ours_db = Database.open(root / "ours.sqlite3")
        ours = ImportService(ours_db, PhoneNormalizer("CN"))
        t0 = time.perf_counter()
        ours.run(ours.scan(ours.preview(small)))
        out["small_rows_per_s"] = round(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        again = ours.run(ours.scan(ours.preview(small)))
        out["small_reimport_rows_per_s"] = round(n / (time.perf_counter() - t0))
        out["small_reimport_merged"] = again.merged
        ours_db.close()
        base_db = Database.open(root / "baseline.sqlite3")
        t0 = time.perf_counter()
        naive_import(base_db, small)
        out["baseline_rows"] = n
        out["baseline_rows_per_s"] = round(n / (time.perf_counter() - t0))
        base_db.close()
        if args.xlsx_rows:
            book = root / "book.xlsx"
            write_xlsx(book, args.xlsx_rows)
            xlsx_db = Database.open(root / "xlsx.sqlite3")
            xlsx = ImportService(xlsx_db, PhoneNormalizer("CN"))
            t0, c0 = time.perf_counter(), time.process_time()
            xlsx.run(xlsx.scan(xlsx.preview(book)))
            out["xlsx_rows"] = args.xlsx_rows
            out["xlsx_rows_per_s"] = round(args.xlsx_rows / (time.perf_counter() - t0))
            out["xlsx_cpu_rows_per_s"] = round(args.xlsx_rows / (time.process_time() - c0))
            xlsx_db.close()
    out["speedup"] = round(out["small_rows_per_s"] / max(1, out["baseline_rows_per_s"]), 1)
    return out


if __name__ == "__main__":
    res = run(sys.argv[1:], Path(".bench"))
    Path(".bench").mkdir(exist_ok=True)
    Path(".bench/import_rows.json").write_text(json.dumps(res, indent=2, ensure_ascii=False)
                                               + "\n", encoding="utf-8")
    print(json.dumps(res, ensure_ascii=False))
