"""``lmsauth identity-client``: create, list and revoke Identity Service clients.

Same conventions as the rest of the CLI: ``create --json`` prints one JSON object with the
secret (shown once); errors go to stderr with exit status 1. The database helper is repeated
here rather than imported from ``cli.py``, which a service must not import (DESIGN.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.core.db import Database
from lmsauth.identity import admin
from lmsauth.settings import Settings

T = TypeVar("T")


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]], *, write: bool) -> T:
    """Run ``work`` in one transaction on the configured database, migrated first."""
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
                return await work(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except admin.IdentityAdminError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("identity-client")
def identity_client() -> None:
    """Identity Service clients (ClientID + Secret) that open the DAP Query API."""


@identity_client.command("create")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--principal", required=True, help="The institution the key acts for.")
@click.option("--partner", default=None, help="The Instructure partner the key is issued to.")
@click.option("--region", default=admin.DEFAULT_REGION, show_default=True)
@click.option("--expires-in-days", default=admin.DEFAULT_EXPIRES_IN_DAYS, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
def create(
    name: str, principal: str, partner: str | None, region: str, expires_in_days: int, as_json: bool
) -> None:
    """Create an active client; its secret is printed this once."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        client, secret = await admin.create_client(
            session,
            name=name,
            principal=principal,
            partner=partner,
            region=region,
            expires_in_days=expires_in_days,
        )
        return {**admin.summary(client), "client_secret": secret}

    data = _in_transaction(work, write=True)
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
    else:
        click.echo(f"client_id={data['client_id']}\nclient_secret={data['client_secret']}")


@identity_client.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_command(as_json: bool) -> None:
    """List clients (secrets are never shown again)."""
    clients = _in_transaction(admin.list_clients, write=False)
    if as_json:
        click.echo(json.dumps(clients, sort_keys=True))
        return
    for client in clients:
        state = "active" if client["active"] else "revoked"
        click.echo(f"{client['client_id']}\t{state}\t{client['expires_at']}\t{client['name']}")


@identity_client.command("revoke")
@click.argument("client_id")
def revoke(client_id: str) -> None:
    """Revoke a client: it cannot log in, and its tokens stop opening DAP at once."""

    async def work(session: AsyncSession) -> None:
        await admin.revoke_client(session, client_id)

    _in_transaction(work, write=True)
    click.echo(f"identity client {client_id} is revoked", err=True)
