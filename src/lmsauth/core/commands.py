"""What each service's command group (``lmsauth external-tool``, ``identity-client``,
``commons``) shares: one write transaction on the configured, migrated database.

Loading the settings and migrating the database they name belong to the composition layer
(``cli.py`` and ``migrations``, which import every service), so neither is imported here: the
``lmsauth`` group puts a ``CommandEnvironment`` on click's context, and ``run_in_transaction``
finds it there. A service's commands thus reach only ``core`` (DESIGN.md's boundaries).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.core.db import Database

T = TypeVar("T")


class DatabaseSettings(Protocol):
    @property
    def resolved_database_url(self) -> str: ...


@dataclass(frozen=True, slots=True)
class CommandEnvironment:
    """Set by the ``lmsauth`` group as click's context object. ``migrated_settings`` loads the
    settings (a ``click.ClickException`` when they are invalid) and migrates their database."""

    migrated_settings: Callable[[], DatabaseSettings]


def run_in_transaction(
    work: Callable[[AsyncSession, Any], Awaitable[T]],
    *,
    write: bool = True,
    operator_errors: tuple[type[Exception], ...] = (),
) -> T:
    """Run ``work(session, settings)`` in one transaction; ``operator_errors`` become a clean
    message on stderr. Must run under the ``lmsauth`` group, which provides the settings."""
    environment = click.get_current_context().find_object(CommandEnvironment)
    if environment is None:
        raise RuntimeError("a service's command runs only under the lmsauth group (lmsauth.cli.main)")
    settings = environment.migrated_settings()

    async def main() -> T:
        db = Database(settings.resolved_database_url)
        try:
            async with db.session(write=write) as session:
                return await work(session, settings)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except operator_errors as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(f"database error: {exc.__class__.__name__}: {exc.args[0]}") from exc
