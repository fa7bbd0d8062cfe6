"""Developer keys, authorization codes and access tokens: the state behind the OAuth2 flow.

Lifetimes (spec 5.9): codes 10 minutes and single use; access tokens 1 hour and renewable by
refresh; public clients' tokens a rolling 120 minutes. Every decision reads ``core.clock``.
The strict profile rotates refresh tokens instead: each refresh is a new row of the grant's
family, and a used refresh token is kept (as ``refresh_used_at``) to recognise its reuse.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import CursorResult, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

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
from lmsauth.core.db import lock_for_transaction, row_id

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


def key_row_id(raw_client_id: str | None) -> int | None:
    """The developer key id a client id names (its global or local id), if it can be one."""
    client_id = parse_client_id(raw_client_id)
    return None if client_id is None else row_id(local_id(client_id))


async def find_active_key(session: AsyncSession, raw_client_id: str | None) -> DeveloperKey | None:
    key_id = key_row_id(raw_client_id)
    key = await session.get(DeveloperKey, key_id) if key_id is not None else None
    # The default key ("User-Generated") holds people's manual tokens: it is no OAuth client.
    if key is None or key.workflow_state != "active" or key.is_default:
        return None
    return key


async def root_account_id(session: AsyncSession) -> int | None:
    """The domain root account: this server serves one, the first account created."""
    return await session.scalar(select(Account.id).order_by(Account.id).limit(1))


_ROOT_ACCOUNT_ID = select(Account.id).order_by(Account.id).limit(1).scalar_subquery()


class KeyState(Protocol):
    """What decides whether a developer key may be used (a ``DeveloperKey`` row, or the
    record ``canvas.bearer`` reads on the hot path)."""

    @property
    def workflow_state(self) -> str: ...
    @property
    def binding_state(self) -> str: ...
    @property
    def account_id(self) -> int | None: ...


def key_usable(key: KeyState, root_account: int | None) -> bool:
    """Active, bound "on", and owned by the root account or global (spec 2.1, 2.2)."""
    return (
        key.workflow_state == "active"
        and key.binding_state == "on"
        and (key.account_id is None or key.account_id == root_account)
    )


class SecretHolder(Protocol):
    @property
    def secret_digest(self) -> str: ...


def client_secret_matches(key: SecretHolder, presented: str | None) -> bool:
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


async def _add_token(session: AsyncSession, key: DeveloperKey, now: datetime, **columns: Any) -> IssuedToken:
    """A new token row with fresh access and refresh secrets (only their digests are stored),
    flushed so that its id exists."""
    refresh = secrets.canvas_slug(64)
    row = AccessToken(refresh_digest=secrets.digest(refresh), created_at=now, updated_at=now, **columns)
    access = _new_access(row, key, now)
    session.add(row)
    await session.flush()
    return IssuedToken(row, access, refresh)


async def issue_manual_token(
    session: AsyncSession,
    *,
    key: DeveloperKey,
    user_id: int,
    purpose: str,
    scopes: list[str],
    permanent_expires_at: datetime | None,
    token: str | None = None,
) -> IssuedToken:
    """A person's own token on the default key (spec 11.2): no code, no 1-hour expiry (the
    default key does not expire its tokens), only ``permanent_expires_at`` if one was chosen.
    ``token`` gives the token text (a seed's, so that a reset restores the same token)."""
    issued = await _add_token(
        session,
        key,
        clock.now(),
        user_id=user_id,
        developer_key_id=key.id,
        scopes=scopes,
        purpose=purpose,
        permanent_expires_at=permanent_expires_at,
    )
    if token is not None:
        issued.row.token_digest = secrets.digest(token)
        issued.row.token_hint = token[:5]
        issued.access_token = token
        await session.flush()
    return issued


def regenerate_access(row: AccessToken, key: DeveloperKey) -> str:
    """Canvas's ``generate_token(true)``: a new access string on the same row; the old one is
    refused at once (only the new digest is kept)."""
    now = clock.now()
    row.updated_at = now
    return _new_access(row, key, now)


# ---------------------------------------------------------------- strict profile: rotation


def family_of(row: AccessToken) -> int:
    """The id that names ``row``'s family: its first row's (the first row has no family_id)."""
    return row.family_id if row.family_id is not None else row.id


def _in_family(family: Any, table: Any = AccessToken) -> Any:
    return or_(table.id == family, table.family_id == family)


async def find_refresh_row(session: AsyncSession, refresh_token: str) -> AccessToken | None:
    """The row of a refresh token in any state: an exchanged one must still be recognised."""
    row: AccessToken | None = await session.scalar(
        select(AccessToken).where(AccessToken.refresh_digest == secrets.digest(refresh_token))
    )
    return row


def refreshable(row: AccessToken) -> bool:
    """Active, its refresh token never exchanged, and not past its hard expiry."""
    now = clock.now()
    return row.workflow_state == "active" and row.refresh_used_at is None and not _hard_expired(row, now)


async def lock_family(session: AsyncSession, row: AccessToken) -> None:
    """Serialise every decision about one family until the transaction ends, on every
    instance, then read ``row`` again. Without it, on PostgreSQL a rotation and a revocation
    of the same family could each miss the other's new or changed rows (write skew); SQLite's
    writing transactions are serialised already."""
    await lock_for_transaction(session, f"canvas-token-family:{family_of(row)}")
    await session.refresh(row)


async def claim_refresh(session: AsyncSession, row: AccessToken) -> bool:
    """Mark the row's refresh token exchanged, which also ends its access token; False when
    another request exchanged (or revoked) it first. A compare-and-set on ``refresh_used_at``
    and the state, so two requests can never both rotate one refresh token."""
    now = clock.now()
    result = await session.execute(
        update(AccessToken)
        .where(
            AccessToken.id == row.id,
            AccessToken.refresh_used_at.is_(None),
            AccessToken.workflow_state == "active",
        )
        .values(refresh_used_at=now, workflow_state="deleted", updated_at=now)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def rotate_refresh_token(session: AsyncSession, row: AccessToken, key: DeveloperKey) -> IssuedToken:
    """A new row in ``row``'s family with a new access token and a new refresh token; the
    grant's scopes, purpose and code carry over (so code reuse still revokes it), and a public
    client's hard expiry rolls forward 120 minutes as in the canvas profile."""
    now = clock.now()
    return await _add_token(
        session,
        key,
        now,
        user_id=row.user_id,
        developer_key_id=row.developer_key_id,
        scopes=list(row.scopes),
        purpose=row.purpose,
        remember_access=row.remember_access,
        permanent_expires_at=now + PUBLIC_CLIENT_TOKEN_TTL if key.public_client else row.permanent_expires_at,
        authorization_code_id=row.authorization_code_id,
        family_id=family_of(row),
    )


async def family_is_live(session: AsyncSession, family: int) -> bool:
    """Whether any token of the family can still be used (it was not revoked as a whole)."""
    now = clock.now()
    found = await session.scalar(
        select(AccessToken.id)
        .where(
            _in_family(family),
            AccessToken.workflow_state == "active",
            or_(AccessToken.permanent_expires_at.is_(None), AccessToken.permanent_expires_at > now),
        )
        .limit(1)
    )
    return found is not None


async def rotated_since(session: AsyncSession, family: int, moment: datetime) -> bool:
    """Whether a refresh token of the family was exchanged after ``moment``."""
    found = await session.scalar(
        select(AccessToken.id).where(_in_family(family), AccessToken.refresh_used_at > moment).limit(1)
    )
    return found is not None


async def revoke_family(session: AsyncSession, family: int) -> None:
    """Every access and refresh token of the family stops working."""
    await session.execute(
        update(AccessToken)
        .where(_in_family(family), AccessToken.workflow_state != "deleted")
        .values(workflow_state="deleted", updated_at=clock.now())
    )


def _hard_expired(row: AccessToken, now: datetime) -> bool:
    return row.permanent_expires_at is not None and row.permanent_expires_at <= now


def _soft_expired(row: AccessToken, key: DeveloperKey, now: datetime) -> bool:
    return key.auto_expire_tokens and row.expires_at is not None and row.expires_at <= now


async def revoke(session: AsyncSession, token_id: int) -> None:
    await session.execute(
        update(AccessToken)
        .where(AccessToken.id == token_id)
        .values(workflow_state="deleted", updated_at=clock.now())
    )


async def revoke_grant(session: AsyncSession, row: AccessToken, *, whole_family: bool) -> None:
    """Revoke a token: that row (Canvas), or every token of its grant (the strict profile,
    RFC 7009 section 2.1), tokens issued in a rotation's grace period included."""
    if whole_family:
        await lock_family(session, row)
        await revoke_family(session, family_of(row))
    else:
        await revoke(session, row.id)


async def find_any(session: AsyncSession, presented: str, *, refresh_first: bool) -> AccessToken | None:
    """The row whose access or refresh token is ``presented``, in any state (RFC 7009's
    ``token_type_hint`` only says which to look up first)."""
    digest = secrets.digest(presented)
    columns = [AccessToken.token_digest, AccessToken.refresh_digest]
    for column in reversed(columns) if refresh_first else columns:
        row: AccessToken | None = await session.scalar(select(AccessToken).where(column == digest))
        if row is not None:
            return row
    return None


def _removable_token(now: datetime) -> Any:
    """Revoked or hard-expired rows, except an exchanged refresh token (strict profile) whose
    family still lives: presenting it again must still revoke the family."""
    live = aliased(AccessToken)
    family_lives = exists().where(
        _in_family(func.coalesce(AccessToken.family_id, AccessToken.id), live),
        live.workflow_state == "active",
        or_(live.permanent_expires_at.is_(None), live.permanent_expires_at > now),
    )
    return and_(
        or_(AccessToken.workflow_state == "deleted", AccessToken.permanent_expires_at <= now),
        or_(AccessToken.refresh_used_at.is_(None), ~family_lives),
    )


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
            delete(AccessToken).where(_removable_token(now)),
        ),
    ):
        result = await session.execute(statement)
        assert isinstance(result, CursorResult)
        counts[name] = result.rowcount
    return counts


class TokenUser(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def locale(self) -> str | None: ...
    @property
    def global_id(self) -> int: ...


def user_json(user: TokenUser) -> dict[str, Any]:
    """The ``user`` member of the token response (spec 5.7)."""
    return {
        "id": user.id,
        "name": user.name,
        "global_id": str(user.global_id),
        "effective_locale": user.locale or "en",
        "fake_student": False,
    }


def token_body(
    *,
    access_token: str | None,
    refresh_token: str | None,
    scopes: list[str],
    expires_at: datetime | None,
    user: TokenUser,
    auto_expire_tokens: bool,
) -> dict[str, Any]:
    """``Canvas::OAuth::Token#as_json``: userinfo tokens show no token at all."""
    userinfo = scope_rules.is_userinfo(scopes)
    body: dict[str, Any] = {
        "access_token": None if userinfo else access_token,
        "token_type": "Bearer",
        "user": user_json(user),
        "canvas_region": "unknown",
    }
    if refresh_token and not userinfo:
        body["refresh_token"] = refresh_token
    if expires_at is not None and auto_expire_tokens:
        body["expires_in"] = max(0, round((expires_at - clock.now()).total_seconds()))
    return body


def token_response(issued: IssuedToken, user: User, key: DeveloperKey) -> dict[str, Any]:
    """``token_body`` of a row the ORM just wrote."""
    return token_body(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        scopes=list(issued.row.scopes),
        expires_at=issued.row.expires_at,
        user=user,
        auto_expire_tokens=key.auto_expire_tokens,
    )
