"""The token endpoint's data for a code exchange and a refresh, on the driver.

``POST /login/oauth2/token`` with an authorization code or (canvas profile) a refresh token is
one read and one write transaction (``core.fastread``, ``core.fastwrite``), where the ORM took
eight to ten statements and ~3 ms of CPU (``benchmarks/ANALYSIS.md``):

- the read: the developer key the client names, the root account, the code or refresh token
  presented and its user (if usable), in one SELECT (a missing code or token is NULLs);
- the write: the claim of the code and the new token row, or the refresh of the token row,
  each a compare-and-set that changes nothing if another request (on any instance) got there
  first, committed before the endpoint answers.

The rules (which client, which errors, in which order) stay in ``canvas.oauth2``; this module
only reads and writes. The strict profile's refresh rotation (a family lock, grace periods)
and the rare grants stay on the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, bindparam, insert, select, update

from lmsauth.canvas import scopes as scope_rules
from lmsauth.canvas.models import AccessToken, Account, AuthorizationCode, DeveloperKey, User, global_id
from lmsauth.canvas.people import USER_IS_USABLE
from lmsauth.canvas.tokens import ACCESS_TOKEN_LIFETIME, PUBLIC_CLIENT_TOKEN_TTL
from lmsauth.core import clock, secrets
from lmsauth.core.db import Database
from lmsauth.core.fastread import ReadQuery
from lmsauth.core.fastwrite import Write, WriteQuery


@dataclass(frozen=True, slots=True)
class ClientKey:
    """What client authentication and the grants need of a developer key."""

    id: int
    name: str
    secret_digest: str
    client_type: str
    workflow_state: str
    binding_state: str
    account_id: int | None
    is_default: bool
    auto_expire_tokens: bool

    @property
    def public_client(self) -> bool:
        return self.client_type == "public"

    @property
    def active_client(self) -> bool:
        """``tokens.find_active_key``'s rule: active, and not the default key (no OAuth client)."""
        return self.workflow_state == "active" and not self.is_default


@dataclass(frozen=True, slots=True)
class TokenUser:
    """The token response's ``user`` (``tokens.user_json``)."""

    id: int
    name: str
    locale: str | None

    @property
    def global_id(self) -> int:
        return global_id(self.id)


@dataclass(frozen=True, slots=True)
class Code:
    id: int
    developer_key_id: int
    user_id: int
    scopes: list[str]
    purpose: str | None
    remember_access: bool
    redirect_uri: str | None
    code_challenge: str | None
    expires_at: datetime
    redeemed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RefreshRow:
    id: int
    developer_key_id: int
    user_id: int
    scopes: list[str]
    refresh_digest: str
    permanent_expires_at: datetime | None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Found(Generic[T]):
    """The key the client named (None: no such key) with the root account, and the code or
    token presented (None: unknown, or past its lifetime) with its user (None: not usable)."""

    key: ClientKey | None
    root_account: int | None
    grant: T | None
    user: TokenUser | None


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token row just committed, and its secrets (only their digests are stored)."""

    access_token: str | None
    refresh_token: str | None
    scopes: list[str]
    expires_at: datetime | None


_ROOT_ACCOUNT_ID = select(Account.id).order_by(Account.id).limit(1).scalar_subquery()
_KEY_COLUMNS = (
    DeveloperKey.id,
    DeveloperKey.name,
    DeveloperKey.secret_digest,
    DeveloperKey.client_type,
    DeveloperKey.workflow_state,
    DeveloperKey.binding_state,
    DeveloperKey.account_id,
    DeveloperKey.is_default,
    DeveloperKey.auto_expire_tokens,
    _ROOT_ACCOUNT_ID,
)
_USER_COLUMNS = (User.id, User.name, User.locale)

_CODE_LOOKUP = ReadQuery(
    select(
        *_KEY_COLUMNS,
        AuthorizationCode.id,
        AuthorizationCode.developer_key_id,
        AuthorizationCode.user_id,
        AuthorizationCode.scopes,
        AuthorizationCode.purpose,
        AuthorizationCode.remember_access,
        AuthorizationCode.redirect_uri,
        AuthorizationCode.code_challenge,
        AuthorizationCode.expires_at,
        AuthorizationCode.redeemed_at,
        *_USER_COLUMNS,
    )
    .select_from(DeveloperKey)
    .outerjoin(AuthorizationCode, AuthorizationCode.code_digest == bindparam("digest"))
    .outerjoin(User, and_(User.id == AuthorizationCode.user_id, USER_IS_USABLE))
    .where(DeveloperKey.id == bindparam("key_id"))
)

_REFRESH_LOOKUP = ReadQuery(
    select(
        *_KEY_COLUMNS,
        AccessToken.id,
        AccessToken.developer_key_id,
        AccessToken.user_id,
        AccessToken.scopes,
        AccessToken.refresh_digest,
        AccessToken.permanent_expires_at,
        *_USER_COLUMNS,
    )
    .select_from(DeveloperKey)
    .outerjoin(
        AccessToken,
        and_(AccessToken.refresh_digest == bindparam("digest"), AccessToken.workflow_state == "active"),
    )
    .outerjoin(User, and_(User.id == AccessToken.user_id, USER_IS_USABLE))
    .where(DeveloperKey.id == bindparam("key_id"))
)

_KEY_WIDTH = len(_KEY_COLUMNS)


def _key_and_user(row: tuple[Any, ...]) -> tuple[ClientKey, int | None, TokenUser | None]:
    key = ClientKey(*row[: _KEY_WIDTH - 1])
    user_id, name, locale = row[-3:]
    return key, row[_KEY_WIDTH - 1], None if user_id is None else TokenUser(user_id, name, locale)


async def find_code(db: Database, key_id: int | None, code: str | None) -> Found[Code]:
    """The client's key (``key_id`` None: no key can have the client id) and the code
    presented (spec 5.3), in one read."""
    if key_id is None:
        return Found(None, None, None, None)
    row = await db.reads.one(_CODE_LOOKUP, key_id=key_id, digest=secrets.digest(code) if code else None)
    if row is None:
        return Found(None, None, None, None)
    key, root_account, user = _key_and_user(row)
    found = Code(*row[_KEY_WIDTH:-3]) if row[_KEY_WIDTH] is not None else None
    if found is not None and found.expires_at <= clock.now():
        found = None
    return Found(key, root_account, found, user)


async def find_refresh(db: Database, key_id: int | None, presented: str | None) -> Found[RefreshRow]:
    """The client's key and the active token whose refresh token was presented, in one read."""
    if key_id is None:
        return Found(None, None, None, None)
    digest = secrets.digest(presented) if presented else None
    row = await db.reads.one(_REFRESH_LOOKUP, key_id=key_id, digest=digest)
    if row is None:
        return Found(None, None, None, None)
    key, root_account, user = _key_and_user(row)
    found = RefreshRow(*row[_KEY_WIDTH:-3]) if row[_KEY_WIDTH] is not None else None
    if (
        found is not None
        and found.permanent_expires_at is not None
        and found.permanent_expires_at <= clock.now()
    ):
        found = None  # past its hard expiry
    return Found(key, root_account, found, user)


# ---------------------------------------------------------------- remembered userinfo grants

_REMEMBERED = ReadQuery(
    select(AccessToken.scopes, AccessToken.expires_at, AccessToken.permanent_expires_at).where(
        AccessToken.user_id == bindparam("user_id"),
        AccessToken.developer_key_id == bindparam("key_id"),
        AccessToken.workflow_state == "active",
        AccessToken.remember_access.is_(True),
        AccessToken.purpose == bindparam("purpose"),
    )
)


async def remembered_userinfo(
    db: Database, *, key_id: int, key_name: str, user_id: int, purpose: str | None
) -> NewToken | None:
    """An active userinfo token the user asked us to remember (spec 4.1): auto-approval, and
    the answer to a code for the same grant (spec 5.3 step 5), which shows no token."""
    now = clock.now()
    for scopes, expires_at, permanent_expires_at in await db.reads.all(
        _REMEMBERED, user_id=user_id, key_id=key_id, purpose=purpose or key_name
    ):
        if (permanent_expires_at is None or permanent_expires_at > now) and scope_rules.is_userinfo(scopes):
            return NewToken(None, None, list(scopes), expires_at)
    return None


# ---------------------------------------------------------------- writes

_NEW_TOKEN_COLUMNS = (
    "user_id",
    "developer_key_id",
    "token_digest",
    "refresh_digest",
    "token_hint",
    "scopes",
    "purpose",
    "remember_access",
    "expires_at",
    "permanent_expires_at",
    "workflow_state",
    "created_at",
    "updated_at",
)
_TOKENS = AccessToken.__table__.c

_CLAIM_CODE = update(AuthorizationCode).where(
    AuthorizationCode.id == bindparam("code_id"), AuthorizationCode.redeemed_at.is_(None)
)
CLAIM_CODE = WriteQuery(_CLAIM_CODE.values(redeemed_at=bindparam("now")).returning(AuthorizationCode.id))
INSERT_TOKEN = WriteQuery(
    insert(AccessToken)
    .values({name: bindparam(name) for name in (*_NEW_TOKEN_COLUMNS, "authorization_code_id")})
    .returning(AccessToken.id)
)
_claimed = _CLAIM_CODE.values(redeemed_at=bindparam("now")).returning(AuthorizationCode.id).cte("claimed")
# PostgreSQL: the claim and the insert as one statement (one round trip, atomic by itself);
# nothing is inserted when the claim changed no row.
CLAIM_AND_INSERT_TOKEN = WriteQuery(
    insert(AccessToken)
    .from_select(
        [*_NEW_TOKEN_COLUMNS, "authorization_code_id"],
        select(*(bindparam(name, type_=_TOKENS[name].type) for name in _NEW_TOKEN_COLUMNS), _claimed.c.id),
    )
    .returning(AccessToken.id)
)
REVOKE_FROM_CODE = WriteQuery(
    update(AccessToken)
    .where(AccessToken.authorization_code_id == bindparam("code_id"))
    .values(workflow_state="deleted", updated_at=bindparam("now"))
)
REPLACE_TOKENS = WriteQuery(
    update(AccessToken)
    .where(AccessToken.user_id == bindparam("user_id"), AccessToken.developer_key_id == bindparam("key_id"))
    .values(workflow_state="deleted", updated_at=bindparam("now"))
)


def _refresh(*, rotating: bool) -> WriteQuery:
    """The refresh's compare-and-set. Only a rotating refresh (a public client's) sets
    ``refresh_digest`` and ``permanent_expires_at``: SQLite rewrites a unique index's entry for
    every column an UPDATE sets, changed or not, which was one WAL page of a refresh's ~5.5
    (``benchmarks/wal_pages.py``)."""
    values: dict[str, Any] = {
        "token_digest": bindparam("token_digest"),
        "token_hint": bindparam("token_hint"),
        "expires_at": bindparam("expires_at"),
        "updated_at": bindparam("now"),
    }
    if rotating:
        values |= {
            "refresh_digest": bindparam("refresh_digest"),
            "permanent_expires_at": bindparam("permanent_expires_at"),
        }
    return WriteQuery(
        update(AccessToken)
        .where(
            AccessToken.id == bindparam("token_id"),
            AccessToken.workflow_state == "active",
            AccessToken.refresh_digest == bindparam("presented_digest"),
        )
        .values(values)
        .returning(AccessToken.id)
    )


REFRESH = _refresh(rotating=False)
REFRESH_ROTATING = _refresh(rotating=True)


def _new_access(key: ClientKey, now: datetime) -> tuple[str, dict[str, Any]]:
    """A new access token and the columns that store it (``tokens._new_access``)."""
    token = secrets.canvas_slug(64)
    expires_at = now + ACCESS_TOKEN_LIFETIME if key.auto_expire_tokens else None
    return token, {"token_digest": secrets.digest(token), "token_hint": token[:5], "expires_at": expires_at}


async def revoke_tokens_from_code(db: Database, code_id: int) -> None:
    """A code presented again: every token issued from it stops working (RFC 6749 4.1.2)."""
    await db.writes.run(Write(REVOKE_FROM_CODE, {"code_id": code_id, "now": clock.now()}))


async def claim_code(db: Database, code: Code) -> bool:
    """Mark the code redeemed; False when another request redeemed it first (any instance)."""
    return (
        await db.writes.run(Write(CLAIM_CODE, {"code_id": code.id, "now": clock.now()}, required=True))
        is not None
    )


async def issue_from_code(
    db: Database, key: ClientKey, code: Code, user_id: int, *, replace_tokens: bool
) -> NewToken | None:
    """Claim the code and store a new token of its grant, in one transaction; None (and
    nothing written) when another request redeemed the code first."""
    now = clock.now()
    access, access_columns = _new_access(key, now)
    refresh = secrets.canvas_slug(64)
    token = {
        "user_id": user_id,
        "developer_key_id": key.id,
        "refresh_digest": secrets.digest(refresh),
        "scopes": list(code.scopes),
        "purpose": code.purpose or key.name,
        "remember_access": code.remember_access,
        "permanent_expires_at": now + PUBLIC_CLIENT_TOKEN_TTL if key.public_client else None,
        "workflow_state": "active",
        "created_at": now,
        "updated_at": now,
        **access_columns,
    }
    claim = Write(CLAIM_CODE, {"code_id": code.id, "now": now}, required=True)
    insert_token = Write(INSERT_TOKEN, {**token, "authorization_code_id": code.id})
    if replace_tokens:  # Canvas's replace_tokens: the user's other tokens of this key go
        replace = Write(REPLACE_TOKENS, {"user_id": user_id, "key_id": key.id, "now": now})
        row = await db.writes.run(claim, replace, insert_token)
    elif db.writes.one_round_trip_statements:
        row = await db.writes.run(Write(CLAIM_AND_INSERT_TOKEN, {**token, "code_id": code.id, "now": now}))
    else:
        row = await db.writes.run(claim, insert_token)
    if row is None:
        return None
    return NewToken(access, refresh, list(code.scopes), access_columns["expires_at"])


async def refresh_access(db: Database, key: ClientKey, token: RefreshRow) -> NewToken | None:
    """Spec 5.5: a new access token on the same row, the old one refused at once; public
    clients also get a new refresh token and another 120 minutes. None (nothing written) when
    the token was revoked or refreshed meanwhile."""
    now = clock.now()
    access, columns = _new_access(key, now)
    params = {**columns, "token_id": token.id, "presented_digest": token.refresh_digest, "now": now}
    new_refresh = secrets.canvas_slug(64) if key.public_client else None
    if new_refresh is None:
        refreshed = Write(REFRESH, params, required=True)
    else:
        params |= {
            "refresh_digest": secrets.digest(new_refresh),
            "permanent_expires_at": now + PUBLIC_CLIENT_TOKEN_TTL,
        }
        refreshed = Write(REFRESH_ROTATING, params, required=True)
    if await db.writes.run(refreshed) is None:
        return None
    return NewToken(access, new_refresh, list(token.scopes), columns["expires_at"])
