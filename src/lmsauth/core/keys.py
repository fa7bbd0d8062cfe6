"""The signing key ring: RSA keys that sign JWTs, published as a JWKS.

Every key has a ``kid`` (Canvas's format, ``<ISO 8601 UTC>_<uuid>``) and is in the published
set before it signs anything. Private keys are encrypted at rest with a Fernet key derived
(HKDF-SHA256) from ``LMSAUTH_SECRET_KEY`` (``core.sealing``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from lmsauth.core import clock, sealing
from lmsauth.core.db import Base, Database, UTCDateTime

ALGORITHM = "RS256"


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(80), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), default=ALGORITHM)
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


_PURPOSE = b"lmsauth signing keys"


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    public_jwk: dict[str, Any]
    created_at: datetime


class KeyRing:
    """Holds the decrypted keys of one process; the database is the source of truth."""

    def __init__(self, db: Database, secret_key: str) -> None:
        self._db = db
        self._secret_key = secret_key
        self._keys: list[LoadedKey] = []

    async def load(self) -> None:
        """Read every unretired key, creating the first one if there is none."""
        async with self._db.session(write=True) as session:
            rows = await self._active_rows(session)
            if not rows:
                session.add(self._new_row())
                await session.flush()
                rows = await self._active_rows(session)
        self._keys = [self._decrypt(row) for row in rows]

    async def rotate(self) -> str:
        """Add a new key; it signs from now on, the older ones stay published."""
        async with self._db.session(write=True) as session:
            row = self._new_row()
            session.add(row)
        await self.load()
        return row.kid

    @staticmethod
    async def _active_rows(session: AsyncSession) -> list[SigningKey]:
        result = await session.scalars(
            select(SigningKey)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at, SigningKey.kid)
        )
        return list(result)

    def _new_row(self) -> SigningKey:
        now = clock.now()
        kid = f"{now.strftime('%Y-%m-%dT%H:%M:%SZ')}_{uuid.uuid4()}"
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
        public.pop("key_ops", None)  # RFC 7517 4.3: "use" and "key_ops" SHOULD NOT both appear
        public.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
        return SigningKey(
            kid=kid,
            alg=ALGORITHM,
            private_key_encrypted=sealing.seal(self._secret_key, _PURPOSE, pem),
            public_jwk=json.dumps(public, sort_keys=True),
            created_at=now,
        )

    def _decrypt(self, row: SigningKey) -> LoadedKey:
        pem = sealing.unseal(
            self._secret_key, _PURPOSE, row.private_key_encrypted, what=f"signing key {row.kid}"
        )
        # The key is our own and Fernet authenticated it, so OpenSSL's slow consistency check
        # (50-100 ms a key, at every start) proves nothing more.
        private_key = serialization.load_pem_private_key(
            pem, password=None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(private_key, rsa.RSAPrivateKey)
        return LoadedKey(row.kid, private_key, json.loads(row.public_jwk), row.created_at)

    @property
    def current(self) -> LoadedKey:
        if not self._keys:
            raise RuntimeError("key ring not loaded")
        return self._keys[-1]

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [key.public_jwk for key in self._keys]}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        key = self.current
        return jwt.encode(
            claims,
            key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": key.kid, **(headers or {})},
        )

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        for key in self._keys:
            if key.kid == kid:
                return key.private_key.public_key()
        return None
