"""Administrative operations on Canvas's data, shared by the CLI and seed files.

Each function runs inside a caller's transaction and validates its input, raising
``AdminError`` with a message meant for the operator.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import scopes as scope_rules
from lmsauth.canvas import sessions
from lmsauth.canvas.models import AccessToken, Account, DeveloperKey, Login, User, local_id
from lmsauth.canvas.redirects import OUT_OF_BAND
from lmsauth.canvas.tokens import parse_client_id
from lmsauth.core import clock, secrets
from lmsauth.core.db import row_id, sync_id_sequence

DEFAULT_ACCOUNT_NAME = "Site Admin"


class AdminError(ValueError):
    """Invalid input to an administrative operation."""


MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 255


def password_problem(password: str) -> str | None:
    """The one password rule (CLI, seed files, the Users and Logins APIs, the console):
    Canvas's default password policy, 8 to 255 characters. The Canvas error type it would
    report (``too_short``, ``too_long``), or None when the password is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "too_short"
    if len(password) > MAX_PASSWORD_LENGTH:
        return "too_long"
    return None


def check_password(password: str) -> None:
    problem = password_problem(password)
    if problem is not None:
        raise AdminError(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters ({problem})"
        )


async def root_account(session: AsyncSession, name: str | None = None) -> Account:
    """The server's root account, created on first use."""
    account = await session.scalar(select(Account).order_by(Account.id).limit(1))
    if account is None:
        account = Account(name=name or DEFAULT_ACCOUNT_NAME)
        session.add(account)
        await session.flush()
    elif name and account.name != name:
        account.name = name
    return account


def derived_names(name: str) -> tuple[str, str]:
    """Canvas's defaults for a name: the sortable name ("Last, First ...") and the short name."""
    parts = name.split()
    sortable = f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else name
    return sortable, name


async def upsert_user(
    session: AsyncSession,
    *,
    login: str,
    password: str,
    name: str,
    admin: bool = False,
    email: str | None = None,
    locale: str | None = None,
    avatar_url: str | None = None,
) -> tuple[User, bool]:
    """Create the user with this login, or bring an existing one in line; ``(user, created)``."""
    login = login.strip()
    if not login or len(login) > 255:
        raise AdminError("login must be 1 to 255 characters")
    if not password:
        # Seed files may keep short test passwords; people's passwords go through check_password.
        raise AdminError("password must not be empty")
    if not name.strip() or len(name) > 255:
        raise AdminError("name must be 1 to 255 characters")
    account = await root_account(session)
    existing = await session.scalar(
        select(Login).where(Login.account_id == account.id, Login.unique_id_normalized == login.lower())
    )
    sortable, short = derived_names(name.strip())
    if email is None and "@" in login:
        email = login
    if existing is not None:
        user = await session.get(User, existing.user_id)
        assert user is not None
        if not await secrets.verify_password_in_worker(existing.password_hash, password):
            existing.password_hash = await secrets.hash_password_in_worker(password)
        user.name, user.sortable_name, user.short_name = name.strip(), sortable, short
        user.is_admin, user.email, user.locale = admin, email, locale
        user.avatar_url = avatar_url
        return user, False
    user = User(
        name=name.strip(),
        sortable_name=sortable,
        short_name=short,
        is_admin=admin,
        email=email,
        locale=locale,
        avatar_url=avatar_url,
    )
    session.add(user)
    await session.flush()
    session.add(
        Login(
            user_id=user.id,
            account_id=account.id,
            unique_id=login,
            unique_id_normalized=login.lower(),
            password_hash=await secrets.hash_password_in_worker(password),
        )
    )
    await session.flush()
    return user, True


async def user_of_login(session: AsyncSession, login: str) -> User:
    """The (not deleted) user who signs in with ``login``."""
    account = await root_account(session)
    found = await session.scalar(
        select(Login).where(
            Login.account_id == account.id, Login.unique_id_normalized == login.strip().lower()
        )
    )
    user = await session.get(User, found.user_id) if found is not None else None
    if user is None or user.workflow_state == "deleted":
        raise AdminError(f"no user with login {login}")
    return user


async def suspend_logins(
    session: AsyncSession, user: User, suspended: bool, login_id: int | None = None
) -> None:
    """Suspend (or unsuspend) the user's logins, or only ``login_id``, as Canvas's
    ``user[event]=suspend`` and ``login[workflow_state]=suspended`` do. A user whose logins are
    all suspended cannot sign in, and their tokens, codes and refresh tokens stop working
    (``people.USER_IS_USABLE``); their browser sessions end. Unsuspending brings the tokens
    back, not the sessions."""
    before, after = ("active", "suspended") if suspended else ("suspended", "active")
    chosen = update(Login).where(Login.user_id == user.id, Login.workflow_state == before)
    if login_id is not None:
        chosen = chosen.where(Login.id == login_id)
    await session.execute(chosen.values(workflow_state=after))
    user.updated_at = clock.now()
    if suspended:
        await sessions.end_all_for_user(session, user.id)
    await session.flush()


async def set_user_suspended(session: AsyncSession, login: str, suspended: bool) -> User:
    """``suspend_logins`` for every login of the user who signs in with ``login``."""
    user = await user_of_login(session, login)
    await suspend_logins(session, user, suspended)
    return user


async def soft_delete_user(session: AsyncSession, user: User) -> None:
    """Canvas's soft delete: the user row stays, ``deleted``, and so do their logins;
    nothing of theirs works again and their browser sessions end."""
    user.workflow_state = "deleted"
    await session.execute(
        update(Login)
        .where(Login.user_id == user.id, Login.workflow_state != "deleted")
        .values(workflow_state="deleted")
    )
    await sessions.end_all_for_user(session, user.id)
    await session.flush()


async def delete_user(session: AsyncSession, login: str) -> User:
    """``soft_delete_user`` for the user who signs in with ``login``."""
    user = await user_of_login(session, login)
    await soft_delete_user(session, user)
    return user


def _validate_redirects(uris: list[str], legacy: str | None) -> None:
    from urllib.parse import urlsplit

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
