"""``lmsauth token ...``: a person's manual tokens from the command line, as the profile page and
the Access Tokens API make them (on the default key, no 1-hour expiry). Mounted by ``cli.py``.
"""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.access_tokens import manual
from lmsauth.canvas.access_tokens.seeding import find_user_id
from lmsauth.canvas.admin import AdminError
from lmsauth.canvas.models import AccessToken, local_id
from lmsauth.core.commands import run_in_transaction
from lmsauth.core.db import row_id
from lmsauth.settings import Settings


@click.group("token")
def token() -> None:
    """People's manual access tokens (profile settings' "+ New Access Token")."""


@token.command("create")
@click.option("--user", "login", required=True, help="The login of the token's user.")
@click.option("--purpose", required=True)
@click.option("--expires-at", default=None, help="ISO 8601 date-time or date (UTC when no offset).")
@click.option("--scope", "scopes", multiple=True, help="Only when the User-Generated key enforces scopes.")
@click.option("--json", "as_json", is_flag=True)
def token_create(
    login: str, purpose: str, expires_at: str | None, scopes: tuple[str, ...], as_json: bool
) -> None:
    """Make a manual token for USER; the token is printed this once."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        user_id = await find_user_id(session, login)
        key = await manual.default_key(session)
        if scopes and not key.require_scopes:
            # The API ignores them, as Canvas does; an operator is told instead.
            raise AdminError("the User-Generated key does not enforce scopes: --scope would have no effect")
        try:
            made = await manual.create(
                session, user_id=user_id, purpose=purpose, expires_at=expires_at, scopes=list(scopes)
            )
        except manual.ManualTokenError as exc:
            raise AdminError(exc.sentence) from exc
        return {
            "id": made.row.id,
            "token": made.token,
            "token_hint": made.row.token_hint,
            "user_id": user_id,
            "purpose": made.row.purpose,
            "expires_at": manual.api_time(made.row.permanent_expires_at),
        }

    data = run_in_transaction(work, operator_errors=(AdminError,))
    click.echo(json.dumps(data, sort_keys=True) if as_json else data["token"])


@token.command("list")
@click.option("--user", "login", required=True)
@click.option("--json", "as_json", is_flag=True)
def token_list(login: str, as_json: bool) -> None:
    """The user's tokens that are not deleted, as Approved Integrations lists them (the token
    text is never shown again: ``visible_token`` is its hint)."""

    async def work(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
        user_id = await find_user_id(session, login)
        return [manual.token_json(row, key) for row, key in await manual.visible_tokens(session, user_id)]

    rows = run_in_transaction(work, write=False, operator_errors=(AdminError,))
    if as_json:
        click.echo(json.dumps(rows, sort_keys=True))
        return
    for row in rows:
        click.echo(
            f"{row['id']}\t{row['visible_token'] or '-'}\t{row['app_name']}\t{row['purpose']}\t"
            f"expires {row['expires_at'] or 'never'}"
        )


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke the token with id TOKEN_ID (any token: OAuth ones too); it stops working at once."""

    async def work(session: AsyncSession, settings: Settings) -> None:
        digits = token_id.isascii() and token_id.isdigit() and len(token_id) <= 19
        parsed = row_id(local_id(int(token_id))) if digits else None
        row = await session.get(AccessToken, parsed) if parsed is not None else None
        if row is None or row.workflow_state == "deleted":
            raise AdminError(f"no active token with id {token_id}")
        await manual.revoke(session, row)

    run_in_transaction(work, operator_errors=(AdminError,))
    click.echo(f"token {token_id} is revoked", err=True)
