"""Migration 0012 (unstamped changes in ``export_changes_pending``) keeps every change, both
ways: unstamped rows move to the pending table and back, stamped ones stay, and the triggers
write where the revision says. On the test's own database, either backend."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from lmsauth.core import clock
from lmsauth.migrations import alembic_config, upgrade
from tests.conftest import run

_INSERT_ACCOUNT = sa.text(
    "INSERT INTO accounts (id, name, uuid, lti_context_id, created_at) VALUES (:id, 'A', :uuid, :uuid, :now)"
)


async def _sql(url: str, *statements: tuple[Any, dict[str, Any]]) -> list[list[tuple[Any, ...]]]:
    """Each statement in one transaction; the rows of those that return any."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            out = []
            for statement, params in statements:
                result = await connection.execute(statement, params)
                out.append([tuple(row) for row in result] if result.returns_rows else [])
            return out
    finally:
        await engine.dispose()


def _log(url: str, *, pending: bool = True) -> list[list[tuple[Any, ...]]]:
    """[the log as (table, key, stamped?), and with ``pending`` the pending table as (table,
    key)], accounts only, in order."""
    statements = [
        "SELECT table_name, row_key, stamped_at IS NOT NULL FROM export_changes "
        "WHERE table_name = 'accounts' ORDER BY id",
        "SELECT table_name, row_key FROM export_changes_pending WHERE table_name = 'accounts' ORDER BY id",
    ]
    return run(_sql(url, *((sa.text(sql), {}) for sql in statements[: 2 if pending else 1])))


def test_0012_moves_unstamped_changes_and_back(settings) -> None:
    url = settings.resolved_database_url
    config = alembic_config(settings)
    now = clock.now().replace(tzinfo=None)
    command.downgrade(config, "0011")
    try:
        # 0011: the trigger writes the one log, unstamped; one row is stamped already.
        run(
            _sql(
                url,
                (_INSERT_ACCOUNT, {"id": 41, "uuid": "u41", "now": now}),
                (sa.text("UPDATE export_changes SET stamped_at = :now WHERE row_key = 41"), {"now": now}),
                (_INSERT_ACCOUNT, {"id": 42, "uuid": "u42", "now": now}),
                (_INSERT_ACCOUNT, {"id": 43, "uuid": "u43", "now": now}),
            )
        )
        upgrade(settings, "0012")
        assert _log(url) == [[("accounts", 41, True)], [("accounts", 42), ("accounts", 43)]]
        run(_sql(url, (_INSERT_ACCOUNT, {"id": 44, "uuid": "u44", "now": now})))
        assert _log(url)[1] == [("accounts", 42), ("accounts", 43), ("accounts", 44)]

        command.downgrade(config, "0011")
        assert _log(url, pending=False) == [[("accounts", key, key == 41) for key in (41, 42, 43, 44)]]
        run(_sql(url, (_INSERT_ACCOUNT, {"id": 45, "uuid": "u45", "now": now})))
        assert _log(url, pending=False)[0][-1] == ("accounts", 45, False)
    finally:
        upgrade(settings)
