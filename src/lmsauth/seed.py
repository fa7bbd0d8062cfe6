"""Seed files: accounts, users, developer keys, manual tokens and courses from TOML, loaded idempotently.

A seed names each thing by a stable key (a user's login, a key's ``client_id`` or name), so
loading the same file twice leaves the same state.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lmsauth.canvas import admin
from lmsauth.canvas import tools as canvas_tools
from lmsauth.canvas.access_tokens import seeding as token_seeding
from lmsauth.canvas.courses import seeding as course_seeding
from lmsauth.canvas.keys import lti as lti_keys
from lmsauth.canvas.keys import service as keys_service
from lmsauth.canvas.models import DeveloperKey
from lmsauth.canvas.tool_models import ExternalTool
from lmsauth.commons import admin as commons_admin
from lmsauth.core.db import Database
from lmsauth.settings import Settings


class SeedError(ValueError):
    """A seed file that cannot be loaded; nothing of it was written."""


@dataclass
class SeedResult:
    users: list[dict[str, Any]] = field(default_factory=list)
    developer_keys: list[dict[str, Any]] = field(default_factory=list)
    commons_consumers: list[dict[str, Any]] = field(default_factory=list)
    external_tools: list[dict[str, Any]] = field(default_factory=list)
    access_tokens: list[dict[str, Any]] = field(default_factory=list)
    courses: list[dict[str, Any]] = field(default_factory=list)
    lti_keys: list[dict[str, Any]] = field(default_factory=list)


def demo_seed_text() -> str:
    return resources.files("lmsauth").joinpath("demo_seed.toml").read_text()


def parse(text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SeedError(f"not valid TOML: {exc}") from exc
    known = {
        "account",
        "users",
        "developer_keys",
        "commons_consumers",
        "external_tools",
        "access_tokens",
        "courses",
        "lti_keys",
    }
    unknown = set(data) - known
    if unknown:
        raise SeedError(f"unknown sections: {', '.join(sorted(unknown))}")
    return data


def _str_list(item: dict[str, Any], name: str) -> list[str]:
    value = item.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SeedError(f"{name} must be a list of strings")
    return value


async def load(db: Database, text: str, settings: Settings | None = None) -> SeedResult:
    """Apply a seed in one transaction: all of it, or (on error) none of it.

    ``settings`` (default: from the environment) gives the key that seals LTI secrets, and the
    ``{public_url}`` and ``{commons_path}`` that external tool URLs may contain.
    """
    data = parse(text)
    result = SeedResult()
    try:
        async with db.session(write=True) as session:
            account = data.get("account", {})
            await admin.root_account(session, account.get("name") if isinstance(account, dict) else None)
            for item in data.get("users", []):
                user, created = await admin.upsert_user(
                    session,
                    login=str(item["login"]),
                    password=str(item["password"]),
                    name=str(item["name"]),
                    admin=bool(item.get("admin", False)),
                    email=item.get("email"),
                    locale=item.get("locale"),
                    avatar_url=item.get("avatar_url"),
                )
                result.users.append(
                    {"id": user.id, "login": item["login"], "name": user.name, "created": created}
                )
            for item in data.get("developer_keys", []):
                client_id = item.get("client_id")
                if client_id is None:
                    existing = await session.scalar(
                        select(DeveloperKey).where(DeveloperKey.name == str(item["name"]))
                    )
                    client_id = existing.client_id if existing is not None else None
                key, secret = await keys_service.save_developer_key(
                    session,
                    name=str(item["name"]),
                    redirect_uris=_str_list(item, "redirect_uris"),
                    scopes=_str_list(item, "scopes"),
                    require_scopes=bool(item.get("require_scopes", False)),
                    trusted=bool(item.get("trusted", False)),
                    client_type=str(item.get("client_type", "confidential")),
                    legacy_redirect_uri=item.get("redirect_uri"),
                    client_id=str(client_id) if client_id is not None else None,
                    client_secret=item.get("client_secret"),
                    active=bool(item.get("active", True)),
                    binding=str(item.get("binding", "on")),
                    icon_url=item.get("icon_url"),
                    email=item.get("email"),
                    secret_key=settings.resolved_secret_key if settings is not None else None,
                )
                entry = key.summary()
                if secret is not None:
                    entry["client_secret"] = secret
                result.developer_keys.append(entry)
            # After the developer keys: a seed's explicit client_id never meets the default key.
            result.access_tokens = await token_seeding.load_tokens(session, data.get("access_tokens", []))
            result.courses = await course_seeding.load_courses(session, data.get("courses", []))
            if data.get("lti_keys"):
                settings = settings or Settings()
                result.lti_keys = await _load_lti_keys(session, data["lti_keys"], settings)
            if data.get("commons_consumers") or data.get("external_tools"):
                settings = settings or Settings()
                await _load_lti(session, data, settings, result)
    except KeyError as exc:
        raise SeedError(f"missing field {exc.args[0]}") from exc
    except (admin.AdminError, commons_admin.CommonsAdminError) as exc:
        raise SeedError(str(exc)) from exc
    return result


async def _load_lti(session: Any, data: dict[str, Any], settings: Settings, result: SeedResult) -> None:
    """Commons consumers (by ``consumer_key``) and Canvas external tools (by ``name``)."""
    secret_key = settings.resolved_secret_key
    for item in data.get("commons_consumers", []):
        issued = await commons_admin.save_consumer(
            session,
            secret_key,
            name=str(item["name"]),
            consumer_key=str(item["consumer_key"]),
            shared_secret=str(item["shared_secret"]),
            account_name=item.get("account_name"),
            settings=item.get("account_settings", {}),
        )
        result.commons_consumers.append(issued.summary())
    for item in data.get("external_tools", []):
        custom = item.get("custom_fields", {})
        if not isinstance(custom, dict):
            raise SeedError("custom_fields must be a table")
        existing = await session.scalar(select(ExternalTool).where(ExternalTool.name == str(item["name"])))
        url = (
            str(item["url"])
            .replace("{public_url}", settings.public_url)
            .replace("{commons_path}", settings.commons_path)
        )
        tool = await canvas_tools.save_external_tool(
            session,
            secret_key,
            name=str(item["name"]),
            url=url,
            consumer_key=str(item["consumer_key"]),
            shared_secret=str(item["shared_secret"]),
            privacy_level=str(item.get("privacy_level", "anonymous")),
            domain=item.get("domain"),
            custom_fields={str(k): str(v) for k, v in custom.items()},
            tool_id=existing.id if existing is not None else None,
        )
        result.external_tools.append(tool.summary())


async def _load_lti_keys(session: Any, items: list[Any], settings: Settings) -> list[dict[str, Any]]:
    """LTI 1.3 keys (by ``client_id``, else by ``name``), each installed in the account unless
    ``install_in_account = false``, and in the courses whose ids ``courses`` lists."""
    loaded = []
    for item in items:
        jwk = item.get("public_jwk")
        if jwk is not None and not isinstance(jwk, dict):
            raise SeedError("public_jwk must be a table")
        custom = item.get("custom_fields", {})
        if not isinstance(custom, dict):
            raise SeedError("custom_fields must be a table")
        courses = item.get("courses", [])
        if not isinstance(courses, list) or not all(isinstance(c, int) for c in courses):
            raise SeedError("courses must be a list of course ids")
        config = lti_keys.build_tool_configuration(
            title=str(item["name"]),
            initiation_url=str(item["initiation_url"]),
            target_link_uri=str(item["target_link_uri"]),
            public_jwk=lti_keys.check_public_jwk(jwk) if jwk is not None else None,
            public_jwk_url=item.get("public_jwk_url"),
            scopes=_str_list(item, "scopes"),
            placements=_str_list(item, "placements") or ["course_navigation"],
            custom_fields={str(k): str(v) for k, v in custom.items()},
            privacy_level=str(item.get("privacy_level", "public")),
        )
        client_id = item.get("client_id")
        key, tools = await lti_keys.upsert_lti_key(
            session,
            name=str(item["name"]),
            redirect_uris=_str_list(item, "redirect_uris"),
            tool_configuration=config,
            secret_key=settings.resolved_secret_key,
            client_id=str(client_id) if client_id is not None else None,
            in_account=bool(item.get("install_in_account", True)),
            course_ids=courses,
        )
        loaded.append(
            {
                "client_id": key.client_id,
                "name": key.name,
                "deployments": [
                    {
                        "tool_id": tool.id,
                        "course_id": tool.course_id,
                        "deployment_id": await lti_keys.tool_deployment_id(session, tool),
                    }
                    for tool in tools
                ],
                **lti_keys.platform_urls(settings.public_url),
            }
        )
    return loaded


def load_file(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise SeedError(f"cannot read {path}: {exc.strerror}") from exc
