"""Migration 0002 creates exactly the identity tables the models declare, and removes them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import lmsauth.models  # noqa: F401  (registers every table)
from lmsauth.core.db import Base
from lmsauth.migrations import alembic_config, upgrade
from lmsauth.settings import Settings
from tests.conftest import TEST_SECRET_KEY


def test_0002_up_and_down(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=TEST_SECRET_KEY)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lmsauth.db'}")
    upgrade(settings, "0001")
    assert "identity_clients" not in sa.inspect(engine).get_table_names()
    upgrade(settings, "0002")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        identity = Base.metadata.tables["identity_clients"]
        differences = [d for d in compare_metadata(context, Base.metadata) if identity.name in repr(d)]
    assert differences == []
    command.downgrade(alembic_config(settings), "0001")
    assert "identity_clients" not in sa.inspect(engine).get_table_names()
    engine.dispose()
