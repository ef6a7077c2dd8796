"""The migrations and the ORM models describe the same schema.

If they drift, the next `alembic revision --autogenerate` would offer to drop or re-create
objects (it once would have dropped the list's covering indexes of migration 0003)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from agent_desktop.store.db import Database
from agent_desktop.store.models import Base

# The FTS5 search tables are raw SQL (migration 0002), unknown to the models on purpose.
RAW_SQL_PREFIXES = ("customer_fts", "customer_grams", "customer_search_docs")


def _include(obj: object, name: str | None, type_: str, reflected: bool,
             compare_to: object) -> bool:
    return not (reflected and name is not None and name.startswith(RAW_SQL_PREFIXES))


def test_migrated_database_matches_the_models(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "agent.sqlite3")
    try:
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"include_object": _include})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        db.close()
    assert diff == []
