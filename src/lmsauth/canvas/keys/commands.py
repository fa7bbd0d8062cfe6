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
from lmsauth.canvas.keys import lti, service
from lmsauth.canvas.models import local_id
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


# ---------------------------------------------------------------------------- LTI 1.3 keys


@click.group("lti-key")
def lti_key() -> None:
    """LTI 1.3 developer keys and their deployments."""


def _custom_field(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"expected NAME=VALUE, not {text!r}", param_hint="--custom")
    return name.strip(), value


@lti_key.command("create")
@click.option("--name", required=True)
@click.option("--initiation-url", required=True, help="The tool's OIDC login initiation URL.")
@click.option("--target-link-uri", required=True, help="Where launches go by default.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option("--public-jwk", "public_jwk_file", type=click.File("r"), default=None, help="JSON file.")
@click.option("--public-jwk-url", default=None, help="URL of the tool's JWK set.")
@click.option("--scope", "scopes", multiple=True, help="An LTI Advantage scope.")
@click.option(
    "--placement",
    "placement_names",
    multiple=True,
    type=click.Choice(list(lti.PLACEMENTS)),
    help="Where the tool shows (default: course_navigation).",
)
@click.option("--custom", "custom", multiple=True, help="A custom field NAME=VALUE ($Variables expand).")
@click.option(
    "--privacy-level", type=click.Choice(["anonymous", "name_only", "email_only", "public"]), default="public"
)
@click.option(
    "--course", "course_id", type=int, default=None, help="Install in this course (not the account)."
)
@click.option("--json", "as_json", is_flag=True)
def lti_create(
    name: str,
    initiation_url: str,
    target_link_uri: str,
    redirect_uris: tuple[str, ...],
    public_jwk_file: Any,
    public_jwk_url: str | None,
    scopes: tuple[str, ...],
    placement_names: tuple[str, ...],
    custom: tuple[str, ...],
    privacy_level: str,
    course_id: int | None,
    as_json: bool,
) -> None:
    """Create an LTI key, active and on, and install its tool: the platform values a tool's
    configuration needs (client id, deployment id, issuer, URLs) and the installed tool's id."""
    if (public_jwk_file is None) == (public_jwk_url is None):
        raise click.UsageError("give exactly one of --public-jwk FILE and --public-jwk-url URL")

    async def work(session: AsyncSession, settings: Settings) -> dict[str, Any]:
        jwk = lti.read_jwk_file(public_jwk_file.read()) if public_jwk_file is not None else None
        config = lti.build_tool_configuration(
            title=name,
            initiation_url=initiation_url,
            target_link_uri=target_link_uri,
            public_jwk=jwk,
            public_jwk_url=public_jwk_url,
            scopes=list(scopes),
            placements=list(placement_names) or ["course_navigation"],
            custom_fields=dict(_custom_field(item) for item in custom),
            privacy_level=privacy_level,
        )
        key = await lti.save_lti_key(
            session,
            name=name,
            redirect_uris=list(redirect_uris),
            tool_configuration=config,
            secret_key=settings.resolved_secret_key,
        )
        tool = await lti.install(
            session,
            key,
            settings.resolved_secret_key,
            course_id=local_id(course_id) if course_id is not None else None,
        )
        return {
            "client_id": key.client_id,
            "deployment_id": await lti.tool_deployment_id(session, tool),
            **lti.platform_urls(settings.public_url),
            "tool_id": tool.id,
        }

    data = run_in_transaction(work, operator_errors=_OPERATOR_ERRORS)
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
    else:
        click.echo("\n".join(f"{name}={value}" for name, value in data.items()))
