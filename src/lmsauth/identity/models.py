"""The Identity Service's one table: institutions' client credentials (ClientID + Secret)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core import clock
from lmsauth.core.db import Base, UTCDateTime


class IdentityClient(Base):
    """A key made at identity.instructure.com: ``<region>#<uuid>`` plus a secret (kept as a digest).

    ``principal`` is the institution the key acts for and ``partner`` the Instructure partner
    it was issued to, if any; both travel in the token's scope (spec A4). A client opens one
    ``service`` (``dap``) until it is revoked (``active`` false) or ``expires_at`` passes.
    """

    __tablename__ = "identity_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(80), unique=True)
    secret_digest: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    principal: Mapped[str] = mapped_column(String(255))
    partner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    region: Mapped[str] = mapped_column(String(32))
    service: Mapped[str] = mapped_column(String(32), default="dap")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def usable_at(self, moment: datetime) -> bool:
        return client_usable(self.active, self.expires_at, moment)


def client_usable(active: bool, expires_at: datetime, moment: datetime) -> bool:
    """Not revoked and not yet expired: the one rule for login and for every DAP call."""
    return active and moment < expires_at


__all__ = ["IdentityClient", "client_usable"]
