"""Creating, listing and revoking identity clients: what an admin does at identity.instructure.com.

Each function runs inside the caller's transaction and raises ``IdentityAdminError`` with a
message meant for the operator.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.core import clock, secrets
from lmsauth.identity.models import IdentityClient
from lmsauth.identity.tokens import scope_of

DEFAULT_REGION = "us-east-1"
DEFAULT_SERVICE = "dap"
# Real keys last from 1 day to 1 year (some guides say 3 years; spec A4): allow the wider range.
DEFAULT_EXPIRES_IN_DAYS = 365
MAX_EXPIRES_IN_DAYS = 3 * 366
# AWS-style region names (us-east-1, eu-central-1, ap-southeast-2): what the client's region
# regex ``([\w-]+)#`` extracts from a client id (spec A4).
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
# Scope parts are space separated and ``name:value``: no spaces, no control characters.
SCOPE_VALUE = re.compile(r"[\x21-\x7e]{1,255}")


class IdentityAdminError(ValueError):
    """Invalid input to an identity administrative operation."""


def _check(name: str, principal: str, partner: str | None, region: str, days: int) -> None:
    if not name.strip() or len(name) > 255:
        raise IdentityAdminError("name must be 1 to 255 characters")
    if not SCOPE_VALUE.fullmatch(principal):
        raise IdentityAdminError("principal must be 1 to 255 printable characters without spaces")
    if partner is not None and not SCOPE_VALUE.fullmatch(partner):
        raise IdentityAdminError("partner must be 1 to 255 printable characters without spaces")
    if not REGION.fullmatch(region):
        raise IdentityAdminError(f"region must look like {DEFAULT_REGION}")
    if not 1 <= days <= MAX_EXPIRES_IN_DAYS:
        raise IdentityAdminError(f"expires-in-days must be 1 to {MAX_EXPIRES_IN_DAYS}")


def summary(client: IdentityClient) -> dict[str, Any]:
    """Everything about a client except its secret."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "principal": client.principal,
        "partner": client.partner,
        "region": client.region,
        "service": client.service,
        "scope": scope_of(client.service, client.principal, client.partner, client.region),
        "active": client.active,
        "expires_at": client.expires_at.isoformat().replace("+00:00", "Z"),
        "created_at": client.created_at.isoformat().replace("+00:00", "Z"),
    }


async def create_client(
    session: AsyncSession,
    *,
    name: str,
    principal: str,
    partner: str | None = None,
    region: str = DEFAULT_REGION,
    expires_in_days: int = DEFAULT_EXPIRES_IN_DAYS,
) -> tuple[IdentityClient, str]:
    """A new active client; returns it with its secret, which is never stored or shown again."""
    _check(name, principal, partner, region, expires_in_days)
    secret = secrets.url_token(32)
    now = clock.now()
    client = IdentityClient(
        client_id=f"{region}#{uuid.uuid4()}",
        secret_digest=secrets.digest(secret),
        name=name.strip(),
        principal=principal,
        partner=partner,
        region=region,
        service=DEFAULT_SERVICE,
        active=True,
        expires_at=now + timedelta(days=expires_in_days),
        created_at=now,
    )
    session.add(client)
    await session.flush()
    return client, secret


async def list_clients(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.scalars(select(IdentityClient).order_by(IdentityClient.id))
    return [summary(row) for row in rows]


async def revoke_client(session: AsyncSession, client_id: str) -> IdentityClient:
    """Deactivate a client: it cannot log in, and tokens already issued stop opening DAP."""
    client = await session.scalar(select(IdentityClient).where(IdentityClient.client_id == client_id))
    if client is None:
        raise IdentityAdminError(f"no identity client with client_id {client_id}")
    if client.active:
        client.active = False
        client.revoked_at = clock.now()
        await session.flush()
    return client
