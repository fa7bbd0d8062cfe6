"""``lmsauth identity-client``: create, list and revoke Identity Service clients.

Same conventions as the rest of the CLI: ``create --json`` prints one JSON object with the
secret (shown once); errors go to stderr with exit status 1. The database helper is
``lmsauth.core.commands``, shared with the other services' groups.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.core.commands import run_in_transaction
from lmsauth.identity import admin
from lmsauth.settings import Settings

T = TypeVar("T")


_OPERATOR_ERRORS = (admin.IdentityAdminError,)


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

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        client, secret = await admin.create_client(
            session,
            name=name,
            principal=principal,
            partner=partner,
            region=region,
            expires_in_days=expires_in_days,
        )
        return {**admin.summary(client), "client_secret": secret}

    data = run_in_transaction(work, operator_errors=_OPERATOR_ERRORS)
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
    else:
        click.echo(f"client_id={data['client_id']}\nclient_secret={data['client_secret']}")


@identity_client.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_command(as_json: bool) -> None:
    """List clients (secrets are never shown again)."""
    clients = run_in_transaction(
        lambda session, _settings: admin.list_clients(session), write=False, operator_errors=_OPERATOR_ERRORS
    )
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

    async def work(session: AsyncSession, _settings: Settings) -> None:
        await admin.revoke_client(session, client_id)

    run_in_transaction(work, operator_errors=_OPERATOR_ERRORS)
    click.echo(f"identity client {client_id} is revoked", err=True)
