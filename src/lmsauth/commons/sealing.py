"""LTI shared secrets at rest.

An LTI 1.1 secret keys an HMAC, so unlike client secrets it cannot be kept as a digest
(DESIGN.md, secrets at rest). It is kept encrypted instead, with a Fernet key derived
(HKDF-SHA256) from ``LMSAUTH_SECRET_KEY``, the way ``core.keys`` keeps signing keys.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"lmsauth commons lti secrets"


def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=b"fernet").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def unseal(secret_key: str, sealed: str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError(
            "an LTI shared secret cannot be decrypted: LMSAUTH_SECRET_KEY differs from the one "
            "it was stored with"
        ) from exc
