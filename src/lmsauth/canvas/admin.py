"""Administrative operations on Canvas's data, shared by the CLI and seed files.

Each function runs inside a caller's transaction and validates its input, raising
``AdminError`` with a message meant for the operator.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.models import Account, Login, User
from lmsauth.core import secrets

DEFAULT_ACCOUNT_NAME = "Site Admin"


class AdminError(ValueError):
    """Invalid input to an administrative operation."""


async def root_account(session: AsyncSession, name: str | None = None) -> Account:
    """The server's root account, created on first use."""
    account = await session.scalar(select(Account).order_by(Account.id).limit(1))
    if account is None:
        account = Account(name=name or DEFAULT_ACCOUNT_NAME)
        session.add(account)
        await session.flush()
    elif name and account.name != name:
        account.name = name
    return account


def _names(name: str) -> tuple[str, str]:
    parts = name.split()
    sortable = f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else name
    return sortable, name


async def upsert_user(
    session: AsyncSession,
    *,
    login: str,
    password: str,
    name: str,
    admin: bool = False,
    email: str | None = None,
    locale: str | None = None,
    avatar_url: str | None = None,
) -> tuple[User, bool]:
    """Create the user with this login, or bring an existing one in line; ``(user, created)``."""
    login = login.strip()
    if not login or len(login) > 255:
        raise AdminError("login must be 1 to 255 characters")
    if not password:
        raise AdminError("password must not be empty")
    if not name.strip() or len(name) > 255:
        raise AdminError("name must be 1 to 255 characters")
    account = await root_account(session)
    existing = await session.scalar(
        select(Login).where(Login.account_id == account.id, Login.unique_id_normalized == login.lower())
    )
    sortable, short = _names(name.strip())
    if email is None and "@" in login:
        email = login
    if existing is not None:
        user = await session.get(User, existing.user_id)
        assert user is not None
        if not secrets.verify_password(existing.password_hash, password):
            existing.password_hash = secrets.hash_password(password)
        user.name, user.sortable_name, user.short_name = name.strip(), sortable, short
        user.is_admin, user.email, user.locale = admin, email, locale
        user.avatar_url = avatar_url
        return user, False
    user = User(
        name=name.strip(),
        sortable_name=sortable,
        short_name=short,
        is_admin=admin,
        email=email,
        locale=locale,
        avatar_url=avatar_url,
    )
    session.add(user)
    await session.flush()
    session.add(
        Login(
            user_id=user.id,
            account_id=account.id,
            unique_id=login,
            unique_id_normalized=login.lower(),
            password_hash=secrets.hash_password(password),
        )
    )
    await session.flush()
    return user, True
