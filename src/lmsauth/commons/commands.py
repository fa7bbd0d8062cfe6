"""``lmsauth commons ...``: what a Commons operator does from the command line.

The group is added to the main command by ``lmsauth.cli``; it does not import it (a service
never imports ``cli.py``), so it opens its own database the same way.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.commons import admin
from lmsauth.core.commands import run_in_transaction
from lmsauth.settings import Settings

T = TypeVar("T")


@click.group("commons")
def commons() -> None:
    """Canvas Commons: LTI consumers and curators."""


@commons.group("consumer")
def consumer() -> None:
    """LTI 1.1 consumer keys and shared secrets that Canvas installs Commons with."""


@consumer.command("create")
@click.option("--name", required=True, help="The institution; also names its Commons account.")
@click.option("--consumer-key", default=None, help="Default: a random key.")
@click.option("--shared-secret", default=None, help="Default: a random secret (shown once).")
@click.option("--json", "as_json", is_flag=True)
def consumer_create(name: str, consumer_key: str | None, shared_secret: str | None, as_json: bool) -> None:
    """Issue a consumer key and shared secret for a new Commons account."""

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        if consumer_key is not None and any(
            row["consumer_key"] == consumer_key for row in await admin.list_consumers(session)
        ):
            raise admin.CommonsAdminError(f"a consumer with key {consumer_key} already exists")
        issued = await admin.save_consumer(
            session,
            settings.resolved_secret_key,
            name=name,
            consumer_key=consumer_key,
            shared_secret=shared_secret,
        )
        return issued.summary()

    data = run_in_transaction(work, operator_errors=(admin.CommonsAdminError,))
    if as_json:
        click.echo(json.dumps({"consumer_key": data["consumer_key"], "shared_secret": data["shared_secret"]}))
    else:
        click.echo(f"consumer_key={data['consumer_key']}\nshared_secret={data['shared_secret']}")


@consumer.command("list")
@click.option("--json", "as_json", is_flag=True)
def consumer_list(as_json: bool) -> None:
    """List consumers (shared secrets are never shown again)."""

    async def work(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
        return await admin.list_consumers(session)

    rows = run_in_transaction(work, operator_errors=(admin.CommonsAdminError,))
    if as_json:
        click.echo(json.dumps(rows, sort_keys=True))
        return
    for row in rows:
        click.echo(f"{row['consumer_key']}\t{row['name']}")


@commons.group("curator")
def curator() -> None:
    """Account curators (``isAccountCurator`` in the session object)."""


@curator.command("add")
@click.option("--consumer-key", required=True)
@click.option("--canvas-user-id", required=True)
@click.option("--canvas-domain", required=True, help="The Canvas API domain, e.g. 127.0.0.1:8000.")
def curator_add(consumer_key: str, canvas_user_id: str, canvas_domain: str) -> None:
    """Make a user who has launched Commons a curator of the consumer's account."""

    async def work(session: AsyncSession, settings: Settings) -> bool:
        return await admin.add_curator(
            session, consumer_key=consumer_key, canvas_user_id=canvas_user_id, canvas_api_domain=canvas_domain
        )

    added = run_in_transaction(work, operator_errors=(admin.CommonsAdminError,))
    click.echo("curator added" if added else "already a curator", err=True)
