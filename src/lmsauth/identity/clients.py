"""The Identity Service's public interface: what another service (``dap``) may use.

A token opens a service only while its client can still log in, so a revoked or expired
client's tokens stop working at once on every instance (DESIGN.md, many instances): the
check reads the database, never an in-process cache.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.core import clock
from lmsauth.core.keys import KeyRing
from lmsauth.identity.models import IdentityClient
from lmsauth.identity.tokens import Grant, TokenRefused, verify

__all__ = ["Grant", "TokenRefused", "authenticate", "client_is_active"]


async def client_is_active(session: AsyncSession, client_id: str) -> bool:
    """True while the client is neither revoked nor past its expiry date."""
    client = await session.scalar(select(IdentityClient).where(IdentityClient.client_id == client_id))
    return client is not None and client.usable_at(clock.now())


async def authenticate(
    session: AsyncSession, keyring: KeyRing, token: str, *, public_url: str, service: str
) -> Grant:
    """The grant of a bearer token for ``service``: signature, ``exp``, ``aud`` and the
    client's current state all checked. Raises ``TokenRefused``."""
    grant = await verify(keyring, token, public_url=public_url, service=service)
    if not await client_is_active(session, grant.client_id):
        raise TokenRefused("The client of this access token is no longer active.")
    return grant
