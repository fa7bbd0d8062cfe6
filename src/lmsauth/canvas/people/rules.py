"""Whether a Canvas user may act at all: the one rule every token, code, refresh and browser
session of the user answers to.

A user is usable unless deleted (``users.workflow_state``) or suspended. Canvas suspends
logins, not users: ``Pseudonym#workflow_state`` "suspended", and the Users API's
``user[event]=suspend`` suspends every login of the user. So a user who has logins and none of
them active is suspended: they cannot sign in, and nothing issued to them before works either.
The rule is one SQL condition, so the API's hot path keeps its single SELECT (two correlated
EXISTS on the indexed ``logins.user_id``) and every other check reads the same condition.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.models import Login, User

_HAS_LOGIN = exists().where(Login.user_id == User.id)
_HAS_ACTIVE_LOGIN = exists().where(Login.user_id == User.id, Login.workflow_state == "active")

USER_IS_USABLE: ColumnElement[bool] = and_(
    User.workflow_state != "deleted",
    or_(~_HAS_LOGIN, _HAS_ACTIVE_LOGIN),
)
"""Not deleted, and not suspended (some login active, or no login at all). Correlated to
``User``: use it in a query that selects from, or joins, ``users``."""


async def usable_user(session: AsyncSession, user_id: int | None) -> User | None:
    """The user, if they may act now (``USER_IS_USABLE``), else None."""
    if user_id is None:
        return None
    user: User | None = await session.scalar(select(User).where(User.id == user_id, USER_IS_USABLE))
    return user
