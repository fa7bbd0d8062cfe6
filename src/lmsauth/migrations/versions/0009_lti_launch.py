"""LTI 1.3 launches: the LTI key set and deep-linked resource links

Revision ID: 0009
Revises: 0008

- signing_keys: ``ring`` (``main``: OAuth2, Identity and DAP tokens; ``lti``: LTI messages,
  published at ``/api/lti/security/jwks``). Existing keys are ``main``.
- lti_resource_links: the links deep linking makes in a course (spec lti13.md 8).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lmsauth.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ring", sa.String(length=20), nullable=False, server_default="main"))
        batch_op.create_index(batch_op.f("ix_signing_keys_ring"), ["ring"], unique=False)

    op.create_table(
        "lti_resource_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("external_tool_id", sa.Integer(), nullable=False),
        sa.Column("placement", sa.String(length=40), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(length=4096), nullable=True),
        sa.Column("custom", sa.JSON(), nullable=False),
        sa.Column("line_item", sa.JSON(), nullable=True),
        sa.Column("workflow_state", sa.String(length=20), nullable=False),
        sa.Column("created_at", lmsauth.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", lmsauth.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["external_tool_id"], ["external_tools.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    with op.batch_alter_table("lti_resource_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lti_resource_links_course_id"), ["course_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_lti_resource_links_external_tool_id"), ["external_tool_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lti_resource_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lti_resource_links_external_tool_id"))
        batch_op.drop_index(batch_op.f("ix_lti_resource_links_course_id"))
    op.drop_table("lti_resource_links")
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signing_keys_ring"))
        batch_op.drop_column("ring")
