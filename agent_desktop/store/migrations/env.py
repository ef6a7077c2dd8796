"""Alembic environment: runs on the connection handed in by `Database.migrate()`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from agent_desktop.store.models import Base

target_metadata = Base.metadata
config = context.config

# Search tables are FTS5 virtual tables (+ shadow tables, views) made by raw SQL in 0002;
# autogenerate must not offer to drop them.
_RAW_SQL_PREFIXES = ("customer_fts", "customer_grams", "customer_search_docs")


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object) -> bool:
    return not (reflected and name is not None and name.startswith(_RAW_SQL_PREFIXES))


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as c:
            context.configure(connection=c, target_metadata=target_metadata,
                              render_as_batch=True, include_object=include_object)
            context.run_migrations()
        return
    context.configure(connection=conn, target_metadata=target_metadata,
                      render_as_batch=True, include_object=include_object)
    context.run_migrations()


run()
