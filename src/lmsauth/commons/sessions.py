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

from sqlalchemy import CursorResult, delete, select
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
    """The session id this API request presents, by ``PRECEDENCE``; first query values win."""
    query = parse_qsl(request.url.query, keep_blank_values=True)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    found = {
        HEADER: request.headers.get(HEADER),
        QUERY: next((value for key, value in query if key == QUERY), None),
        STATE: next((value for key, value in query if key == STATE), None),
        BODY: _body_session_id(body, content_type),
        COOKIE: request.cookies.get(COOKIE),
    }
    for source in PRECEDENCE:
        value = found[source]
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


async def end(session: AsyncSession, row: CommonsSession) -> None:
    await session.execute(delete(CommonsSession).where(CommonsSession.id == row.id))


def expires_text(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: JavaScript's ``Date#toISOString``, which a
    Node service such as Commons writes when it turns a date into a string."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def session_object(session: AsyncSession, sid: str, row: CommonsSession) -> dict[str, Any]:
    """The twenty members of spec C4 for the session ``sid`` names."""
    user = await session.get(CommonsUser, row.user_id)
    assert user is not None  # the foreign key cascades: a session never outlives its user
    account = await session.get(CommonsAccount, user.account_id)
    assert account is not None
    curator = await session.scalar(
        select(CommonsCurator.id).where(
            CommonsCurator.account_id == account.id, CommonsCurator.user_id == user.id
        )
    )
    return {
        "sid": sid,
        "expires": expires_text(row.expires_at),
        "userId": user.public_id,
        "prefersHighContrast": user.prefers_high_contrast,
        "locale": user.locale,
        "userFullName": user.full_name,
        "accountName": account.name,
        "accountId": account.public_id,
        "canvasUserId": user.canvas_user_id,
        "canvasApiDomain": user.canvas_api_domain,
        "roles": list(user.roles),
        "isAdmin": user.is_admin,
        "canSharePublic": account.can_share_public,
        "canShowPublic": account.can_show_public,
        "showCuratedResourcesFirst": account.show_curated_resources_first,
        "showFederalStandards": account.show_federal_standards,
        "showStateStandards": account.show_state_standards,
        "stateStandard": account.state_standard,
        "isAccountCurator": curator is not None,
        "userAvatarUrl": user.avatar_url or "",
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
