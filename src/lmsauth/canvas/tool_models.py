"""Canvas's external tools (``ContextExternalTool``): LTI 1.1 tools installed in the root account.

The tool's shared secret signs launches and the ``jwt_token`` JWTs, so it cannot be kept as a
digest; it is kept encrypted with a key derived (HKDF-SHA256) from ``LMSAUTH_SECRET_KEY``, as
``core.keys`` keeps signing keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core import clock, sealing
from lmsauth.core.db import Base, UTCDateTime

PRIVACY_LEVELS = ("anonymous", "name_only", "email_only", "public")


class ExternalTool(Base):
    __tablename__ = "external_tools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(4096))
    domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    consumer_key: Mapped[str] = mapped_column(String(255))
    shared_secret_sealed: Mapped[str] = mapped_column(Text)
    privacy_level: Mapped[str] = mapped_column(String(20), default="anonymous")
    custom_fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    workflow_state: Mapped[str] = mapped_column(String(20), default="active")
    # LTI 1.3: a tool installed from an LTI developer key ("By Client ID"), in the account or in
    # one course. Its deployment id is ``f"{id}:{context.lti_context_id}"`` (spec lti13.md 1.2).
    lti_version: Mapped[str] = mapped_column(String(8), default="1.1", server_default="1.1")
    developer_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("developer_keys.id", ondelete="CASCADE"), nullable=True, index=True
    )
    course_id: Mapped[int | None] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "domain": self.domain,
            "consumer_key": self.consumer_key,
            "privacy_level": self.privacy_level,
            "custom_fields": dict(self.custom_fields),
            "workflow_state": self.workflow_state,
        }


_PURPOSE = b"lmsauth canvas lti secrets"


def seal(secret_key: str, plaintext: str) -> str:
    """An external tool's shared secret at rest (see ``core.sealing``)."""
    return sealing.seal(secret_key, _PURPOSE, plaintext.encode())


def unseal(secret_key: str, sealed: str) -> str:
    return sealing.unseal(secret_key, _PURPOSE, sealed, what="an external tool's shared secret").decode()


__all__ = ["PRIVACY_LEVELS", "ExternalTool", "seal", "unseal"]
