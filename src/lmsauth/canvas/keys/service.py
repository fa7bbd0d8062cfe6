"""Developer keys: creating, changing and listing them, shared by the CLI, seed files, the
Developer Keys API and the console.

Each function runs inside a caller's transaction and validates its input, raising
``AdminError`` with a message meant for the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import scopes as scope_rules
from lmsauth.canvas.admin import AdminError, root_account
from lmsauth.canvas.models import AccessToken, Account, DeveloperKey, global_id, local_id
from lmsauth.canvas.redirects import OUT_OF_BAND
from lmsauth.canvas.tokens import parse_client_id
from lmsauth.core import clock, sealing, secrets
from lmsauth.core.db import row_id, sync_id_sequence

MAX_REDIRECT_URIS = 100
MAX_SCOPES = 1000
_LIMITS = {"name": 255, "email": 255, "icon_url": 1024, "vendor_code": 255, "notes": 65535}
BINDING_STATES = ("off", "on", "allow")
AUDIENCES = ("internal", "external")
SECRET_PURPOSE = b"lmsauth canvas developer key secrets"


class KeyInvalid(AdminError):
    """A key's field fails Canvas's model validation; ``kind`` is Rails' error type."""

    def __init__(self, attribute: str, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.attribute = attribute
        self.message = message
        self.kind = kind or message


def check_redirects(uris: list[str], legacy: str | None) -> None:
    """Each redirect URI is an absolute URL of at most 4096 characters (spec 2.1)."""
    if len(uris) > MAX_REDIRECT_URIS:
        raise KeyInvalid("redirect_uris", f"at most {MAX_REDIRECT_URIS} redirect URIs are allowed")
    for uri in [*uris, *([legacy] if legacy else [])]:
        attribute = "redirect_uris" if uri in uris else "redirect_uri"
        if len(uri) > 4096:
            raise KeyInvalid(attribute, "a redirect URI is longer than 4096 characters")
        if uri == OUT_OF_BAND:
            continue
        try:
            parts = urlsplit(uri)
        except ValueError as exc:
            raise KeyInvalid(attribute, f"not a URL: {uri}") from exc
        if not parts.scheme or not parts.netloc:
            raise KeyInvalid(attribute, f"redirect URI must be absolute: {uri}")


def check_scopes(scopes: list[str]) -> list[str]:
    """Scopes without duplicates; an unknown one is Canvas's "cannot contain" (spec 2.1)."""
    scopes = list(dict.fromkeys(scopes))
    if len(scopes) > MAX_SCOPES:
        raise KeyInvalid("scopes", f"at most {MAX_SCOPES} scopes are allowed")
    unknown = [scope for scope in scopes if not scope_rules.is_known(scope)]
    if unknown:
        raise KeyInvalid("scopes", f"cannot contain {', '.join(unknown)}")
    return scopes


async def _revoke_tokens_if_scopes_removed(
    session: AsyncSession, key: DeveloperKey, scopes: list[str]
) -> None:
    """Canvas's ``invalidate_access_tokens_if_scopes_removed!`` (spec 2.1, 11.3): removing any
    scope from a key destroys all of its tokens, so none keeps a scope it lost."""
    if not set(key.scopes) - set(scopes):
        return
    await session.execute(
        update(AccessToken)
        .where(AccessToken.developer_key_id == key.id, AccessToken.workflow_state != "deleted")
        .values(workflow_state="deleted", updated_at=clock.now())
    )


def _set_secret(key: DeveloperKey, secret: str, secret_key: str | None) -> None:
    """The digest checks the secret; the sealed copy (when the server key is at hand) is what
    admins read back as ``api_key``. Without it a stale sealed copy must not survive."""
    key.secret_digest = secrets.digest(secret)
    key.secret_sealed = sealing.seal(secret_key, SECRET_PURPOSE, secret.encode()) if secret_key else None


def api_key(key: DeveloperKey, secret_key: str) -> str | None:
    """The key's secret for an admin; ``None`` for a key whose secret predates sealing, or was
    sealed under another ``LMSAUTH_SECRET_KEY`` (the key still works: it is checked by digest)."""
    if key.secret_sealed is None:
        return None
    try:
        return sealing.unseal(secret_key, SECRET_PURPOSE, key.secret_sealed).decode()
    except sealing.UnsealError:
        return None


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
    secret_key: str | None = None,
) -> tuple[DeveloperKey, str | None]:
    """Create (or, with a known ``client_id``, update) a key; returns the secret when one was set.

    The legacy ``redirect_uri`` that Canvas's lenient domain rule uses defaults to the first
    redirect URI, so ``--redirect-uri https://app.example`` also admits its subdomains.
    With ``secret_key`` the secret is also kept sealed, for the Developer Keys API's ``api_key``.
    """
    try:
        scopes = check_scopes(scopes or [])
    except KeyInvalid as exc:
        raise AdminError(f"scopes {exc.message}") from exc
    if not name.strip():
        raise AdminError("name must not be empty")
    if not redirect_uris:
        raise AdminError("at least one redirect URI is required")
    if client_type not in ("confidential", "public"):
        raise AdminError("client type must be confidential or public")
    if binding not in ("on", "off", "allow"):
        raise AdminError("binding must be on, off or allow")
    legacy = legacy_redirect_uri or next((u for u in redirect_uris if u != OUT_OF_BAND), None)
    check_redirects(redirect_uris, legacy)
    if client_secret is not None and len(client_secret) < 16:
        raise AdminError("a client secret must be at least 16 characters")
    key: DeveloperKey | None = None
    if client_id is not None:
        parsed = parse_client_id(client_id)
        if parsed is None or row_id(local_id(parsed)) is None:
            raise AdminError("client_id must be a positive integer below 2**31 (or a global id of it)")
        key = await session.get(DeveloperKey, local_id(parsed))
        if key is not None and key.is_default:
            raise AdminError(f"client_id {client_id} is the User-Generated key of manual tokens")
    secret = client_secret
    account = await root_account(session)
    if key is None:
        secret = secret or secrets.canvas_slug(64)
        key = DeveloperKey(account_id=account.id)
        _set_secret(key, secret, secret_key)
        if client_id is not None:
            key.id = local_id(parse_client_id(client_id) or 0)
        session.add(key)
    else:
        if secret is not None:
            _set_secret(key, secret, secret_key)
        await _revoke_tokens_if_scopes_removed(session, key, scopes)
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
    """Every OAuth client; not the User-Generated key of manual tokens, which is no client."""
    rows = await session.scalars(
        select(DeveloperKey).where(DeveloperKey.is_default.is_(False)).order_by(DeveloperKey.id)
    )
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


# ---------------------------------------------------------------------------- the API and console


async def find_key(session: AsyncSession, raw_id: str) -> DeveloperKey | None:
    """The key a path names by its id (local or global); a deleted key is gone, and the
    User-Generated key of manual tokens is not an admin's to change."""
    parsed = parse_client_id(raw_id)
    key_id = row_id(local_id(parsed)) if parsed is not None else None
    key = await session.get(DeveloperKey, key_id) if key_id is not None else None
    return None if key is None or key.workflow_state == "deleted" or key.is_default else key


def check_changes(changes: dict[str, Any], *, drop_unknown_scopes: bool = False) -> dict[str, Any]:
    """Validate the fields an admin sets (Canvas's model validations), returning them tidied:
    blank ``icon_url`` and ``redirect_uri`` become null, scopes lose duplicates. On update
    Canvas intersects a non-LTI key's scopes with the known ones instead of refusing them
    (spec 11.1), which ``drop_unknown_scopes`` asks for."""
    tidy = dict(changes)
    for field, limit in _LIMITS.items():
        value = tidy.get(field)
        if isinstance(value, str) and len(value) > limit:
            raise KeyInvalid(field, f"is too long (maximum is {limit} characters)", "too_long")
    for field in ("icon_url", "redirect_uri", "client_credentials_audience"):
        if field in tidy and not (tidy[field] or "").strip():
            tidy[field] = None
    audience = tidy.get("client_credentials_audience")
    if audience is not None and audience not in AUDIENCES:
        raise KeyInvalid("client_credentials_audience", "inclusion")
    if "scopes" in tidy:
        if drop_unknown_scopes:
            tidy["scopes"] = [scope for scope in tidy["scopes"] if scope_rules.is_known(scope)]
        tidy["scopes"] = check_scopes(tidy["scopes"])
    if "redirect_uris" in tidy or "redirect_uri" in tidy:
        check_redirects(tidy.get("redirect_uris", []), tidy.get("redirect_uri"))
    return tidy


async def create_key(
    session: AsyncSession, changes: dict[str, Any], *, secret_key: str, user_id: int | None
) -> DeveloperKey:
    """A key made by an admin (API or console): as in Canvas, its account binding starts
    ``off``, so the key cannot be used until an admin turns it on (spec 2.2)."""
    fields = check_changes(changes)
    account = await root_account(session)
    key = DeveloperKey(
        account_id=account.id,
        user_id=user_id,
        name="",
        redirect_uris=[],
        scopes=[],
        binding_state="off",
        workflow_state="active",
    )
    _set_secret(key, secrets.canvas_slug(64), secret_key)
    for field, value in fields.items():
        setattr(key, field, value)
    session.add(key)
    await session.flush()
    return key


async def change_key(
    session: AsyncSession, key: DeveloperKey, changes: dict[str, Any], *, drop_unknown_scopes: bool
) -> None:
    """Update an admin's fields; removing a scope destroys the key's tokens (spec 11.3)."""
    fields = check_changes(changes, drop_unknown_scopes=drop_unknown_scopes)
    if "redirect_uris" in fields and "redirect_uri" not in fields:
        check_redirects(fields["redirect_uris"], key.redirect_uri)
    if "scopes" in fields:
        await _revoke_tokens_if_scopes_removed(session, key, fields["scopes"])
    for field, value in fields.items():
        setattr(key, field, value)
    key.updated_at = clock.now()
    await session.flush()


async def delete_key(session: AsyncSession, key: DeveloperKey) -> None:
    """Canvas's soft delete: the row stays as ``deleted`` and its tokens stop working at once,
    since only an active key's tokens are accepted (spec 11.3)."""
    key.workflow_state = "deleted"
    key.updated_at = clock.now()
    await session.flush()


async def set_binding(session: AsyncSession, key: DeveloperKey, state: str) -> None:
    """The key's binding to the root account (spec 2.2): only ``on`` lets it be used."""
    if state not in BINDING_STATES:
        raise KeyInvalid("workflow_state", "inclusion")
    key.binding_state = state
    key.updated_at = clock.now()
    await session.flush()


@dataclass(frozen=True, slots=True)
class TokenUse:
    """A key's live tokens: how many, and when one was last used."""

    count: int = 0
    last_used_at: datetime | None = None


async def token_use(session: AsyncSession, key_ids: list[int]) -> dict[int, TokenUse]:
    if not key_ids:
        return {}
    rows = await session.execute(
        select(AccessToken.developer_key_id, func.count(), func.max(AccessToken.last_used_at))
        .where(AccessToken.developer_key_id.in_(key_ids), AccessToken.workflow_state != "deleted")
        .group_by(AccessToken.developer_key_id)
    )
    return {key_id: TokenUse(count, last) for key_id, count, last in rows.all()}


def _listed(account: Account, *, inherited: bool) -> Any:
    """An account's keys, not deleted; with ``inherited``, the visible global (Site Admin)
    keys instead, as Canvas's ``?inherited=true``."""
    owner = (
        and_(DeveloperKey.account_id.is_(None), DeveloperKey.visible.is_(True))
        if inherited
        else DeveloperKey.account_id == account.id
    )
    return and_(owner, DeveloperKey.workflow_state != "deleted", DeveloperKey.is_default.is_(False))


async def account_keys(
    session: AsyncSession, account: Account, *, offset: int, limit: int, inherited: bool = False
) -> tuple[list[DeveloperKey], int]:
    """One page of an account's keys, newest first as Canvas lists them, and their total."""
    where = _listed(account, inherited=inherited)
    total = await session.scalar(select(func.count()).select_from(DeveloperKey).where(where))
    rows = await session.scalars(
        select(DeveloperKey).where(where).order_by(DeveloperKey.id.desc()).offset(offset).limit(limit)
    )
    return list(rows), int(total or 0)


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def binding_json(key: DeveloperKey, account: Account) -> dict[str, Any]:
    """Canvas's ``DeveloperKeyAccountBinding`` JSON. This server has one account, so a key has
    one binding, kept on the key: it shares the key's id and times."""
    return {
        "id": global_id(key.id),
        "account_id": global_id(account.id),
        "developer_key_id": global_id(key.id),
        "workflow_state": key.binding_state,
        "user_id": None,
        "created_at": _time(key.created_at),
        "updated_at": _time(key.updated_at),
    }


def developer_key_json(
    key: DeveloperKey, account: Account, use: TokenUse, secret: str | None
) -> dict[str, Any]:
    """Canvas's ``developer_key_json`` for an admin (spec 11.1), ``api_key`` included; an LTI
    key's configuration and public key (spec lti13.md 1.1)."""
    return {
        "id": global_id(key.id),
        "name": key.name or None,
        "created_at": _time(key.created_at),
        "updated_at": _time(key.updated_at),
        "workflow_state": key.workflow_state,
        "is_lti_key": key.is_lti_key,
        "email": key.email,
        "icon_url": key.icon_url,
        "notes": key.notes,
        "vendor_code": key.vendor_code,
        "account_name": account.name,
        "visible": key.visible,
        "scopes": list(key.scopes),
        "redirect_uri": key.redirect_uri,
        "redirect_uris": list(key.redirect_uris),
        "access_token_count": use.count,
        "last_used_at": _time(use.last_used_at),
        "test_cluster_only": False,
        "allow_includes": True,
        "require_scopes": key.require_scopes,
        "client_credentials_audience": key.client_credentials_audience,
        "api_key": secret,
        "tool_configuration": key.tool_configuration,
        "public_jwk": key.public_jwk,
        "public_jwk_url": key.public_jwk_url,
        "lti_registration": None,
        "is_lti_registration": False,
        "user_name": None,
        "user_id": key.user_id,
        "unified_tool_id": None,
        "developer_key_account_binding": binding_json(key, account),
    }
