"""Administrative operations on Canvas's data, shared by the CLI and seed files.

Each function runs inside a caller's transaction and validates its input, raising
``AdminError`` with a message meant for the operator.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import sessions
from lmsauth.canvas.models import Account, Login, User
from lmsauth.core import clock, secrets

DEFAULT_ACCOUNT_NAME = "Site Admin"


class AdminError(ValueError):
    """Invalid input to an administrative operation."""


MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 255


def password_problem(password: str) -> str | None:
    """The one password rule (CLI, seed files, the Users and Logins APIs, the console):
    Canvas's default password policy, 8 to 255 characters. The Canvas error type it would
    report (``too_short``, ``too_long``), or None when the password is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "too_short"
    if len(password) > MAX_PASSWORD_LENGTH:
        return "too_long"
    return None


def check_password(password: str) -> None:
    problem = password_problem(password)
    if problem is not None:
        raise AdminError(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters ({problem})"
        )


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


def derived_names(name: str) -> tuple[str, str]:
    """Canvas's defaults for a name: the sortable name ("Last, First ...") and the short name."""
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
        # Seed files may keep short test passwords; people's passwords go through check_password.
        raise AdminError("password must not be empty")
    if not name.strip() or len(name) > 255:
        raise AdminError("name must be 1 to 255 characters")
    account = await root_account(session)
    existing = await session.scalar(
        select(Login).where(Login.account_id == account.id, Login.unique_id_normalized == login.lower())
    )
    sortable, short = derived_names(name.strip())
    if email is None and "@" in login:
        email = login
    if existing is not None:
        user = await session.get(User, existing.user_id)
        assert user is not None
        if not await secrets.verify_password_in_worker(existing.password_hash, password):
            existing.password_hash = await secrets.hash_password_in_worker(password)
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
            password_hash=await secrets.hash_password_in_worker(password),
        )
    )
    await session.flush()
    return user, True


async def user_of_login(session: AsyncSession, login: str) -> User:
    """The (not deleted) user who signs in with ``login``."""
    account = await root_account(session)
    found = await session.scalar(
        select(Login).where(
            Login.account_id == account.id, Login.unique_id_normalized == login.strip().lower()
        )
    )
    user = await session.get(User, found.user_id) if found is not None else None
    if user is None or user.workflow_state == "deleted":
        raise AdminError(f"no user with login {login}")
    return user


async def suspend_logins(
    session: AsyncSession, user: User, suspended: bool, login_id: int | None = None
) -> None:
    """Suspend (or unsuspend) the user's logins, or only ``login_id``, as Canvas's
    ``user[event]=suspend`` and ``login[workflow_state]=suspended`` do. A user whose logins are
    all suspended cannot sign in, and their tokens, codes and refresh tokens stop working
    (``people.USER_IS_USABLE``); their browser sessions end. Unsuspending brings the tokens
    back, not the sessions."""
    before, after = ("active", "suspended") if suspended else ("suspended", "active")
    chosen = update(Login).where(Login.user_id == user.id, Login.workflow_state == before)
    if login_id is not None:
        chosen = chosen.where(Login.id == login_id)
    await session.execute(chosen.values(workflow_state=after))
    user.updated_at = clock.now()
    if suspended:
        await sessions.end_all_for_user(session, user.id)
    await session.flush()


async def set_user_suspended(session: AsyncSession, login: str, suspended: bool) -> User:
    """``suspend_logins`` for every login of the user who signs in with ``login``."""
    user = await user_of_login(session, login)
    await suspend_logins(session, user, suspended)
    return user


async def soft_delete_user(session: AsyncSession, user: User) -> None:
    """Canvas's soft delete: the user row stays, ``deleted``, and so do their logins;
    nothing of theirs works again and their browser sessions end."""
    user.workflow_state = "deleted"
    await session.execute(
        update(Login)
        .where(Login.user_id == user.id, Login.workflow_state != "deleted")
        .values(workflow_state="deleted")
    )
    await sessions.end_all_for_user(session, user.id)
    await session.flush()


async def delete_user(session: AsyncSession, login: str) -> User:
    """``soft_delete_user`` for the user who signs in with ``login``."""
    user = await user_of_login(session, login)
    await soft_delete_user(session, user)
    return user
