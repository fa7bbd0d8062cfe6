"""Secrets at rest that must be readable again (signing keys, LTI shared secrets).

A value that only needs checking is kept as a digest (``core.secrets``); one that keys an
HMAC or a signature cannot be, so it is encrypted with Fernet under a key derived (HKDF-SHA256)
from ``LMSAUTH_SECRET_KEY``. Each use names its own ``purpose``, which salts the derivation,
so a value sealed for one purpose never opens as another.

The same sealing also carries short-lived state through a browser (``seal_at`` and
``unseal_fresh``, e.g. the Canvas login form's state): Fernet authenticates what it encrypts
and records when, so an altered or expired value does not open.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class UnsealError(RuntimeError):
    """A sealed value does not open: ``LMSAUTH_SECRET_KEY`` differs from the one it was sealed with."""


@lru_cache(maxsize=16)
def _fernet(secret_key: str, purpose: bytes) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=purpose, info=b"fernet").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret_key: str, purpose: bytes, plaintext: bytes) -> str:
    return _fernet(secret_key, purpose).encrypt(plaintext).decode()


def unseal(secret_key: str, purpose: bytes, sealed: str, *, what: str = "a stored secret") -> bytes:
    try:
        return _fernet(secret_key, purpose).decrypt(sealed.encode())
    except InvalidToken as exc:
        raise UnsealError(
            f"{what} cannot be decrypted: LMSAUTH_SECRET_KEY differs from the one it was stored with"
        ) from exc


def seal_at(secret_key: str, purpose: bytes, plaintext: bytes, now: datetime) -> str:
    """Seal ``plaintext`` with ``now`` (``core.clock``) as its issue time, for ``unseal_fresh``."""
    return _fernet(secret_key, purpose).encrypt_at_time(plaintext, int(now.timestamp())).decode()


def unseal_fresh(
    secret_key: str, purpose: bytes, sealed: str, *, max_age: timedelta, now: datetime
) -> bytes | None:
    """What ``seal_at`` sealed no longer than ``max_age`` before ``now``; None for a value that
    is older, altered, sealed under another key or purpose, or not a sealed value at all."""
    try:
        return _fernet(secret_key, purpose).decrypt_at_time(
            sealed.encode(), int(max_age.total_seconds()), int(now.timestamp())
        )
    except InvalidToken:
        return None
