"""dap: unstamped changes in a table of their own, without the stamped log's indexes

Revision ID: 0012
Revises: 0011

The capture triggers now write ``export_changes_pending`` (its key only), and stamping moves
rows from there into ``export_changes`` (``canvas.changes``). Each change then writes the
log's three indexes once, when stamped, instead of in every writer's transaction and again
when stamped. Unstamped rows of ``export_changes`` move over in their order; a downgrade moves
them back.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lmsauth.canvas.changes import CapturedTable, capture_ddl, drop_capture_ddl
from lmsauth.canvas.export import EXPORTED_TABLES

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every exported table's triggers are 0011's; a later revision that adds a table adds its own.
CAPTURED = ("accounts", "users", "pseudonyms", "developer_keys", "access_tokens", "courses", "enrollments")


def _captured() -> list[CapturedTable]:
    return [table.captured for table in EXPORTED_TABLES if table.name in CAPTURED]


def _retrigger(log: str) -> None:
    dialect = op.get_bind().dialect.name
    for table in _captured():
        for statement in [*drop_capture_ddl(dialect, table), *capture_ddl(dialect, table, log=log)]:
            op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "export_changes_pending",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_changes_pending")),
    )
    op.execute(
        "INSERT INTO export_changes_pending (table_name, row_key) "
        "SELECT table_name, row_key FROM export_changes WHERE stamped_at IS NULL ORDER BY id"
    )
    op.execute("DELETE FROM export_changes WHERE stamped_at IS NULL")
    _retrigger("export_changes_pending")


def downgrade() -> None:
    _retrigger("export_changes")
    op.execute(
        "INSERT INTO export_changes (table_name, row_key) "
        "SELECT table_name, row_key FROM export_changes_pending ORDER BY id"
    )
    op.drop_table("export_changes_pending")
