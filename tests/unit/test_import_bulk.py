"""100,000 generated rows (GB18030, as Chinese Excel writes): all valid rows imported in
batches, every bad row reported by its line, outbox and search index complete.

The file is generated here (not committed). Speed is measured by the benchmark
(`python -m tests.bench.import_rows`), never asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from agent_desktop.importing import ImportService
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Outbox, PhoneNumber
from tests.bench.import_rows import write_csv

ROWS = 100_000


@pytest.mark.slow
def test_100k_rows_import_in_batches_with_exact_report(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    write_csv(path, ROWS)
    db = Database.open(tmp_path / "big.sqlite3")
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    try:
        service = ImportService(db, PhoneNormalizer("CN"))
        preview = service.preview(path)
        assert preview.format.encoding == "gb18030" and len(preview.rows) == 50
        plan = service.scan(preview)
        bad_lines = [i + 2 for i in range(ROWS) if i % 997 == 500]  # header is line 1
        assert [p.line for p in plan.rejected] == bad_lines
        assert all(p.reason == "missing name" for p in plan.rejected)
        dup_rows = sum(1 for i in range(ROWS) if i % 101 == 100 and i % 997 != 500
                       and (i - 1) % 997 != 500)
        assert len(plan.groups) == dup_rows
        commits.clear()
        result = service.run(plan)
        assert result.complete and not result.failure
        assert result.total_rows == ROWS
        assert len(result.rejected) == len(bad_lines)
        assert result.merged == dup_rows
        assert result.imported == ROWS - len(bad_lines) - dup_rows
        assert result.committed_through == ROWS + 1
        # Batched: one transaction per batch, not one per row and not one in all.
        batches = ROWS // service.batch_size
        assert service.batch_size >= 1000 and batches <= len(commits) <= batches + 5
        with db.transaction() as s:
            assert s.scalar(select(func.count()).select_from(Customer)) == result.imported
            n_out = s.scalar(select(func.count()).where(Outbox.entity == "customer"))
            assert n_out == result.imported
            # Two numbers a row; a merged row adds its office number to the first row.
            assert s.scalar(select(func.count()).select_from(PhoneNumber)) == \
                2 * result.imported + result.merged
        with db.engine.connect() as conn:
            docs = conn.execute(text("SELECT count(*) FROM customer_search_docs")).scalar()
        assert docs == result.imported
        search = CustomerSearch(db, PhoneNormalizer("CN"))
        assert [r.name for r in search.page("张伟99999", None, 5).rows] == ["张伟99999"]
    finally:
        db.close()
