"""Every migration together builds exactly the tables the models declare, and goes back down:
a column added to a model without its migration (or the other way round) fails here."""

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


def test_head_matches_the_models_and_downgrades(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=TEST_SECRET_KEY)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lmsauth.db'}")
    upgrade(settings)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    command.downgrade(alembic_config(settings), "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
