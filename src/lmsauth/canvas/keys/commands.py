"""``lmsauth developer-key ...``: OAuth clients made and changed from the command line.

The group is added to the main command by ``lmsauth.cli``, which a service never imports, so it
opens its own database through ``lmsauth.core.commands``.
"""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.admin import AdminError
from lmsauth.canvas.keys import service
from lmsauth.core.commands import run_in_transaction
from lmsauth.settings import Settings

_OPERATOR_ERRORS = (AdminError,)


@click.group("developer-key")
def developer_key() -> None:
    """OAuth clients (Canvas developer keys)."""


@developer_key.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option(
    "--legacy-redirect-uri",
    default=None,
    help="Host for Canvas's lenient domain rule (default: the first --redirect-uri).",
)
@click.option("--scope", "scopes", multiple=True)
@click.option("--require-scopes", is_flag=True)
@click.option("--trusted", is_flag=True, help="Skip the consent page.")
@click.option("--public", is_flag=True, help="A public client (PKCE, no secret needed).")
@click.option("--json", "as_json", is_flag=True)
def create(
    name: str,
    redirect_uris: tuple[str, ...],
    legacy_redirect_uri: str | None,
    scopes: tuple[str, ...],
    require_scopes: bool,
    trusted: bool,
    public: bool,
    as_json: bool,
) -> None:
    """Create an active developer key, bound on for the root account."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        key, secret = await service.save_developer_key(
            session,
            name=name,
            redirect_uris=list(redirect_uris),
            scopes=list(scopes),
            require_scopes=require_scopes,
            trusted=trusted,
            client_type="public" if public else "confidential",
            legacy_redirect_uri=legacy_redirect_uri,
            secret_key=settings.resolved_secret_key,
        )
        return {**key.summary(), "client_secret": secret}

    data = run_in_transaction(work, operator_errors=_OPERATOR_ERRORS)
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
    else:
        click.echo(f"client_id={data['client_id']}\nclient_secret={data['client_secret']}")


@developer_key.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_keys(as_json: bool) -> None:
    """List developer keys (secrets are never shown again)."""

    async def work(session: AsyncSession, _settings: Settings) -> list[dict[str, Any]]:
        return await service.list_developer_keys(session)

    keys = run_in_transaction(work, write=False, operator_errors=_OPERATOR_ERRORS)
    if as_json:
        click.echo(json.dumps(keys, sort_keys=True))
        return
    for key in keys:
        click.echo(
            f"{key['client_id']}\t{key['workflow_state']}\t{key['name']}\t{' '.join(key['redirect_uris'])}"
        )


def _set_state(client_id: str, state: str) -> None:
    async def work(session: AsyncSession, _settings: Settings) -> None:
        await service.set_developer_key_state(session, client_id, state)

    run_in_transaction(work, operator_errors=_OPERATOR_ERRORS)
    click.echo(f"developer key {client_id} is {state}", err=True)


@developer_key.command("deactivate")
@click.argument("client_id")
def deactivate(client_id: str) -> None:
    """Deactivate a key: its tokens stop working at once; activate restores them."""
    _set_state(client_id, "inactive")


@developer_key.command("activate")
@click.argument("client_id")
def activate(client_id: str) -> None:
    """Reactivate a deactivated key."""
    _set_state(client_id, "active")
