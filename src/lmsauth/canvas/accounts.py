"""The account named in a path (``/accounts/:account_id/...``): this server has one, the root
account, which ``self``, its local id and its global id all name (Canvas's ``api_find``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas import tokens
from lmsauth.canvas.models import Account, local_id


async def find_account(session: AsyncSession, raw: str) -> Account | None:
    root_id = await tokens.root_account_id(session)
    if root_id is None:
        return None
    if raw != "self" and not (raw.isdigit() and len(raw) <= 19 and local_id(int(raw)) == root_id):
        return None
    return await session.get(Account, root_id)
