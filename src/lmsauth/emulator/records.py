"""What the emulator reads and rewrites in the database: live tokens, codes and sessions with
their owners (never a secret or a digest), who a request's credentials belong to, and the
wipe that ``POST /_emulator/reset`` starts from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth import models  # noqa: F401  (every table on Base.metadata, for the wipe)
from lmsauth.canvas.changes import ExportChange, PendingChange
from lmsauth.canvas.models import (
    AccessToken,
    AuthorizationCode,
    BrowserSession,
    DeveloperKey,
    Login,
    User,
    global_id,
)
from lmsauth.commons.models import CommonsSession, CommonsUser
from lmsauth.core import clock, secrets
from lmsauth.core.db import Base, sync_id_sequence
from lmsauth.core.keys import SigningKey
from lmsauth.identity.models import IdentityClient


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def user_labels(session: AsyncSession) -> dict[int, str]:
    """Each Canvas user's first login (or name when it has none), by user id."""
    labels: dict[int, str] = {}
    for user_id, name in (await session.execute(select(User.id, User.name))).all():
        labels[user_id] = name
    for user_id, unique_id in (
        await session.execute(select(Login.user_id, Login.unique_id).order_by(Login.id.desc()))
    ).all():
        labels[user_id] = unique_id
    return labels


async def live_tokens(session: AsyncSession) -> dict[str, list[dict[str, Any]]]:
    """``GET /_emulator/tokens``: owners and expiries of everything that still opens something."""
    now = clock.now()
    users = await user_labels(session)
    tokens = []
    rows = await session.execute(
        select(AccessToken, DeveloperKey.id)
        .join(DeveloperKey, DeveloperKey.id == AccessToken.developer_key_id)
        .where(AccessToken.workflow_state == "active")
        .order_by(AccessToken.id)
    )
    for token, key_id in rows.all():
        if token.permanent_expires_at is not None and token.permanent_expires_at <= now:
            continue
        tokens.append(
            {
                "id": token.id,
                "user": users.get(token.user_id),
                "user_id": token.user_id,
                "client_id": str(global_id(key_id)),
                "scopes": list(token.scopes),
                "created_at": _iso(token.created_at),
                "expires_at": _iso(token.expires_at),
                "access_token_expired": token.expires_at is not None and token.expires_at <= now,
                "refresh_expires_at": _iso(token.permanent_expires_at),
            }
        )
    codes = [
        {
            "id": code.id,
            "user": users.get(code.user_id),
            "user_id": code.user_id,
            "client_id": str(global_id(code.developer_key_id)),
            "redirect_uri": code.redirect_uri,
            "expires_at": _iso(code.expires_at),
        }
        for code in await session.scalars(
            select(AuthorizationCode)
            .where(AuthorizationCode.expires_at > now, AuthorizationCode.redeemed_at.is_(None))
            .order_by(AuthorizationCode.id)
        )
    ]
    browser = [
        {
            "id": row.id,
            "user": users.get(row.user_id) if row.user_id is not None else None,
            "signed_in": row.user_id is not None,
            "expires_at": _iso(row.expires_at),
        }
        for row in await session.scalars(
            select(BrowserSession).where(BrowserSession.expires_at > now).order_by(BrowserSession.id)
        )
    ]
    commons = [
        {
            "id": row.id,
            "user": name,
            "canvas_user_id": canvas_user_id,
            "created_at": _iso(row.created_at),
            "expires_at": _iso(row.expires_at),
        }
        for row, name, canvas_user_id in (
            await session.execute(
                select(CommonsSession, CommonsUser.full_name, CommonsUser.canvas_user_id)
                .join(CommonsUser, CommonsUser.id == CommonsSession.user_id)
                .where(CommonsSession.expires_at > now)
                .order_by(CommonsSession.id)
            )
        ).all()
    ]
    return {
        "access_tokens": tokens,
        "authorization_codes": codes,
        "browser_sessions": browser,
        "commons_sessions": commons,
    }


async def identity_clients(session: AsyncSession) -> list[dict[str, Any]]:
    return [
        {
            "client_id": row.client_id,
            "name": row.name,
            "principal": row.principal,
            "active": row.active,
            "expires_at": _iso(row.expires_at),
        }
        for row in await session.scalars(select(IdentityClient).order_by(IdentityClient.id))
    ]


async def canvas_bearer_owner(session: AsyncSession, token: str) -> tuple[str | None, str | None]:
    """(client id, user) of a Canvas access token, whatever its state; (None, None) if unknown."""
    found = (
        await session.execute(
            select(AccessToken.developer_key_id, AccessToken.user_id).where(
                AccessToken.token_digest == secrets.digest(token)
            )
        )
    ).first()
    if found is None:
        return None, None
    key_id, user_id = found
    return str(global_id(key_id)), await _user_label(session, user_id)


async def browser_session_user(session: AsyncSession, token: str) -> str | None:
    user_id = await session.scalar(
        select(BrowserSession.user_id).where(BrowserSession.token_digest == secrets.digest(token))
    )
    return await _user_label(session, user_id) if user_id is not None else None


async def commons_session_user(session: AsyncSession, token: str) -> str | None:
    return await session.scalar(
        select(CommonsUser.full_name)
        .join(CommonsSession, CommonsSession.user_id == CommonsUser.id)
        .where(CommonsSession.token_digest == secrets.digest(token))
    )


async def _user_label(session: AsyncSession, user_id: int) -> str | None:
    login = await session.scalar(select(Login.unique_id).where(Login.user_id == user_id).limit(1))
    return login or await session.scalar(select(User.name).where(User.id == user_id))


async def signing_key_ids(session: AsyncSession) -> set[str]:
    return set(await session.scalars(select(SigningKey.kid)))


async def wipe(session: AsyncSession, keep_kids: set[str]) -> None:
    """Delete every row of every table, children first; signing keys in ``keep_kids`` stay, so
    clients that cached the JWKS still verify what the reset server signs."""
    for table in reversed(Base.metadata.sorted_tables):
        if table.name == SigningKey.__tablename__:
            await session.execute(delete(SigningKey).where(SigningKey.kid.not_in(keep_kids)))
        else:
            await session.execute(table.delete())


Snapshot = dict[str, list[dict[str, Any]]]


# Rows that triggers write: a restore's inserts write them again (a reset is a change that
# DAP's incrementals show), and copies of the old ones would collide with those by id.
TRIGGER_WRITTEN = frozenset({ExportChange.__tablename__, PendingChange.__tablename__})


async def snapshot(session: AsyncSession) -> Snapshot:
    """Every row of every table but the signing keys (which a reset keeps) and the change log
    of exported tables (which the restore writes anew), by table name."""
    rows: Snapshot = {}
    for table in Base.metadata.sorted_tables:
        if table.name != SigningKey.__tablename__ and table.name not in TRIGGER_WRITTEN:
            rows[table.name] = [dict(row) for row in (await session.execute(select(table))).mappings()]
    return rows


async def restore(session: AsyncSession, rows: Snapshot) -> None:
    """Put a snapshot back into wiped tables, parents first, ids included."""
    for table in Base.metadata.sorted_tables:
        if rows.get(table.name):
            await session.execute(table.insert(), rows[table.name])
            if "id" in table.c:
                await sync_id_sequence(session, table.name)


class OneTransaction:
    """Hands ``lmsauth.seed.load`` a transaction that is already open, so that a reset's wipe
    and its seeds commit together or not at all (``seed.load`` only calls ``session``)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @asynccontextmanager
    async def session(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        yield self._session


async def credential_record(session: AsyncSession, kind: str, value: str) -> dict[str, Any] | None:
    """What the database knows of a code, access token or refresh token (looked up by digest)."""
    digest = secrets.digest(value)
    if kind == "code":
        code = await session.scalar(select(AuthorizationCode).where(AuthorizationCode.code_digest == digest))
        if code is None:
            return None
        return {
            "user": await _user_label(session, code.user_id),
            "client_id": str(global_id(code.developer_key_id)),
            "scopes": list(code.scopes),
            "redirect_uri": code.redirect_uri,
            "expires_at": _iso(code.expires_at),
            "redeemed": code.redeemed_at is not None,
        }
    column = AccessToken.token_digest if kind == "access_token" else AccessToken.refresh_digest
    token = await session.scalar(select(AccessToken).where(column == digest))
    if token is None:
        return None
    return {
        "user": await _user_label(session, token.user_id),
        "client_id": str(global_id(token.developer_key_id)),
        "scopes": list(token.scopes),
        "state": token.workflow_state,
        "expires_at": _iso(token.expires_at if kind == "access_token" else token.permanent_expires_at),
    }


async def users(session: AsyncSession) -> list[dict[str, Any]]:
    logins: dict[int, list[str]] = {}
    for user_id, unique_id in (await session.execute(select(Login.user_id, Login.unique_id))).all():
        logins.setdefault(user_id, []).append(unique_id)
    return [
        {"id": user.id, "name": user.name, "logins": logins.get(user.id, []), "admin": user.is_admin}
        for user in await session.scalars(select(User).order_by(User.id))
    ]


async def developer_keys(session: AsyncSession) -> list[dict[str, Any]]:
    return [key.summary() for key in await session.scalars(select(DeveloperKey).order_by(DeveloperKey.id))]
