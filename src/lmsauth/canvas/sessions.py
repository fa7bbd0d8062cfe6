"""Browser sessions: the cookie that keeps a person signed in to Canvas's pages.

The cookie carries a random id; the database keeps its digest, the user (once signed in),
the pending OAuth request and the CSRF token. Signing in issues a new id (no session
fixation); signing out deletes the row, so every instance refuses the old cookie at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas.models import BrowserSession
from lmsauth.core import clock, secrets

COOKIE = "canvas_session"
SIGNED_IN_LIFETIME = timedelta(hours=12)
ANONYMOUS_LIFETIME = timedelta(hours=1)


@dataclass
class LoadedSession:
    row: BrowserSession
    token: str | None  # set only when the cookie must be (re)sent


async def load(session: AsyncSession, request: Request) -> BrowserSession | None:
    """The live session named by the request's cookie, if any."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 128:
        return None
    row = await session.scalar(
        select(BrowserSession).where(BrowserSession.token_digest == secrets.digest(token))
    )
    if row is None or row.expires_at <= clock.now():
        return None
    return row


async def load_or_start(session: AsyncSession, request: Request) -> LoadedSession:
    row = await load(session, request)
    if row is not None:
        return LoadedSession(row, None)
    return await start(session, user_id=None, data={})


async def start(session: AsyncSession, *, user_id: int | None, data: dict[str, Any]) -> LoadedSession:
    token = secrets.url_token(32)
    lifetime = SIGNED_IN_LIFETIME if user_id is not None else ANONYMOUS_LIFETIME
    row = BrowserSession(
        token_digest=secrets.digest(token),
        user_id=user_id,
        data=data,
        created_at=clock.now(),
        expires_at=clock.now() + lifetime,
    )
    session.add(row)
    await session.flush()
    return LoadedSession(row, token)


async def sign_in(session: AsyncSession, old: BrowserSession | None, user_id: int) -> LoadedSession:
    """A new session id for the signed-in user, keeping the pending OAuth request."""
    data: dict[str, Any] = {}
    if old is not None:
        if "oauth2" in old.data:
            data["oauth2"] = old.data["oauth2"]
        await session.delete(old)
    return await start(session, user_id=user_id, data=data)


async def end(session: AsyncSession, row: BrowserSession) -> None:
    await session.delete(row)


async def end_all_for_user(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(BrowserSession).where(BrowserSession.user_id == user_id))


def update_data(row: BrowserSession, **changes: Any) -> None:
    """Replace ``data`` (a new dict, so SQLAlchemy sees the change)."""
    data = dict(row.data)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    row.data = data


def csrf_token(row: BrowserSession) -> str:
    token = row.data.get("csrf")
    if not isinstance(token, str):
        token = secrets.url_token(24)
        update_data(row, csrf=token)
    return token


def csrf_ok(row: BrowserSession | None, presented: str | None) -> bool:
    expected = row.data.get("csrf") if row is not None else None
    return isinstance(expected, str) and presented is not None and secrets.same(expected, presented)


def set_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")


def clear_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, httponly=True, samesite="lax", secure=secure, path="/")
