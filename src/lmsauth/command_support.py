"""What each service's command group (``lmsauth external-tool``, ``identity-client``,
``commons``) shares: one write transaction on the configured, migrated database.

It lives outside ``cli.py`` because a service never imports ``cli.py`` (DESIGN.md), which is
what registers the groups.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.core.db import Database
from lmsauth.settings import Settings

T = TypeVar("T")


def run_in_transaction(
    work: Callable[[AsyncSession, Settings], Awaitable[T]],
    *,
    write: bool = True,
    operator_errors: tuple[type[Exception], ...] = (),
) -> T:
    """Run ``work`` in one transaction; ``operator_errors`` become a clean message on stderr."""
    from lmsauth.migrations import upgrade

    try:
        settings = Settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc
    upgrade(settings)

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
