"""Who is calling the Canvas API: the Bearer token check of spec 7.2, on the hot path.

Every API call runs it, so it is one indexed SELECT (token, user, developer key and the root
account together) through ``core.fastread``, and the answer is a few frozen records rather than
ORM entities (building three entities cost more than the read). It reads the database on every
call, never a cache: a token revoked or a key deactivated on any instance is refused at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update

from lmsauth.canvas.models import AccessToken, Account, DeveloperKey, User
from lmsauth.canvas.people import USER_IS_USABLE
from lmsauth.canvas.tokens import LAST_USED_GRANULARITY, key_usable
from lmsauth.core import clock, secrets
from lmsauth.core.db import Database
from lmsauth.core.fastread import ReadQuery

MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True, slots=True)
class BearerToken:
    id: int
    scopes: list[str]
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class BearerUser:
    """The caller's user: what ``users#api_show`` needs (``canvas.api.user_profile``)."""

    id: int
    name: str
    sortable_name: str
    short_name: str
    email: str | None
    locale: str | None
    avatar_url: str | None
    is_admin: bool
    uuid: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BearerKey:
    id: int
    require_scopes: bool
    workflow_state: str
    binding_state: str
    account_id: int | None


@dataclass(frozen=True, slots=True)
class Bearer:
    token: BearerToken
    user: BearerUser
    key: BearerKey


_ROOT_ACCOUNT_ID = select(Account.id).order_by(Account.id).limit(1).scalar_subquery()

_LOOKUP = ReadQuery(
    select(
        AccessToken.id,
        AccessToken.scopes,
        AccessToken.last_used_at,
        AccessToken.workflow_state,
        AccessToken.expires_at,
        AccessToken.permanent_expires_at,
        User.id,
        User.name,
        User.sortable_name,
        User.short_name,
        User.email,
        User.locale,
        User.avatar_url,
        User.is_admin,
        User.uuid,
        User.created_at,
        DeveloperKey.id,
        DeveloperKey.require_scopes,
        DeveloperKey.workflow_state,
        DeveloperKey.binding_state,
        DeveloperKey.account_id,
        DeveloperKey.auto_expire_tokens,
        _ROOT_ACCOUNT_ID,
    )
    .join(User, User.id == AccessToken.user_id)
    .join(DeveloperKey, DeveloperKey.id == AccessToken.developer_key_id)
    .where(AccessToken.token_digest == bindparam("digest"), USER_IS_USABLE)
)


async def authenticate(db: Database, presented: str, *, allow_soft_expired: bool = False) -> Bearer | None:
    """Spec 7.2: the token, if it may be used for API access now, with its user and key.

    Refused: unknown, revoked (``workflow_state``), past its permanent expiry, past its 1-hour
    expiry when the key expires tokens (unless ``allow_soft_expired``: a token may still revoke
    itself), a user who is deleted or suspended (``people.USER_IS_USABLE``, in the SELECT
    itself), and a key that is inactive, unbound or another account's.
    """
    if len(presented) > MAX_TOKEN_LENGTH:
        return None
    row = await db.reads.one(_LOOKUP, digest=secrets.digest(presented))
    if row is None:
        return None
    (
        token_id, scopes, last_used_at, token_state, expires_at, permanent_expires_at,
        user_id, name, sortable_name, short_name, email, locale, avatar_url, is_admin, uuid,
        user_created_at,
        key_id, require_scopes, key_state, binding_state, key_account_id, auto_expire_tokens,
        root_account,
    ) = row  # fmt: skip
    key = BearerKey(key_id, require_scopes, key_state, binding_state, key_account_id)
    now = clock.now()
    if (
        token_state != "active"
        or (permanent_expires_at is not None and permanent_expires_at <= now)
        or (not allow_soft_expired and auto_expire_tokens and expires_at is not None and expires_at <= now)
        or not key_usable(key, root_account)
    ):
        return None
    user = BearerUser(
        user_id, name, sortable_name, short_name, email, locale, avatar_url, is_admin, uuid, user_created_at
    )
    return Bearer(BearerToken(token_id, list(scopes), last_used_at), user, key)


def needs_touch(token: BearerToken) -> bool:
    """Canvas's ``used!`` records ``last_used_at`` at most once every 10 minutes."""
    return token.last_used_at is None or token.last_used_at + LAST_USED_GRANULARITY <= clock.now()


async def touch(db: Database, token: BearerToken) -> None:
    """Record the use (only when ``needs_touch``: a write is far dearer than the read)."""
    async with db.session(write=True) as session:
        await session.execute(
            update(AccessToken).where(AccessToken.id == token.id).values(last_used_at=clock.now())
        )
