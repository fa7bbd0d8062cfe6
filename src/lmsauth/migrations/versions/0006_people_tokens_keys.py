"""people, manual tokens and developer keys: the columns Canvas's Users, Logins, Access Tokens
and Developer Keys APIs read and write

Revision ID: 0006
Revises: 0005

- users: ``time_zone`` and ``updated_at`` (User API fields, and the DAP export follows changes).
- logins: ``sis_user_id`` (Canvas keeps it on the pseudonym, unique in its account) and
  ``updated_at``.
- developer_keys: ``notes``, ``vendor_code``, ``visible``, ``client_credentials_audience``
  (``external`` lets a key issue client-credentials JWTs, spec 5.6), ``internal_service``
  (its tokens are hidden from the profile page, spec 11.3), ``is_default`` (the key manual
  tokens belong to, Canvas's ``DeveloperKey.default``) and ``user_id`` (who created it).
- access_tokens: ``real_user_id`` (a token made by an admin for someone else).
Existing rows: ``updated_at`` starts at ``created_at``; every new flag is false.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lmsauth.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("updated_at", lmsauth.core.db.UTCDateTime(), nullable=True))
    op.execute("UPDATE users SET updated_at = created_at")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=lmsauth.core.db.UTCDateTime(), nullable=False)

    with op.batch_alter_table("logins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sis_user_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("updated_at", lmsauth.core.db.UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint("uq_logins_account_id_sis_user_id", ["account_id", "sis_user_id"])
    op.execute("UPDATE logins SET updated_at = created_at")
    with op.batch_alter_table("logins", schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=lmsauth.core.db.UTCDateTime(), nullable=False)

    with op.batch_alter_table("developer_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("vendor_code", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("visible", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("client_credentials_audience", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("internal_service", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_developer_keys_user_id_users", "users", ["user_id"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("real_user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_access_tokens_real_user_id_users", "users", ["real_user_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.drop_constraint("fk_access_tokens_real_user_id_users", type_="foreignkey")
        batch_op.drop_column("real_user_id")
    with op.batch_alter_table("developer_keys", schema=None) as batch_op:
        batch_op.drop_constraint("fk_developer_keys_user_id_users", type_="foreignkey")
        for column in ("user_id", "is_default", "internal_service", "client_credentials_audience", "visible"):
            batch_op.drop_column(column)
        batch_op.drop_column("vendor_code")
        batch_op.drop_column("notes")
    with op.batch_alter_table("logins", schema=None) as batch_op:
        batch_op.drop_constraint("uq_logins_account_id_sis_user_id", type_="unique")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("sis_user_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("time_zone")
