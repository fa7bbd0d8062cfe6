"""Browser sessions: the cookie that keeps a person signed in to Canvas's pages, and the
sealed cookie that carries a browser's state until it signs in.

Signed in, the ``canvas_session`` cookie carries a random id; the database keeps its digest,
the user, the pending OAuth request (``data["oauth2"]``) and the CSRF tokens. Signing in
issues a new id (no session fixation); signing out deletes the row, so every instance refuses
the old cookie at once.

Before signing in nothing is written to the database (issue 15, finding 3: every cookieless
page view used to add a row): the login form's CSRF token and the pending OAuth request travel
in ``canvas_login``, a cookie sealed with ``LMSAUTH_SECRET_KEY`` (``core.sealing``: encrypted
and authenticated), HttpOnly, SameSite=Lax,
and refused once it is an hour old or altered. Signing in moves its pending request into the
new row and clears it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas.models import BrowserSession
from lmsauth.core import clock, sealing, secrets

COOKIE = "canvas_session"
SIGNED_IN_LIFETIME = timedelta(hours=12)
LOGIN_COOKIE = "canvas_login"
LOGIN_LIFETIME = timedelta(hours=1)
# Browsers keep a cookie of up to 4096 bytes, name and value together (RFC 6265 section 6.1).
# A pending request of at most MAX_PENDING_JSON bytes seals to less than MAX_LOGIN_COOKIE.
MAX_LOGIN_COOKIE = 4000
MAX_PENDING_JSON = 2800
_LOGIN_PURPOSE = b"lmsauth canvas login state"


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


async def sign_in(
    session: AsyncSession, old: BrowserSession | None, user_id: int, pending: dict[str, Any] | None
) -> LoadedSession:
    """A new session id for the signed-in user, keeping the pending OAuth request: the one the
    login state carried, else the one of the session signed in before (``force_login``)."""
    if pending is None and old is not None and isinstance(old.data.get("oauth2"), dict):
        pending = old.data["oauth2"]
    if old is not None:
        await session.delete(old)
    token = secrets.url_token(32)
    row = BrowserSession(
        token_digest=secrets.digest(token),
        user_id=user_id,
        data={"oauth2": pending} if pending is not None else {},
        created_at=clock.now(),
        expires_at=clock.now() + SIGNED_IN_LIFETIME,
    )
    session.add(row)
    await session.flush()
    return LoadedSession(row, token)


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


def csrf_ok(holder: BrowserSession | LoginState | None, presented: str | None) -> bool:
    if isinstance(holder, LoginState):
        expected: object = holder.csrf
    else:
        expected = holder.data.get("csrf") if holder is not None else None
    return isinstance(expected, str) and presented is not None and secrets.same(expected, presented)


def set_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")


def clear_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, httponly=True, samesite="lax", secure=secure, path="/")


# ---------------------------------------------------------------- before signing in


@dataclass(frozen=True)
class LoginState:
    """What a browser carries in ``canvas_login`` until it signs in: the login form's CSRF
    token and the pending OAuth request, if any."""

    csrf: str
    oauth2: dict[str, Any] | None = None

    @staticmethod
    def new(oauth2: dict[str, Any] | None = None) -> LoginState:
        return LoginState(secrets.url_token(24), oauth2)

    def with_pending(self, oauth2: dict[str, Any]) -> LoginState:
        return LoginState(self.csrf, oauth2)


def pending_json(pending: dict[str, Any]) -> bytes:
    return json.dumps(pending, separators=(",", ":")).encode()


def pending_fits(pending: dict[str, Any]) -> bool:
    """Whether a pending OAuth request is small enough to keep, in the login cookie or a row."""
    return len(pending_json(pending)) <= MAX_PENDING_JSON


def read_login_state(request: Request, secret_key: str) -> LoginState | None:
    """The request's login state; None when it has none, or one that is expired or altered."""
    value = request.cookies.get(LOGIN_COOKIE)
    if not value or len(value) > MAX_LOGIN_COOKIE:
        return None
    plain = sealing.unseal_fresh(secret_key, _LOGIN_PURPOSE, value, max_age=LOGIN_LIFETIME, now=clock.now())
    if plain is None:
        return None
    try:
        data = json.loads(plain)
    except ValueError:
        return None
    csrf, oauth2 = (data.get("csrf"), data.get("oauth2")) if isinstance(data, dict) else (None, None)
    if not isinstance(csrf, str) or not (oauth2 is None or isinstance(oauth2, dict)):
        return None
    return LoginState(csrf, oauth2)


def seal_login_state(state: LoginState, secret_key: str) -> str:
    """The cookie value; callers keep ``oauth2`` within ``pending_fits``, so it fits a cookie."""
    plain = b'{"csrf":%s,"oauth2":%s}' % (
        json.dumps(state.csrf).encode(),
        pending_json(state.oauth2) if state.oauth2 is not None else b"null",
    )
    return sealing.seal_at(secret_key, _LOGIN_PURPOSE, plain, clock.now())


def set_login_cookie(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        value,
        max_age=int(LOGIN_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_login_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(LOGIN_COOKIE, httponly=True, samesite="lax", secure=secure, path="/")
