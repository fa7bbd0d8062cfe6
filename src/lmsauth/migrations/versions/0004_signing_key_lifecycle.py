"""signing key lifecycle: activates_at

Revision ID: 0004
Revises: 0003

A key is published from ``created_at``, signs from ``activates_at`` and is withdrawn at
``retired_at`` (core.keys). Keys made before this revision signed at once: they activated
when they were created.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lmsauth.core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activates_at", lmsauth.core.db.UTCDateTime(), nullable=True))
    op.execute("UPDATE signing_keys SET activates_at = created_at")
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.alter_column("activates_at", existing_type=lmsauth.core.db.UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("activates_at")
