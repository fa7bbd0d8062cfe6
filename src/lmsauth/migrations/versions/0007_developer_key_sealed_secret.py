"""developer keys: the secret sealed, so the Developer Keys API can show ``api_key`` to admins

Revision ID: 0007
Revises: 0006

- developer_keys: ``secret_sealed``, the client secret encrypted with a key derived from
  ``LMSAUTH_SECRET_KEY`` (``core.sealing``). Canvas shows a key's ``api_key`` to admins on
  every read; a digest cannot be shown. Lookups stay by ``secret_digest``.
Existing rows: NULL; their ``api_key`` reads as ``null`` until the secret is set again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("developer_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret_sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("developer_keys", schema=None) as batch_op:
        batch_op.drop_column("secret_sealed")
