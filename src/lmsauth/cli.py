"""The ``lmsauth`` command: serve, db, seed, and the admin verbs tests and operators use.

Every ``create --json`` prints exactly one JSON object on stdout, secrets included once.
Errors go to stderr with exit status 1 (2 for usage errors, as click does).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from lmsauth.canvas import admin
from lmsauth.canvas.access_tokens.commands import token
from lmsauth.canvas.courses.commands import course, enrollment
from lmsauth.canvas.keys.commands import developer_key, lti_key
from lmsauth.canvas.people.commands import user
from lmsauth.canvas.tool_commands import external_tool
from lmsauth.commons.commands import commons
from lmsauth.core import logs, metrics
from lmsauth.core.commands import CommandEnvironment
from lmsauth.core.db import Database
from lmsauth.core.keys import ALGORITHM, ALGORITHMS, KeyLifecycle, KeyRing
from lmsauth.core.kv import StoreUnavailable, create_store
from lmsauth.identity.commands import identity_client
from lmsauth.settings import Settings

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc


def _migrated_settings() -> Settings:
    from lmsauth.migrations import upgrade

    settings = _settings()
    upgrade(settings)
    return settings


def _run(work: Callable[[Database], Awaitable[T]], *, migrate: bool = True) -> T:
    """Run ``work`` against the configured database (migrated first)."""
    settings = _migrated_settings() if migrate else _settings()

    async def main() -> T:
        db = Database(settings.resolved_database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except admin.AdminError as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(f"database error: {exc.__class__.__name__}: {exc.args[0]}") from exc


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, sort_keys=True) if as_json else text)


@click.group()
@click.version_option(package_name="lmsauth")
@click.pass_context
def main(ctx: click.Context) -> None:
    """lmsauth: Canvas OAuth2, Identity Service and Commons sessions, in one server."""
    # The services' command groups load settings and migrate through this (core.commands).
    ctx.obj = CommandEnvironment(_migrated_settings)


# ---------------------------------------------------------------------------- serve


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--demo", is_flag=True, help="Load the built-in demo data before serving.")
@click.option(
    "--services",
    default="all",
    show_default=True,
    help="all, or a comma-separated subset of canvas,identity,dap,commons. "
    "'commons' alone runs Commons' own app, with no Canvas code.",
)
@click.option(
    "--emulator",
    is_flag=True,
    envvar="LMSAUTH_EMULATOR",
    help="Emulator mode: the /_emulator/ control API (clock, faults, traffic). One process only.",
)
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Load this seed file before serving; with --emulator, also what POST /_emulator/reset restores.",
)
def serve(
    host: str, port: int, workers: int, demo: bool, services: str, emulator: bool, seed_file: Path | None
) -> None:
    """Apply migrations, optionally seed demo data, and serve HTTP."""
    import uvicorn

    from lmsauth import seed
    from lmsauth.app import parse_services
    from lmsauth.migrations import upgrade
    from lmsauth.serving import server_limits

    try:
        chosen = parse_services(services)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--services") from exc
    os.environ["LMSAUTH_SERVICES"] = ",".join(sorted(chosen))  # the workers' create_app reads it
    if emulator:
        # core.clock, the faults and the traffic log live in one process's memory.
        if workers > 1:
            raise click.BadParameter(
                "the emulator runs as one process: drop --workers", param_hint="--workers"
            )
        if demo and seed_file is not None:
            raise click.BadParameter("with --emulator, choose --demo or --seed", param_hint="--seed")
        os.environ["LMSAUTH_EMULATOR"] = "1"
        if seed_file is not None:
            os.environ["LMSAUTH_EMULATOR_SEED"] = str(seed_file.resolve())
        elif demo:
            os.environ["LMSAUTH_EMULATOR_SEED"] = "demo"

    if "LMSAUTH_PUBLIC_URL" not in os.environ:
        # Workers read their settings from the environment: tell them where they listen.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        os.environ["LMSAUTH_PUBLIC_URL"] = f"http://{shown}:{port}"
    settings = _settings()
    log_config = logs.config(settings.log_level, settings.log_format)
    logging.config.dictConfig(log_config)
    settings.resolved_secret_key  # noqa: B018  (generate it once, before workers race for it)
    if settings.metrics:
        _share_metrics_between_workers(workers)
    upgrade(settings)
    if demo and not emulator:  # the emulator loads its seed itself, at start
        result = _run(lambda db: seed.load(db, seed.demo_seed_text(), settings), migrate=False)
        _print_demo(settings, result)
    if seed_file is not None and not emulator:  # the emulator loads its seed itself, at start
        try:
            text = seed.load_file(seed_file)
            seed.parse(text)
            _run(lambda db: seed.load(db, text, settings), migrate=False)
        except seed.SeedError as exc:
            raise click.ClickException(str(exc)) from exc
    announce = _announcer(logs.resolve_format(settings.log_format))
    if settings.emulator:
        announce(f"lmsauth EMULATOR: control API and page at {settings.public_url}/_emulator/")
    announce(f"lmsauth serving on http://{host}:{port} (public URL {settings.public_url})")
    # Each server process freezes its start-up heap once the app is built (``gc_freeze``).
    os.environ.setdefault("LMSAUTH_GC_FREEZE", "1")
    uvicorn.run(
        "lmsauth.commons.app:create_commons_app"
        if chosen == {"commons"} and not settings.emulator
        else "lmsauth.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=log_config,
        access_log=False,  # core.observe writes the access line, without the query string
        loop="auto",
        proxy_headers=settings.trust_proxy_headers,
        server_header=False,
        **server_limits(settings),
    )


def _announcer(log_format: str) -> Callable[[str], None]:
    """How ``serve`` says where it listens: a log record when logs are JSON (every line of
    stderr stays one JSON object), else a plain line."""
    if log_format == "json":
        return logging.getLogger("lmsauth.serve").info
    return lambda text: click.echo(text, err=True)


def _share_metrics_between_workers(workers: int) -> None:
    """prometheus_client's multiprocess mode for ``--workers N``: each worker writes its samples
    to files in ``PROMETHEUS_MULTIPROC_DIR`` and any worker's ``/metrics`` sums them all.
    An operator's folder is emptied of an earlier run's files (it must belong to this one
    ``lmsauth serve``); without one, a temporary folder is made and removed at exit."""
    folder = os.environ.get(metrics.MULTIPROC_DIR)
    if folder:
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
    elif workers > 1:
        folder = tempfile.mkdtemp(prefix="lmsauth-metrics-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ[metrics.MULTIPROC_DIR] = folder  # the workers inherit it before they import


def _print_demo(settings: Settings, result: Any) -> None:
    base = settings.public_url
    key = result.developer_keys[0]
    lines = [
        "",
        "lmsauth demo data loaded",
        f"  Log in page      {base}/login/canvas",
        f"  Authorize        {base}/login/oauth2/auth",
        f"  Token            {base}/login/oauth2/token",
        f"  Current user     {base}/api/v1/users/self",
        f"  JWKS             {base}/login/oauth2/jwks",
        "",
        f"  Developer key    client_id={key['client_id']}",
        f"                   client_secret={key.get('client_secret', '(unchanged)')}",
        f"                   redirect_uris={' '.join(key['redirect_uris'])}",
        "  Demo user        login=student@example.edu password=student-password",
        "",
    ]
    for tool in result.external_tools:
        lines += [f"  External tool    {tool['name']}: {base}/accounts/self/external_tools/{tool['id']}"]
    for consumer in result.commons_consumers:
        lines += [
            f"  Commons          {base}{settings.commons_path}/api/lti",
            f"                   consumer_key={consumer['consumer_key']}",
            f"                   shared_secret={consumer.get('shared_secret', '(unchanged)')}",
            "",
        ]
    click.echo("\n".join(lines), err=True)


# ---------------------------------------------------------------------------- db and seed


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from lmsauth.migrations import upgrade

    upgrade(_settings(), revision)
    click.echo(f"database at {revision}", err=True)


@main.command("seed")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def seed_command(file: Path, as_json: bool) -> None:
    """Load accounts, users, developer keys, tokens and courses from a TOML FILE (idempotent)."""
    from lmsauth import seed

    try:
        text = seed.load_file(file)
        seed.parse(text)
        result = _run(lambda database: seed.load(database, text, _settings()))
    except seed.SeedError as exc:
        raise click.ClickException(str(exc)) from exc
    data = {
        "users": result.users,
        "developer_keys": result.developer_keys,
        "commons_consumers": result.commons_consumers,
        "external_tools": result.external_tools,
        "access_tokens": result.access_tokens,
        "courses": result.courses,
        "lti_keys": result.lti_keys,
    }
    _emit(
        data,
        as_json,
        f"seeded {len(result.users)} users, {len(result.developer_keys)} developer keys",
    )


# ---------------------------------------------------------------------------- signing keys


@main.group("keys")
def signing_keys() -> None:
    """Signing keys: the key ring that signs JWTs and is published as the JWKS."""


async def _with_keyring(database: Database, work: Callable[[KeyRing], Awaitable[T]]) -> T:
    """The configured key ring, with the shared store that tells running instances of a change."""
    settings = _settings()
    store = create_store(
        settings.redis_url, namespace=settings.redis_namespace, timeout=settings.backend_timeout_seconds
    )
    try:
        ring = KeyRing(
            database,
            settings.resolved_secret_key,
            store=store,
            lifecycle=KeyLifecycle.from_settings(settings),
            algorithms=settings.signing_algorithms,
        )
        await ring.load()
        return await work(ring)
    except StoreUnavailable as exc:
        raise click.ClickException(f"Redis is unavailable: {exc}") from exc
    finally:
        await store.close()


@signing_keys.command("list")
@click.option("--json", "as_json", is_flag=True)
def keys_list(as_json: bool) -> None:
    """List published keys: pending (published, not signing yet), active, their retirement."""
    from lmsauth.core import clock

    async def work(ring: KeyRing) -> list[dict[str, Any]]:
        now = clock.now()
        return [key.summary(now) for key in ring.loaded_keys()]

    found = _run(lambda database: _with_keyring(database, work))
    if as_json:
        click.echo(json.dumps(found, sort_keys=True))
        return
    for key in found:
        click.echo(
            f"{key['kid']}\t{key['state']}\tsigns from {key['activates_at']}\tretires {key['retired_at']}"
        )


@signing_keys.command("rotate")
@click.option(
    "--activate-in",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds until the new key signs (default LMSAUTH_KEY_PUBLISH_AHEAD_SECONDS). "
    "0 when the current key must stop signing at once: verifiers that cached the JWKS "
    "refuse the new key's tokens until they fetch it again.",
)
@click.option(
    "--alg",
    type=click.Choice(ALGORITHMS),
    default=ALGORITHM,
    show_default=True,
    help="The algorithm of the new key; only older keys of the same algorithm retire.",
)
@click.option("--json", "as_json", is_flag=True)
def keys_rotate(activate_in: float | None, alg: str, as_json: bool) -> None:
    """Add a signing key; the current keys retire once the tokens they signed have expired."""
    from datetime import timedelta

    from lmsauth.core import clock

    async def work(ring: KeyRing) -> dict[str, Any]:
        ahead = None if activate_in is None else timedelta(seconds=activate_in)
        kid = await ring.rotate(activate_in=ahead, alg=alg)
        now = clock.now()
        return next(key.summary(now) for key in ring.loaded_keys() if key.kid == kid)

    data = _run(lambda database: _with_keyring(database, work))
    _emit(data, as_json, f"new signing key {data['kid']}: signs from {data['activates_at']}")


main.add_command(user)
main.add_command(identity_client)
main.add_command(commons)
main.add_command(external_tool)
main.add_command(token)
main.add_command(developer_key)
main.add_command(course)
main.add_command(enrollment)
main.add_command(lti_key)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
