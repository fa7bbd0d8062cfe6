"""Alembic migrations for every service's tables, applied by ``lmsauth serve`` and ``lmsauth db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from lmsauth.settings import Settings

HERE = Path(__file__).parent


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", settings.resolved_database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database to ``revision``; creates the SQLite file and folder if needed."""
    if settings.is_sqlite:
        settings.ensure_data_dir()
    command.upgrade(alembic_config(settings), revision)


def current_heads(settings: Settings) -> list[str]:
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config(settings)).get_heads())
