"""Canvas's external tools (``ContextExternalTool``): LTI 1.1 tools installed in the root account.

The tool's shared secret signs launches and the ``jwt_token`` JWTs, so it cannot be kept as a
digest; it is kept encrypted with a key derived (HKDF-SHA256) from ``LMSAUTH_SECRET_KEY``, as
``core.keys`` keeps signing keys.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core import clock
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


def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"lmsauth canvas lti secrets", info=b"fernet"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def unseal(secret_key: str, sealed: str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError(
            "an external tool's shared secret cannot be decrypted: LMSAUTH_SECRET_KEY differs "
            "from the one it was stored with"
        ) from exc


__all__ = ["PRIVACY_LEVELS", "ExternalTool", "seal", "unseal"]
