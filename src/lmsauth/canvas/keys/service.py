"""Developer keys: creating, changing and listing them, shared by the CLI, seed files, the
Developer Keys API and the console.

Each function runs inside a caller's transaction and validates its input, raising
``AdminError`` with a message meant for the operator.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import scopes as scope_rules
from lmsauth.canvas.admin import AdminError, root_account
from lmsauth.canvas.models import AccessToken, DeveloperKey, local_id
from lmsauth.canvas.redirects import OUT_OF_BAND
from lmsauth.canvas.tokens import parse_client_id
from lmsauth.core import clock, secrets
from lmsauth.core.db import row_id, sync_id_sequence


def _validate_redirects(uris: list[str], legacy: str | None) -> None:
    for uri in [*uris, *([legacy] if legacy else [])]:
        if len(uri) > 4096:
            raise AdminError("a redirect URI is longer than 4096 characters")
        if uri == OUT_OF_BAND:
            continue
        try:
            parts = urlsplit(uri)
        except ValueError as exc:
            raise AdminError(f"not a URL: {uri}") from exc
        if not parts.scheme or not parts.netloc:
            raise AdminError(f"redirect URI must be absolute: {uri}")


async def save_developer_key(
    session: AsyncSession,
    *,
    name: str,
    redirect_uris: list[str],
    scopes: list[str] | None = None,
    require_scopes: bool = False,
    trusted: bool = False,
    client_type: str = "confidential",
    legacy_redirect_uri: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    active: bool = True,
    binding: str = "on",
    icon_url: str | None = None,
    email: str | None = None,
) -> tuple[DeveloperKey, str | None]:
    """Create (or, with a known ``client_id``, update) a key; returns the secret when one was set.

    The legacy ``redirect_uri`` that Canvas's lenient domain rule uses defaults to the first
    redirect URI, so ``--redirect-uri https://app.example`` also admits its subdomains.
    """
    scopes = list(dict.fromkeys(scopes or []))
    unknown = [scope for scope in scopes if not scope_rules.is_known(scope)]
    if unknown:
        raise AdminError(f"scopes cannot contain {', '.join(unknown)}")
    if not name.strip():
        raise AdminError("name must not be empty")
    if not redirect_uris:
        raise AdminError("at least one redirect URI is required")
    if client_type not in ("confidential", "public"):
        raise AdminError("client type must be confidential or public")
    if binding not in ("on", "off", "allow"):
        raise AdminError("binding must be on, off or allow")
    legacy = legacy_redirect_uri or next((u for u in redirect_uris if u != OUT_OF_BAND), None)
    _validate_redirects(redirect_uris, legacy)
    if client_secret is not None and len(client_secret) < 16:
        raise AdminError("a client secret must be at least 16 characters")
    key: DeveloperKey | None = None
    if client_id is not None:
        parsed = parse_client_id(client_id)
        if parsed is None or row_id(local_id(parsed)) is None:
            raise AdminError("client_id must be a positive integer below 2**31 (or a global id of it)")
        key = await session.get(DeveloperKey, local_id(parsed))
    secret = client_secret
    account = await root_account(session)
    if key is None:
        secret = secret or secrets.canvas_slug(64)
        key = DeveloperKey(secret_digest=secrets.digest(secret), account_id=account.id)
        if client_id is not None:
            key.id = local_id(parse_client_id(client_id) or 0)
        session.add(key)
    else:
        if secret is not None:
            key.secret_digest = secrets.digest(secret)
        if set(key.scopes) - set(scopes):
            # Canvas's ``invalidate_access_tokens_if_scopes_removed!`` (spec 2.1): removing any
            # scope from a key destroys all of its tokens, so none keeps a scope it lost.
            await session.execute(
                update(AccessToken)
                .where(AccessToken.developer_key_id == key.id)
                .values(workflow_state="deleted", updated_at=clock.now())
            )
    key.name = name.strip()
    key.redirect_uris = list(redirect_uris)
    key.redirect_uri = legacy
    key.scopes = scopes
    key.require_scopes = require_scopes
    key.trusted = trusted
    key.client_type = client_type
    key.workflow_state = "active" if active else "inactive"
    key.binding_state = binding
    key.icon_url = icon_url
    key.email = email
    await session.flush()
    if client_id is not None:
        await sync_id_sequence(session, DeveloperKey.__tablename__)
    return key, secret


async def list_developer_keys(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.scalars(select(DeveloperKey).order_by(DeveloperKey.id))
    return [row.summary() for row in rows]


async def set_developer_key_state(session: AsyncSession, client_id: str, state: str) -> DeveloperKey:
    parsed = parse_client_id(client_id)
    key_id = row_id(local_id(parsed)) if parsed is not None else None
    key = await session.get(DeveloperKey, key_id) if key_id is not None else None
    if key is None:
        raise AdminError(f"no developer key with client_id {client_id}")
    key.workflow_state = state
    await session.flush()
    return key
