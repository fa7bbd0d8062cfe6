"""access tokens: the family_id index covers only the rows that have one

Revision ID: 0013
Revises: 0012

Only a strict-profile rotation sets ``access_tokens.family_id``, and every query of it compares
it with a value, which a partial index ``WHERE family_id IS NOT NULL`` answers on SQLite and
PostgreSQL alike. Every other token (each code exchange, each manual token) then writes no entry
of it: on SQLite, one page fewer of the ~10 a code exchange writes to the WAL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_access_tokens_family_id"
WHERE = sa.text("family_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index(INDEX, table_name="access_tokens")
    op.create_index(INDEX, "access_tokens", ["family_id"], sqlite_where=WHERE, postgresql_where=WHERE)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="access_tokens")
    op.create_index(INDEX, "access_tokens", ["family_id"])
