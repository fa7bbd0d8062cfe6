"""refresh token families: access_tokens.family_id and refresh_used_at

Revision ID: 0005
Revises: 0004

The strict profile rotates refresh tokens (canvas/tokens.py): each refresh makes a new row in
the family of the grant's first row, and the exchanged row keeps the time it was used so that
a second presentation is recognised. Tokens made before this revision are each the first (and
only) row of their family, and none has been exchanged: both columns stay NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lmsauth.core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("refresh_used_at", lmsauth.core.db.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_access_tokens_family_id"), ["family_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_tokens_family_id"))
        batch_op.drop_column("refresh_used_at")
        batch_op.drop_column("family_id")
