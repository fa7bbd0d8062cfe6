"""Seed files: accounts, users and developer keys from TOML, loaded idempotently.

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
from lmsauth.canvas.models import DeveloperKey
from lmsauth.core.db import Database


class SeedError(ValueError):
    """A seed file that cannot be loaded; nothing of it was written."""


@dataclass
class SeedResult:
    users: list[dict[str, Any]] = field(default_factory=list)
    developer_keys: list[dict[str, Any]] = field(default_factory=list)


def demo_seed_text() -> str:
    return resources.files("lmsauth").joinpath("demo_seed.toml").read_text()


def parse(text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SeedError(f"not valid TOML: {exc}") from exc
    unknown = set(data) - {"account", "users", "developer_keys"}
    if unknown:
        raise SeedError(f"unknown sections: {', '.join(sorted(unknown))}")
    return data


def _str_list(item: dict[str, Any], name: str) -> list[str]:
    value = item.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SeedError(f"{name} must be a list of strings")
    return value


async def load(db: Database, text: str) -> SeedResult:
    """Apply a seed in one transaction: all of it, or (on error) none of it."""
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
                key, secret = await admin.save_developer_key(
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
                )
                entry = key.summary()
                if secret is not None:
                    entry["client_secret"] = secret
                result.developer_keys.append(entry)
    except KeyError as exc:
        raise SeedError(f"missing field {exc.args[0]}") from exc
    except admin.AdminError as exc:
        raise SeedError(str(exc)) from exc
    return result


def load_file(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise SeedError(f"cannot read {path}: {exc.strerror}") from exc
