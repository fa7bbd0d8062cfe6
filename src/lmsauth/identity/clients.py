"""The Identity Service's public interface: what another service (``dap``) may use.

A token opens a service only while its client can still log in, so a revoked or expired
client's tokens stop working at once on every instance (DESIGN.md, many instances): the
check reads the database, never an in-process cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, select

from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.core.fastread import ReadQuery
from lmsauth.core.keys import KeyRing, generation_columns
from lmsauth.identity.models import IdentityClient, client_usable
from lmsauth.identity.tokens import Grant, TokenRefused, verify

__all__ = ["ClientRecord", "Grant", "TokenRefused", "authenticate", "client_is_active", "find_client"]


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """An identity client as login and every DAP call read it (one row, no ORM entity)."""

    client_id: str
    secret_digest: str
    principal: str
    partner: str | None
    region: str
    service: str
    active: bool
    expires_at: datetime

    def usable_at(self, moment: datetime) -> bool:
        return client_usable(self.active, self.expires_at, moment)


# The hot paths (``/ids/auth/login``, every DAP call) read through ``core.fastread``: one
# indexed SELECT on the driver, never a cache, so a revocation is seen at once everywhere.
_CLIENT = ReadQuery(
    select(
        IdentityClient.client_id,
        IdentityClient.secret_digest,
        IdentityClient.principal,
        IdentityClient.partner,
        IdentityClient.region,
        IdentityClient.service,
        IdentityClient.active,
        IdentityClient.expires_at,
    ).where(IdentityClient.client_id == bindparam("client_id"))
)


@cache
def _client_and_generation(ring: str) -> ReadQuery:
    return ReadQuery(_CLIENT.statement.add_columns(*generation_columns(ring)))


async def find_client(db: Database, client_id: str) -> ClientRecord | None:
    row = await db.reads.one(_CLIENT, client_id=client_id)
    return None if row is None else ClientRecord(*row)


async def find_client_and_generation(
    db: Database, client_id: str, ring: str
) -> tuple[ClientRecord | None, object]:
    """The client and the key ring's generation (``KeyRing.refresh``) in one read: an identity
    login is then one round trip to the database, not two (the generation is None when there
    is no such client: nothing will be signed)."""
    row = await db.reads.one(_client_and_generation(ring), client_id=client_id)
    return (None, None) if row is None else (ClientRecord(*row[:-2]), row[-2:])


async def client_is_active(db: Database, client_id: str) -> bool:
    """True while the client is neither revoked nor past its expiry date."""
    client = await find_client(db, client_id)
    return client is not None and client.usable_at(clock.now())


async def authenticate(db: Database, keyring: KeyRing, token: str, *, public_url: str, service: str) -> Grant:
    """The grant of a bearer token for ``service``: signature, ``exp``, ``aud`` and the
    client's current state all checked. Raises ``TokenRefused``."""
    grant = await verify(keyring, token, public_url=public_url, service=service)
    if not await client_is_active(db, grant.client_id):
        raise TokenRefused("The client of this access token is no longer active.")
    return grant
