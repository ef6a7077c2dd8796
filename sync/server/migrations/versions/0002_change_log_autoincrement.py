"""change_log.seq never reuses numbers on SQLite (AUTOINCREMENT)

Without AUTOINCREMENT SQLite hands out max(rowid)+1, so after a compaction deleted the
newest entries a new change could get a sequence number at or below the compaction
horizon and be skipped by every client. PostgreSQL sequences never go back: no-op there.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("change_log", recreate="always",
                              table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.alter_column("seq", autoincrement=True)


def downgrade() -> None:
    pass
