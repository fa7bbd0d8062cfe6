"""Developer keys, authorization codes and access tokens: the state behind the OAuth2 flow.

Lifetimes (spec 5.9): codes 10 minutes and single use; access tokens 1 hour and renewable by
refresh; public clients' tokens a rolling 120 minutes. Every decision reads ``core.clock``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import scopes as scope_rules
from lmsauth.canvas.models import (
    AccessToken,
    Account,
    AuthorizationCode,
    BrowserSession,
    DeveloperKey,
    User,
    local_id,
)
from lmsauth.core import clock, secrets
from lmsauth.core.db import row_id

ACCESS_TOKEN_LIFETIME = timedelta(hours=1)
CODE_LIFETIME = timedelta(minutes=10)
PUBLIC_CLIENT_TOKEN_TTL = timedelta(minutes=120)
LAST_USED_GRANULARITY = timedelta(minutes=10)
MAX_CLIENT_ID = 2**63 - 1


def parse_client_id(raw: str | None) -> int | None:
    """Canvas accepts only an integer below 64 bits; anything else is an unknown client."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_CLIENT_ID else None


async def find_active_key(session: AsyncSession, raw_client_id: str | None) -> DeveloperKey | None:
    client_id = parse_client_id(raw_client_id)
    if client_id is None:
        return None
    key_id = row_id(local_id(client_id))
    key = await session.get(DeveloperKey, key_id) if key_id is not None else None
    if key is None or key.workflow_state != "active":
        return None
    return key


async def root_account_id(session: AsyncSession) -> int | None:
    """The domain root account: this server serves one, the first account created."""
    return await session.scalar(select(Account.id).order_by(Account.id).limit(1))


_ROOT_ACCOUNT_ID = select(Account.id).order_by(Account.id).limit(1).scalar_subquery()


def key_usable(key: DeveloperKey, root_account: int | None) -> bool:
    """Active, bound "on", and owned by the root account or global (spec 2.1, 2.2)."""
    return (
        key.workflow_state == "active"
        and key.binding_state == "on"
        and (key.account_id is None or key.account_id == root_account)
    )


def client_secret_matches(key: DeveloperKey, presented: str | None) -> bool:
    return presented is not None and secrets.same(secrets.digest(presented), key.secret_digest)


def pkce_matches(challenge: str, verifier: str) -> bool:
    """RFC 7636 section 4.6, S256: ``BASE64URL(SHA256(verifier)) == challenge``."""
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return secrets.same(computed.decode(), challenge)


async def issue_code(
    session: AsyncSession,
    *,
    key: DeveloperKey,
    user_id: int,
    pending: dict[str, Any],
    remember_access: bool = False,
) -> str:
    code = secrets.hex_token(64)
    now = clock.now()
    session.add(
        AuthorizationCode(
            code_digest=secrets.digest(code),
            developer_key_id=key.id,
            user_id=user_id,
            scopes=list(pending.get("scopes", [])),
            purpose=pending.get("purpose"),
            remember_access=remember_access,
            redirect_uri=pending.get("redirect_uri"),
            code_challenge=pending.get("code_challenge"),
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
    )
    await session.flush()
    return code


async def find_code(session: AsyncSession, code: str) -> AuthorizationCode | None:
    row = await session.scalar(
        select(AuthorizationCode).where(AuthorizationCode.code_digest == secrets.digest(code))
    )
    if row is None or row.expires_at <= clock.now():
        return None
    return row


async def claim_code(session: AsyncSession, row: AuthorizationCode) -> bool:
    """Mark the code redeemed; False when another request redeemed it first (any instance)."""
    result = await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == row.id, AuthorizationCode.redeemed_at.is_(None))
        .values(redeemed_at=clock.now())
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def revoke_tokens_from_code(session: AsyncSession, code_id: int) -> None:
    await session.execute(
        update(AccessToken)
        .where(AccessToken.authorization_code_id == code_id)
        .values(workflow_state="deleted", updated_at=clock.now())
    )


@dataclass
class IssuedToken:
    row: AccessToken
    access_token: str | None
    refresh_token: str | None


def _new_access(row: AccessToken, key: DeveloperKey, now: datetime) -> str:
    token = secrets.canvas_slug(64)
    row.token_digest = secrets.digest(token)
    row.token_hint = token[:5]
    row.expires_at = now + ACCESS_TOKEN_LIFETIME if key.auto_expire_tokens else None
    return token


async def issue_token(
    session: AsyncSession,
    *,
    key: DeveloperKey,
    user_id: int,
    scopes: list[str],
    purpose: str | None,
    remember_access: bool,
    code_id: int | None,
    replace_tokens: bool,
) -> IssuedToken:
    now = clock.now()
    if replace_tokens:
        await session.execute(
            update(AccessToken)
            .where(AccessToken.user_id == user_id, AccessToken.developer_key_id == key.id)
            .values(workflow_state="deleted", updated_at=now)
        )
    refresh = secrets.canvas_slug(64)
    row = AccessToken(
        user_id=user_id,
        developer_key_id=key.id,
        refresh_digest=secrets.digest(refresh),
        scopes=scopes,
        purpose=purpose or key.name,
        remember_access=remember_access,
        permanent_expires_at=now + PUBLIC_CLIENT_TOKEN_TTL if key.public_client else None,
        authorization_code_id=code_id,
        created_at=now,
        updated_at=now,
    )
    access = _new_access(row, key, now)
    session.add(row)
    await session.flush()
    return IssuedToken(row, access, refresh)


async def find_by_refresh(session: AsyncSession, refresh_token: str) -> AccessToken | None:
    row = await session.scalar(
        select(AccessToken).where(
            AccessToken.refresh_digest == secrets.digest(refresh_token),
            AccessToken.workflow_state == "active",
        )
    )
    if row is None or _hard_expired(row, clock.now()):
        return None
    return row


async def refresh_token(session: AsyncSession, row: AccessToken, key: DeveloperKey) -> IssuedToken:
    """A new access string on the same row; the old one stops working at once. Public
    clients also get a new refresh token and another 120 minutes (spec 5.5)."""
    now = clock.now()
    access = _new_access(row, key, now)
    new_refresh = None
    if key.public_client:
        new_refresh = secrets.canvas_slug(64)
        row.refresh_digest = secrets.digest(new_refresh)
        row.permanent_expires_at = now + PUBLIC_CLIENT_TOKEN_TTL
    row.updated_at = now
    await session.flush()
    return IssuedToken(row, access, new_refresh)


def _hard_expired(row: AccessToken, now: datetime) -> bool:
    return row.permanent_expires_at is not None and row.permanent_expires_at <= now


def _soft_expired(row: AccessToken, key: DeveloperKey, now: datetime) -> bool:
    return key.auto_expire_tokens and row.expires_at is not None and row.expires_at <= now


@dataclass
class Bearer:
    token: AccessToken
    user: User
    key: DeveloperKey


async def authenticate(
    session: AsyncSession, token: str, *, allow_soft_expired: bool = False
) -> Bearer | None:
    """Spec 7.2: the token's row, usable for API access, with its user and key."""
    if len(token) > 256:
        return None
    # The root account comes in the same statement (a scalar subquery): one round trip to
    # the database per API call instead of two, and the same snapshot for both answers.
    result = await session.execute(
        select(AccessToken, User, DeveloperKey, _ROOT_ACCOUNT_ID)
        .join(User, User.id == AccessToken.user_id)
        .join(DeveloperKey, DeveloperKey.id == AccessToken.developer_key_id)
        .where(AccessToken.token_digest == secrets.digest(token))
    )
    found = result.first()
    if found is None:
        return None
    row, user, key, root_account = found
    now = clock.now()
    if (
        row.workflow_state != "active"
        or user.workflow_state == "deleted"
        or _hard_expired(row, now)
        or (not allow_soft_expired and _soft_expired(row, key, now))
        or not key_usable(key, root_account)
    ):
        return None
    return Bearer(row, user, key)


async def touch(session: AsyncSession, row: AccessToken) -> None:
    """Canvas's ``used!``: ``last_used_at`` at most once every 10 minutes."""
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        await session.execute(update(AccessToken).where(AccessToken.id == row.id).values(last_used_at=now))


async def revoke(session: AsyncSession, row: AccessToken) -> None:
    await session.execute(
        update(AccessToken)
        .where(AccessToken.id == row.id)
        .values(workflow_state="deleted", updated_at=clock.now())
    )


async def remembered_userinfo_token(
    session: AsyncSession, *, key: DeveloperKey, user_id: int, purpose: str | None
) -> AccessToken | None:
    """An active userinfo token the user asked us to remember (spec 4.1): auto-approval."""
    rows = await session.scalars(
        select(AccessToken).where(
            AccessToken.user_id == user_id,
            AccessToken.developer_key_id == key.id,
            AccessToken.workflow_state == "active",
            AccessToken.remember_access.is_(True),
            AccessToken.purpose == (purpose or key.name),
        )
    )
    now = clock.now()
    for row in rows:
        if not _hard_expired(row, now) and scope_rules.is_userinfo(row.scopes):
            return row
    return None


async def remove_expired(session: AsyncSession) -> dict[str, int]:
    """The periodic clean-up: rows that can never be used again."""
    now = clock.now()
    counts: dict[str, int] = {}
    for name, statement in (
        (
            "authorization_codes",
            delete(AuthorizationCode).where(AuthorizationCode.expires_at <= now),
        ),
        ("browser_sessions", delete(BrowserSession).where(BrowserSession.expires_at <= now)),
        (
            "access_tokens",
            delete(AccessToken).where(
                or_(
                    AccessToken.workflow_state == "deleted",
                    AccessToken.permanent_expires_at <= now,
                )
            ),
        ),
    ):
        result = await session.execute(statement)
        assert isinstance(result, CursorResult)
        counts[name] = result.rowcount
    return counts


def user_json(user: User) -> dict[str, Any]:
    """The ``user`` member of the token response (spec 5.7)."""
    return {
        "id": user.id,
        "name": user.name,
        "global_id": str(user.global_id),
        "effective_locale": user.locale or "en",
        "fake_student": False,
    }


def token_response(issued: IssuedToken, user: User, key: DeveloperKey) -> dict[str, Any]:
    """``Canvas::OAuth::Token#as_json``: userinfo tokens show no token at all."""
    row = issued.row
    userinfo = scope_rules.is_userinfo(row.scopes)
    body: dict[str, Any] = {
        "access_token": None if userinfo else issued.access_token,
        "token_type": "Bearer",
        "user": user_json(user),
        "canvas_region": "unknown",
    }
    if issued.refresh_token and not userinfo:
        body["refresh_token"] = issued.refresh_token
    if row.expires_at is not None and key.auto_expire_tokens:
        body["expires_in"] = max(0, round((row.expires_at - clock.now()).total_seconds()))
    return body
