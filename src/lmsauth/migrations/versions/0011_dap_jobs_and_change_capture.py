"""dap: query jobs and their objects; change capture on every exported Canvas table

Revision ID: 0011
Revises: 0010

- export_changes: one row per insert, update or delete of an exported table's row, written by
  triggers (one definition per dialect, ``canvas.changes.capture_ddl``) in the same
  transaction as the change; export_change_state: the latest stamp and since when the log is
  complete.
- dap_jobs, dap_objects, dap_object_chunks: DAP query jobs (spec B5), their output files, and
  the files' bytes when the database keeps them.
Rows that exist before this revision have no change rows: the log is complete from its first
stamp on (``kept_since``), and an earlier ``since`` is answered with SnapshotRequired.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lmsauth.canvas.changes import CapturedTable, capture_ddl, drop_capture_ddl
from lmsauth.canvas.export import EXPORTED_TABLES
from lmsauth.core.db import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables whose triggers this revision makes: every exported table that exists before it
# (courses and enrollments since 0008). A later revision adds its own tables' triggers.
CAPTURED = ("accounts", "users", "pseudonyms", "developer_keys", "access_tokens", "courses", "enrollments")


def _captured() -> list[CapturedTable]:
    return [table.captured for table in EXPORTED_TABLES if table.name in CAPTURED]


def upgrade() -> None:
    op.create_table(
        "export_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.BigInteger(), nullable=False),
        sa.Column("stamped_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_changes")),
    )
    op.create_index(
        "ix_export_changes_window", "export_changes", ["table_name", "stamped_at", "row_key"], unique=False
    )
    op.create_index(
        "ix_export_changes_keys", "export_changes", ["table_name", "row_key", "stamped_at"], unique=False
    )
    op.create_index("ix_export_changes_stamped_at", "export_changes", ["stamped_at"], unique=False)
    op.create_table(
        "export_change_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_stamp", UTCDateTime(), nullable=True),
        sa.Column("kept_since", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_change_state")),
    )
    op.execute("INSERT INTO export_change_state (id) VALUES (1)")
    op.create_table(
        "dap_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=True),
        sa.Column("since", UTCDateTime(), nullable=True),
        sa.Column("until", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String(length=64), nullable=True),
        sa.Column("error_uuid", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("claim", sa.String(length=64), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dap_jobs")),
    )
    op.create_index(op.f("ix_dap_jobs_request_key"), "dap_jobs", ["request_key"], unique=False)
    op.create_index(op.f("ix_dap_jobs_status"), "dap_jobs", ["status"], unique=False)
    op.create_index(op.f("ix_dap_jobs_expires_at"), "dap_jobs", ["expires_at"], unique=False)
    op.create_table(
        "dap_objects",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["dap_jobs.id"], name=op.f("fk_dap_objects_job_id_dap_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dap_objects")),
    )
    op.create_index(op.f("ix_dap_objects_job_id"), "dap_objects", ["job_id"], unique=False)
    op.create_table(
        "dap_object_chunks",
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("object_id", "seq", name=op.f("pk_dap_object_chunks")),
    )
    dialect = op.get_bind().dialect.name
    for table in _captured():
        for statement in capture_ddl(dialect, table, log="export_changes"):  # 0012 moved it
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _captured():
        for statement in drop_capture_ddl(dialect, table):
            op.execute(statement)
    op.drop_table("dap_object_chunks")
    op.drop_index(op.f("ix_dap_objects_job_id"), table_name="dap_objects")
    op.drop_table("dap_objects")
    op.drop_index(op.f("ix_dap_jobs_expires_at"), table_name="dap_jobs")
    op.drop_index(op.f("ix_dap_jobs_status"), table_name="dap_jobs")
    op.drop_index(op.f("ix_dap_jobs_request_key"), table_name="dap_jobs")
    op.drop_table("dap_jobs")
    op.drop_table("export_change_state")
    op.drop_index("ix_export_changes_stamped_at", table_name="export_changes")
    op.drop_index("ix_export_changes_keys", table_name="export_changes")
    op.drop_index("ix_export_changes_window", table_name="export_changes")
    op.drop_table("export_changes")
