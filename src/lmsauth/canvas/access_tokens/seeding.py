"""Manual tokens in seed files (``[[access_tokens]]``), so that a reset restores them.

A seeded token names its user by login and carries its token text: loading the seed again (an
emulator reset, a second ``lmsauth seed``) gives the same token, active again, with the seed's
purpose, expiry and scopes. Only the text's digest is stored, as for every token.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.access_tokens import manual
from lmsauth.canvas.admin import AdminError, root_account
from lmsauth.canvas.bearer import MAX_TOKEN_LENGTH
from lmsauth.canvas.models import AccessToken, Login
from lmsauth.core import clock, secrets

MIN_SEED_TOKEN_LENGTH = 16


def _text(item: dict[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise AdminError(f"access_tokens: {name} must be a string")
    return value


def _expiry(value: Any) -> str | None:
    """A TOML date-time or date, or a string in the API's format."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise AdminError("access_tokens: expires_at must be a date-time")


async def find_user_id(session: AsyncSession, login: str) -> int:
    account = await root_account(session)
    user_id = await session.scalar(
        select(Login.user_id).where(
            Login.account_id == account.id, Login.unique_id_normalized == login.strip().lower()
        )
    )
    if user_id is None:
        raise AdminError(f"no user with login {login}")
    return user_id


async def load_tokens(session: AsyncSession, items: list[Any]) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise AdminError("access_tokens must be a list of tables")
        login, text, purpose = _text(item, "login"), _text(item, "token"), _text(item, "purpose")
        printable = text.isascii() and text.isprintable() and " " not in text
        if not printable or not MIN_SEED_TOKEN_LENGTH <= len(text) <= MAX_TOKEN_LENGTH:
            raise AdminError(
                f"access_tokens: a token must be {MIN_SEED_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} "
                "printable ASCII characters without spaces"
            )
        scopes = item.get("scopes", [])
        if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
            raise AdminError("access_tokens: scopes must be a list of strings")
        user_id = await find_user_id(session, login)
        existing = await session.scalar(
            select(AccessToken).where(AccessToken.token_digest == secrets.digest(text))
        )
        try:
            if existing is None:
                made = await manual.create(
                    session,
                    user_id=user_id,
                    purpose=purpose,
                    expires_at=_expiry(item.get("expires_at")),
                    scopes=scopes,
                    token=text,
                )
                row = made.row
            else:
                key = await manual.default_key(session)
                if existing.user_id != user_id or existing.developer_key_id != key.id:
                    raise AdminError("access_tokens: that token text is another token's")
                await manual.update(
                    session,
                    existing,
                    key,
                    purpose=purpose,
                    expires_at=_expiry(item.get("expires_at")),
                    expires_given=True,
                    scopes=scopes,
                    regenerate=False,
                )
                existing.workflow_state = "active"
                existing.updated_at = clock.now()
                row = existing
        except manual.ManualTokenError as exc:
            raise AdminError(f"access_tokens: {exc.sentence}") from exc
        loaded.append({"id": row.id, "login": login, "purpose": row.purpose, "token_hint": row.token_hint})
    return loaded
