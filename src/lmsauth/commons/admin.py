"""Operator actions on Commons' data, shared by the ``lmsauth commons`` commands and seed files.

Each runs inside the caller's transaction and raises ``CommonsAdminError`` with a message for
the operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.commons.models import CommonsAccount, CommonsCurator, CommonsUser, LtiConsumer
from lmsauth.commons.sealing import seal
from lmsauth.core import secrets

STATE_STANDARD = re.compile(r"^(NONE|[A-Z]{2})$")
ACCOUNT_SETTINGS = (
    "can_share_public",
    "can_show_public",
    "show_curated_resources_first",
    "show_federal_standards",
    "show_state_standards",
)


class CommonsAdminError(ValueError):
    """Invalid input to an operator action."""


@dataclass
class IssuedConsumer:
    consumer: LtiConsumer
    account: CommonsAccount
    shared_secret: str | None  # set only when a secret was issued or replaced

    def summary(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.consumer.name,
            "consumer_key": self.consumer.consumer_key,
            "account_id": self.account.public_id,
            "account_name": self.account.name,
        }
        if self.shared_secret is not None:
            body["shared_secret"] = self.shared_secret
        return body


async def save_consumer(
    session: AsyncSession,
    secret_key: str,
    *,
    name: str,
    consumer_key: str | None = None,
    shared_secret: str | None = None,
    account_name: str | None = None,
    settings: dict[str, Any] | None = None,
) -> IssuedConsumer:
    """Issue a consumer key and shared secret for a new Commons account, or (with a known
    ``consumer_key``) bring an existing one in line: loading a seed twice changes nothing."""
    name = name.strip()
    if not name or len(name) > 255:
        raise CommonsAdminError("name must be 1 to 255 characters")
    if consumer_key is not None and not (0 < len(consumer_key) <= 255 and consumer_key.isprintable()):
        raise CommonsAdminError("a consumer key must be 1 to 255 printable characters")
    if shared_secret is not None and len(shared_secret) < 16:
        raise CommonsAdminError("a shared secret must be at least 16 characters")
    existing = (
        await session.scalar(select(LtiConsumer).where(LtiConsumer.consumer_key == consumer_key))
        if consumer_key is not None
        else None
    )
    issued_secret = shared_secret
    if existing is None:
        account = CommonsAccount(name=(account_name or name).strip())
        session.add(account)
        await session.flush()
        issued_secret = shared_secret or secrets.url_token(32)
        consumer = LtiConsumer(
            account_id=account.id,
            name=name,
            consumer_key=consumer_key or f"commons-{secrets.url_token(12)}",
            shared_secret_sealed=seal(secret_key, issued_secret),
        )
        session.add(consumer)
    else:
        consumer = existing
        found = await session.get(CommonsAccount, consumer.account_id)
        assert found is not None
        account = found
        consumer.name = name
        if account_name:
            account.name = account_name.strip()
        if shared_secret is not None:
            consumer.shared_secret_sealed = seal(secret_key, shared_secret)
    apply_account_settings(account, settings or {})
    await session.flush()
    return IssuedConsumer(consumer, account, issued_secret)


def apply_account_settings(account: CommonsAccount, settings: dict[str, Any]) -> None:
    unknown = set(settings) - {*ACCOUNT_SETTINGS, "state_standard"}
    if unknown:
        raise CommonsAdminError(f"unknown account settings: {', '.join(sorted(unknown))}")
    for name in ACCOUNT_SETTINGS:
        if name in settings:
            if not isinstance(settings[name], bool):
                raise CommonsAdminError(f"{name} must be true or false")
            setattr(account, name, settings[name])
    if "state_standard" in settings:
        value = settings["state_standard"]
        if not isinstance(value, str) or not STATE_STANDARD.match(value):
            raise CommonsAdminError("state_standard must be NONE or a two-letter state code")
        account.state_standard = value


async def list_consumers(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(LtiConsumer, CommonsAccount)
        .join(CommonsAccount, CommonsAccount.id == LtiConsumer.account_id)
        .order_by(LtiConsumer.id)
    )
    return [IssuedConsumer(consumer, account, None).summary() for consumer, account in rows]


async def add_curator(
    session: AsyncSession, *, consumer_key: str, canvas_user_id: str, canvas_api_domain: str
) -> bool:
    """Make a user who has launched Commons a curator of their account; False if already one."""
    consumer = await session.scalar(select(LtiConsumer).where(LtiConsumer.consumer_key == consumer_key))
    if consumer is None:
        raise CommonsAdminError(f"no consumer with key {consumer_key}")
    user = await session.scalar(
        select(CommonsUser).where(
            CommonsUser.account_id == consumer.account_id,
            CommonsUser.canvas_user_id == canvas_user_id,
            CommonsUser.canvas_api_domain == canvas_api_domain.lower(),
        )
    )
    if user is None:
        raise CommonsAdminError("that user has never launched Commons for this account")
    found = await session.scalar(
        select(CommonsCurator.id).where(
            CommonsCurator.account_id == consumer.account_id, CommonsCurator.user_id == user.id
        )
    )
    if found is not None:
        return False
    session.add(CommonsCurator(account_id=consumer.account_id, user_id=user.id))
    await session.flush()
    return True
