"""Commons sessions: where a request presents its id, how ids are issued, kept and ended, and
the session object of spec C4.

An id is ``core.secrets.url_token`` (256 random bits); the database keeps only its SHA-256
digest, so every instance finds it and a logout or expiry is seen by all at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import CursorResult, bindparam, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.commons.models import (
    CommonsAccount,
    CommonsCurator,
    CommonsSession,
    CommonsUser,
    LtiNonce,
    UsedJwt,
)
from lmsauth.core import clock, secrets
from lmsauth.core.db import Database
from lmsauth.core.fastread import ReadQuery

COOKIE = "session"
HEADER = "x-session-id"
QUERY = "session-id"
STATE = "state"
BODY = "sessionId"
MAX_ID_LENGTH = 128

# Spec C2 lists five places without an order of precedence. A value the client put on this
# request on purpose beats one the browser attached by itself, so the cookie comes last: a
# script with a stale cookie in its jar still gets the session it names explicitly.
PRECEDENCE = (HEADER, QUERY, STATE, BODY, COOKIE)


@dataclass(frozen=True)
class PresentedId:
    value: str
    source: str


def _body_session_id(body: bytes, content_type: str) -> str | None:
    """``sessionId`` from a JSON object or form body; anything unreadable holds none."""
    if not body:
        return None
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # too deeply nested
            return None
        value = data.get(BODY) if isinstance(data, dict) else None
        return value if isinstance(value, str) else None
    if content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
        except (ValueError, UnicodeDecodeError):
            return None
        return next((value for key, value in pairs if key == BODY), None)
    return None


def presented_id(request: Request, body: bytes = b"") -> PresentedId | None:
    """The session id this API request presents, by ``PRECEDENCE``; first query values win.

    Each place is looked at only when every place before it holds nothing: this runs on every
    Commons API call, and most clients send the header, the first place."""
    query: list[tuple[str, str]] | None = None
    for source in PRECEDENCE:
        if source == HEADER:
            value = request.headers.get(HEADER)
        elif source in (QUERY, STATE):
            if query is None:
                raw = request.scope.get("query_string", b"")
                query = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True) if raw else []
            value = next((value for key, value in query if key == source), None)
        elif source == BODY:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            value = _body_session_id(body, content_type)
        else:
            value = request.cookies.get(COOKIE)
        if value:
            return PresentedId(value, source)
    return None


async def start(
    session: AsyncSession, *, user: CommonsUser, origin: str, lifetime_seconds: int
) -> tuple[CommonsSession, str]:
    """A new session for ``user``; returns the row and the id, which is never stored."""
    token = secrets.url_token(32)
    now = clock.now()
    row = CommonsSession(
        token_digest=secrets.digest(token),
        user_id=user.id,
        origin=origin,
        csrf_token=secrets.url_token(24),
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime_seconds),
    )
    session.add(row)
    await session.flush()
    return row, token


async def load(session: AsyncSession, token: str | None) -> CommonsSession | None:
    """The live session with this id; an unknown, expired or ended one is ``None``."""
    if not token or len(token) > MAX_ID_LENGTH:
        return None
    row = await session.scalar(
        select(CommonsSession).where(CommonsSession.token_digest == secrets.digest(token))
    )
    if row is None or row.expires_at <= clock.now():
        return None
    return row


async def end(session: AsyncSession, session_id: int) -> None:
    """Delete the session (its row ``id``): every instance refuses it from the next read on."""
    await session.execute(delete(CommonsSession).where(CommonsSession.id == session_id))


def expires_text(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: JavaScript's ``Date#toISOString``, which a
    Node service such as Commons writes when it turns a date into a string."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class SessionView:
    """A live session with everything its session object shows (spec C4), read in one go."""

    id: int
    expires_at: datetime
    user_public_id: str
    prefers_high_contrast: bool
    locale: str
    full_name: str
    canvas_user_id: str
    canvas_api_domain: str
    roles: list[str]
    is_admin: bool
    avatar_url: str | None
    account_name: str
    account_public_id: str
    can_share_public: bool
    can_show_public: bool
    show_curated_resources_first: bool
    show_federal_standards: bool
    show_state_standards: bool
    state_standard: str
    is_curator: bool


# Every session read of the API is this one indexed SELECT through ``core.fastread`` (session,
# user, account and curatorship together): the hot path of Commons (benchmark scenario 3).
_VIEW = ReadQuery(
    select(
        CommonsSession.id,
        CommonsSession.expires_at,
        CommonsUser.public_id,
        CommonsUser.prefers_high_contrast,
        CommonsUser.locale,
        CommonsUser.full_name,
        CommonsUser.canvas_user_id,
        CommonsUser.canvas_api_domain,
        CommonsUser.roles,
        CommonsUser.is_admin,
        CommonsUser.avatar_url,
        CommonsAccount.name,
        CommonsAccount.public_id,
        CommonsAccount.can_share_public,
        CommonsAccount.can_show_public,
        CommonsAccount.show_curated_resources_first,
        CommonsAccount.show_federal_standards,
        CommonsAccount.show_state_standards,
        CommonsAccount.state_standard,
        exists()
        .where(CommonsCurator.account_id == CommonsAccount.id, CommonsCurator.user_id == CommonsUser.id)
        .label("is_curator"),
    )
    .join(CommonsUser, CommonsUser.id == CommonsSession.user_id)
    .join(CommonsAccount, CommonsAccount.id == CommonsUser.account_id)
    .where(CommonsSession.token_digest == bindparam("digest"))
)


async def view(db: Database, token: str | None) -> SessionView | None:
    """The live session with this id; an unknown, expired or ended one is ``None``."""
    if not token or len(token) > MAX_ID_LENGTH:
        return None
    row = await db.reads.one(_VIEW, digest=secrets.digest(token))
    if row is None:
        return None
    found = SessionView(*row)
    return found if found.expires_at > clock.now() else None


def session_object(sid: str, found: SessionView) -> dict[str, Any]:
    """The twenty members of spec C4 for the session ``sid`` names."""
    return {
        "sid": sid,
        "expires": expires_text(found.expires_at),
        "userId": found.user_public_id,
        "prefersHighContrast": found.prefers_high_contrast,
        "locale": found.locale,
        "userFullName": found.full_name,
        "accountName": found.account_name,
        "accountId": found.account_public_id,
        "canvasUserId": found.canvas_user_id,
        "canvasApiDomain": found.canvas_api_domain,
        "roles": list(found.roles),
        "isAdmin": found.is_admin,
        "canSharePublic": found.can_share_public,
        "canShowPublic": found.can_show_public,
        "showCuratedResourcesFirst": found.show_curated_resources_first,
        "showFederalStandards": found.show_federal_standards,
        "showStateStandards": found.show_state_standards,
        "stateStandard": found.state_standard,
        "isAccountCurator": found.is_curator,
        "userAvatarUrl": found.avatar_url or "",
    }


def set_cookie(response: Response, token: str, *, path: str, secure: bool) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=secure, path=path)


def clear_cookie(response: Response, *, path: str, secure: bool) -> None:
    response.delete_cookie(COOKIE, httponly=True, samesite="lax", secure=secure, path=path)


async def remove_expired(session: AsyncSession) -> dict[str, int]:
    """The periodic clean-up: sessions, nonces and JWT records that can never matter again."""
    now = clock.now()
    counts: dict[str, int] = {}
    for name, statement in (
        ("commons_sessions", delete(CommonsSession).where(CommonsSession.expires_at <= now)),
        ("commons_lti_nonces", delete(LtiNonce).where(LtiNonce.expires_at <= now)),
        ("commons_used_jwts", delete(UsedJwt).where(UsedJwt.expires_at <= now)),
    ):
        result = await session.execute(statement)
        assert isinstance(result, CursorResult)
        counts[name] = result.rowcount
    return counts
