"""``lmsauth external-tool ...``: what a Canvas admin does to install an LTI 1.1 tool.

The group is added to the main command by ``lmsauth.cli``, which a service never imports, so it
opens its own database the same way.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import tools
from lmsauth.canvas.admin import AdminError
from lmsauth.canvas.tool_models import PRIVACY_LEVELS
from lmsauth.core.commands import run_in_transaction
from lmsauth.settings import Settings

T = TypeVar("T")


def _custom_fields(values: tuple[str, ...]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--custom")
        fields[name] = value
    return fields


@click.group("external-tool")
def external_tool() -> None:
    """LTI 1.1 external tools installed in the root account (e.g. Commons)."""


@external_tool.command("create")
@click.option("--name", required=True)
@click.option("--url", required=True, help="The tool's launch URL.")
@click.option("--consumer-key", required=True)
@click.option("--shared-secret", required=True)
@click.option("--privacy", type=click.Choice(PRIVACY_LEVELS), default="anonymous", show_default=True)
@click.option("--domain", default=None, help="Also match launch URLs on this host and its subdomains.")
@click.option("--custom", "custom", multiple=True, help="A custom field NAME=VALUE ($Canvas.* expands).")
@click.option("--json", "as_json", is_flag=True)
def external_tool_create(
    name: str,
    url: str,
    consumer_key: str,
    shared_secret: str,
    privacy: str,
    domain: str | None,
    custom: tuple[str, ...],
    as_json: bool,
) -> None:
    """Install a tool with the consumer key and shared secret its operator issued."""
    fields = _custom_fields(custom)

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        tool = await tools.save_external_tool(
            session,
            settings.resolved_secret_key,
            name=name,
            url=url,
            consumer_key=consumer_key,
            shared_secret=shared_secret,
            privacy_level=privacy,
            domain=domain,
            custom_fields=fields,
        )
        return tool.summary()

    data = run_in_transaction(work, operator_errors=(AdminError,))
    click.echo(
        json.dumps(data, sort_keys=True) if as_json else f"created external tool {data['id']} ({name})"
    )


@external_tool.command("list")
@click.option("--json", "as_json", is_flag=True)
def external_tool_list(as_json: bool) -> None:
    """List installed tools (shared secrets are never shown)."""

    async def work(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
        return [tool.summary() for tool in await tools.list_external_tools(session)]

    rows = run_in_transaction(work, operator_errors=(AdminError,))
    if as_json:
        click.echo(json.dumps(rows, sort_keys=True))
        return
    for row in rows:
        click.echo(f"{row['id']}\t{row['privacy_level']}\t{row['name']}\t{row['url']}")
