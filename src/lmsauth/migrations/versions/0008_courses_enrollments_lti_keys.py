"""courses, enrollments, LTI 1.3 developer keys and tools installed from them

Revision ID: 0008
Revises: 0007

- courses, enrollments: the context of LTI launches, rosters and gradebooks (Canvas's Courses
  and Enrollments APIs).
- accounts: ``lti_context_id`` (Canvas's opaque identifier of a context: 40 hex characters),
  the tail of an account deployment's id.
- developer_keys: ``is_lti_key``, ``tool_configuration``, ``public_jwk``, ``public_jwk_url``
  (spec lti13.md 1.1).
- external_tools: ``lti_version``, ``developer_key_id`` and ``course_id`` (a tool installed
  from an LTI key, in the account or in a course).
Existing rows: each account gets a random ``lti_context_id``; every key is not an LTI key;
every tool is an LTI 1.1 tool of the account.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lmsauth.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("course_code", sa.String(length=255), nullable=False),
        sa.Column("sis_course_id", sa.String(length=255), nullable=True),
        sa.Column("workflow_state", sa.String(length=20), nullable=False),
        sa.Column("uuid", sa.String(length=40), nullable=False),
        sa.Column("lti_context_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", lmsauth.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", lmsauth.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lti_context_id"),
        sa.UniqueConstraint("sis_course_id"),
        sa.UniqueConstraint("uuid"),
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_courses_account_id"), ["account_id"], unique=False)

    op.create_table(
        "enrollments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("workflow_state", sa.String(length=20), nullable=False),
        sa.Column("created_at", lmsauth.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", lmsauth.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("course_id", "user_id", "type"),
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollments_course_id"), ["course_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enrollments_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lti_context_id", sa.String(length=40), nullable=True))
    connection = op.get_bind()
    for (account_id,) in connection.execute(sa.text("SELECT id FROM accounts")).all():
        connection.execute(
            sa.text("UPDATE accounts SET lti_context_id = :value WHERE id = :id"),
            {"value": secrets.token_hex(20), "id": account_id},
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.alter_column("lti_context_id", existing_type=sa.String(length=40), nullable=False)
        batch_op.create_unique_constraint("uq_accounts_lti_context_id", ["lti_context_id"])

    with op.batch_alter_table("developer_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_lti_key", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("tool_configuration", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("public_jwk", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("public_jwk_url", sa.String(length=4096), nullable=True))

    with op.batch_alter_table("external_tools", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lti_version", sa.String(length=8), nullable=False, server_default="1.1")
        )
        batch_op.add_column(sa.Column("developer_key_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("course_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_external_tools_developer_key_id"), ["developer_key_id"])
        batch_op.create_index(batch_op.f("ix_external_tools_course_id"), ["course_id"])
        batch_op.create_foreign_key(
            "fk_external_tools_developer_key_id_developer_keys",
            "developer_keys",
            ["developer_key_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            "fk_external_tools_course_id_courses", "courses", ["course_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("external_tools", schema=None) as batch_op:
        batch_op.drop_constraint("fk_external_tools_course_id_courses", type_="foreignkey")
        batch_op.drop_constraint("fk_external_tools_developer_key_id_developer_keys", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_external_tools_course_id"))
        batch_op.drop_index(batch_op.f("ix_external_tools_developer_key_id"))
        batch_op.drop_column("course_id")
        batch_op.drop_column("developer_key_id")
        batch_op.drop_column("lti_version")

    with op.batch_alter_table("developer_keys", schema=None) as batch_op:
        batch_op.drop_column("public_jwk_url")
        batch_op.drop_column("public_jwk")
        batch_op.drop_column("tool_configuration")
        batch_op.drop_column("is_lti_key")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_accounts_lti_context_id", type_="unique")
        batch_op.drop_column("lti_context_id")

    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollments_user_id"))
        batch_op.drop_index(batch_op.f("ix_enrollments_course_id"))
    op.drop_table("enrollments")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_courses_account_id"))
    op.drop_table("courses")
