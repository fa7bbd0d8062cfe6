"""Manual tokens and the rules the API, the profile page, the CLI and seeds share.

- The default developer key (Canvas's ``DeveloperKey.default``, "User-Generated") is made on
  first need, under a lock so that two instances never make two. It never expires its tokens
  (``auto_expire_tokens`` false) and is no OAuth client (``tokens.find_active_key`` refuses it).
- A token's JSON is ``Api::V1::Token#token_json``: ``visible_token`` is the full token only in
  the answer that made (or regenerated) it, ``<hint>...`` afterwards, null for OAuth tokens.
- Input errors carry Canvas's own bodies (``tokens_controller.rb``): a bare array for
  ``render_error``, ``{"errors": {attribute: [...]}}`` for a model validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import tokens
from lmsauth.canvas.models import AccessToken, DeveloperKey, local_id
from lmsauth.core import clock, secrets
from lmsauth.core.db import Database, lock_for_transaction, row_id
from lmsauth.core.errors import WireError
from lmsauth.core.fastread import ReadQuery

DEFAULT_KEY_NAME = "User-Generated"
NO_APP = "No App"
HINT_LENGTH = 5
MAX_PURPOSE_LENGTH = 255  # Canvas's maximum_string_length
TRUTHY = frozenset({"1", "true", "t", "yes", "y", "on"})  # Canvas::Plugin.value_to_boolean


class ManualTokenError(Exception):
    """Bad input: Canvas's body and status for the API, a sentence for the page."""

    def __init__(self, body: Any, sentence: str, status: int = 400) -> None:
        super().__init__(sentence)
        self.body = body
        self.sentence = sentence
        self.status = status

    def wire(self) -> WireError:
        return WireError(self.status, self.body)


def _render_error(message: str, sentence: str | None = None) -> ManualTokenError:
    """``TokensController#render_error``: ``[{"message": ...}]``, 400."""
    return ManualTokenError([{"message": message}], sentence or message)


def _validation_error(attribute: str, kind: str, sentence: str) -> ManualTokenError:
    """A model validation, as Canvas renders ``@token.errors``."""
    return ManualTokenError(
        {"errors": {attribute: [{"attribute": attribute, "type": kind, "message": kind}]}}, sentence
    )


def missing_purpose() -> ManualTokenError:
    return _render_error("token[purpose] is missing", "Purpose is required.")


def check_purpose(purpose: str) -> str:
    """``validates :purpose, length: {minimum: 1, maximum: maximum_string_length}``."""
    if len(purpose) < 1:
        raise _validation_error("purpose", "too_short", "Purpose is required.")
    if len(purpose) > MAX_PURPOSE_LENGTH:
        raise _validation_error(
            "purpose", "too_long", f"Purpose must be at most {MAX_PURPOSE_LENGTH} characters."
        )
    return purpose


def parse_expiry(raw: str | None) -> datetime | None:
    """``token[expires_at]``: an ISO 8601 date-time (no offset means UTC) or a date (its
    midnight, UTC); blank means no expiry. Unreadable: Canvas's "Invalid expiration date
    format". In the past: refused too (Canvas would make a token that is dead at birth)."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        if len(text) == len("2025-01-31"):
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _render_error(
            "Invalid expiration date format", "The expiration date is not a date (use YYYY-MM-DD)."
        ) from None
    if moment <= clock.now():
        raise _render_error("Expiration date cannot be in the past", "The expiration date is in the past.")
    return moment


def check_scopes(key: DeveloperKey, requested: list[str]) -> list[str]:
    """``token[scopes][]``: ignored unless the default key enforces scopes (Canvas's doc),
    then each must be one of the key's (``must_only_include_valid_scopes``)."""
    if not key.require_scopes:
        return []
    scopes = list(dict.fromkeys(requested))
    if any(scope not in key.scopes for scope in scopes):
        raise _validation_error(
            "scopes",
            "requested scopes must match scopes on developer key",
            "Choose scopes from the list.",
        )
    return scopes


def cannot_regenerate_expired() -> ManualTokenError:
    message = "cannot regenerate an expired token without a new expiration date"
    return ManualTokenError(
        {"errors": {"message": message}}, "This token has expired: give it a new expiration date."
    )


_DEFAULT_KEY = (
    select(DeveloperKey).where(DeveloperKey.is_default.is_(True)).order_by(DeveloperKey.id).limit(1)
)


async def find_default_key(session: AsyncSession) -> DeveloperKey | None:
    key: DeveloperKey | None = await session.scalar(_DEFAULT_KEY)
    return key


async def default_key(session: AsyncSession) -> DeveloperKey:
    """The default key, made on first need (needs a writing session)."""
    key = await find_default_key(session)
    if key is not None:
        return key
    await lock_for_transaction(session, "canvas-default-developer-key")
    key = await find_default_key(session)
    if key is None:
        key = DeveloperKey(
            name=DEFAULT_KEY_NAME,
            account_id=None,  # a Site Admin key, as Canvas's
            secret_digest=secrets.digest(secrets.canvas_slug(64)),  # never shown: no OAuth client
            redirect_uris=[],
            scopes=[],
            auto_expire_tokens=False,
            is_default=True,
        )
        session.add(key)
        await session.flush()
    return key


def is_expired(row: AccessToken | ListedToken) -> bool:
    return row.permanent_expires_at is not None and row.permanent_expires_at <= clock.now()


def api_time(moment: datetime | None) -> str | None:
    """Canvas's API times: ISO 8601 in UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


@dataclass(frozen=True, slots=True)
class ListedToken:
    """A manual token's columns as ``token_json`` reads them, read straight from the driver for
    the API's list (``user_generated_page``) rather than loaded as an ``AccessToken``."""

    id: int
    user_id: int
    last_used_at: datetime | None
    purpose: str | None
    created_at: datetime
    updated_at: datetime
    scopes: list[str]
    remember_access: bool
    workflow_state: str
    real_user_id: int | None
    token_hint: str
    permanent_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class ListedKey:
    """The default key as ``token_json`` reads it: its name (the list holds its tokens only)."""

    name: str | None
    is_default: bool = True


def token_json(
    row: AccessToken | ListedToken, key: DeveloperKey | ListedKey, full_token: str | None = None
) -> dict[str, Any]:
    """``Api::V1::Token#token_json``: the columns in table order, then ``app_name``,
    ``visible_token``, ``expires_at`` (the permanent expiry) and ``can_manually_regenerate``."""
    manual = key.is_default
    return {
        "id": row.id,
        "user_id": row.user_id,
        "last_used_at": api_time(row.last_used_at),
        "purpose": row.purpose,
        "created_at": api_time(row.created_at),
        "updated_at": api_time(row.updated_at),
        "scopes": list(row.scopes),
        "remember_access": row.remember_access,
        "workflow_state": row.workflow_state,
        "real_user_id": row.real_user_id,
        "app_name": key.name or NO_APP,
        "visible_token": (full_token or f"{row.token_hint}...") if manual else None,
        "expires_at": api_time(row.permanent_expires_at),
        "can_manually_regenerate": manual and not is_expired(row),
    }


@dataclass(frozen=True, slots=True)
class Made:
    row: AccessToken
    key: DeveloperKey
    token: str


async def create(
    session: AsyncSession,
    *,
    user_id: int,
    purpose: str | None,
    expires_at: str | None,
    scopes: list[str],
    token: str | None = None,
) -> Made:
    """``TokensController#create`` for the user themself: checks every input before writing."""
    if purpose is None:
        raise missing_purpose()
    check_purpose(purpose)
    expiry = parse_expiry(expires_at)
    key = await default_key(session)
    granted = check_scopes(key, scopes)
    issued = await tokens.issue_manual_token(
        session,
        key=key,
        user_id=user_id,
        purpose=purpose,
        scopes=granted,
        permanent_expires_at=expiry,
        token=token,
    )
    assert issued.access_token is not None
    return Made(issued.row, key, issued.access_token)


async def update(
    session: AsyncSession,
    row: AccessToken,
    key: DeveloperKey,
    *,
    purpose: str | None,
    expires_at: str | None,
    expires_given: bool,
    scopes: list[str] | None,
    regenerate: bool,
) -> str | None:
    """``TokensController#update``; the new token text when it was regenerated. Only manual
    tokens regenerate (an OAuth token's ``regenerate`` is ignored, as in Canvas)."""
    if purpose is not None:
        check_purpose(purpose)
    expiry = parse_expiry(expires_at) if expires_given else None
    granted = check_scopes(key, scopes) if scopes is not None else None
    new_token = None
    if regenerate and key.is_default:
        if is_expired(row) and not expires_given:
            raise cannot_regenerate_expired()
        new_token = tokens.regenerate_access(row, key)
    if purpose is not None:
        row.purpose = purpose
    if expires_given:
        row.permanent_expires_at = expiry
    if granted is not None:
        row.scopes = granted
    row.updated_at = clock.now()
    await session.flush()
    return new_token


async def revoke(session: AsyncSession, row: AccessToken) -> None:
    """Soft delete (``workflow_state = deleted``): every instance refuses it at once."""
    await tokens.revoke(session, row.id)
    await session.refresh(row)


async def find_user_token(
    session: AsyncSession, user_id: int, raw: str
) -> tuple[AccessToken, DeveloperKey] | None:
    """``find_token``: the 5-character token hint first, then the id (local or global), among
    the user's tokens that are not deleted."""
    mine = (AccessToken.user_id == user_id, AccessToken.workflow_state != "deleted")
    row: AccessToken | None = None
    if len(raw) == HINT_LENGTH:
        row = await session.scalar(
            select(AccessToken).where(*mine, AccessToken.token_hint == raw).order_by(AccessToken.id).limit(1)
        )
    if row is None and raw.isascii() and raw.isdigit() and len(raw) <= 19:
        token_id = row_id(local_id(int(raw)))
        if token_id is not None:
            row = await session.scalar(select(AccessToken).where(*mine, AccessToken.id == token_id))
    if row is None:
        return None
    key = await session.get(DeveloperKey, row.developer_key_id)
    assert key is not None
    return row, key


async def visible_tokens(session: AsyncSession, user_id: int) -> list[tuple[AccessToken, DeveloperKey]]:
    """Approved Integrations (``AccessToken.visible_tokens``): the user's tokens that are not
    deleted, except those of internal-service keys, oldest first."""
    rows = await session.execute(
        select(AccessToken, DeveloperKey)
        .join(DeveloperKey, DeveloperKey.id == AccessToken.developer_key_id)
        .where(
            AccessToken.user_id == user_id,
            AccessToken.workflow_state != "deleted",
            DeveloperKey.internal_service.is_(False),
        )
        .order_by(AccessToken.created_at, AccessToken.id)
    )
    return [(row, key) for row, key in rows]


_DEFAULT_KEY_ID = _DEFAULT_KEY.with_only_columns(DeveloperKey.id).scalar_subquery()
_USER_GENERATED = (
    AccessToken.user_id == bindparam("user_id"),
    AccessToken.developer_key_id == _DEFAULT_KEY_ID,
    AccessToken.workflow_state != "deleted",
)
# One page, its key's name and how many there are in all (a window count, taken before the
# LIMIT): one statement on the driver, where the ORM took four (~2.7 ms of CPU a page on SQLite,
# benchmarks/ab/12-token-list-on-the-driver).
_LISTED = (  # ListedToken's fields, in order
    AccessToken.id,
    AccessToken.user_id,
    AccessToken.last_used_at,
    AccessToken.purpose,
    AccessToken.created_at,
    AccessToken.updated_at,
    AccessToken.scopes,
    AccessToken.remember_access,
    AccessToken.workflow_state,
    AccessToken.real_user_id,
    AccessToken.token_hint,
    AccessToken.permanent_expires_at,
)
_PAGE = ReadQuery(
    select(*_LISTED, DeveloperKey.name, func.count().over())
    .join(DeveloperKey, DeveloperKey.id == AccessToken.developer_key_id)
    .where(*_USER_GENERATED)
    .order_by(AccessToken.created_at, AccessToken.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_COUNT = ReadQuery(select(func.count()).select_from(AccessToken).where(*_USER_GENERATED))


@dataclass(frozen=True, slots=True)
class TokenPage:
    tokens: list[ListedToken]
    key: ListedKey | None  # None when the page is empty
    total: int


async def user_generated_page(db: Database, user_id: int, *, offset: int, limit: int) -> TokenPage:
    """One page of the user's manual tokens (``scope.user_generated``: the default key's, not
    deleted, by ``created_at, id``) and how many there are, on ``core.fastread``. A page past the
    end has no row to carry the count, so only then is it counted apart."""
    rows = await db.reads.all(_PAGE, user_id=user_id, limit=limit, offset=offset)
    if not rows:
        counted = await db.reads.one(_COUNT, user_id=user_id) if offset > 0 else None
        return TokenPage([], None, counted[0] if counted is not None else 0)
    return TokenPage([ListedToken(*row[:-2]) for row in rows], ListedKey(rows[0][-2]), rows[0][-1])
