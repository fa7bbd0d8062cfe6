"""Commons consumers' LTI shared secrets at rest (see ``core.sealing``): an LTI 1.1 secret
keys an HMAC, so unlike client secrets it cannot be kept as a digest."""

from __future__ import annotations

from lmsauth.core import sealing

_PURPOSE = b"lmsauth commons lti secrets"


def seal(secret_key: str, plaintext: str) -> str:
    return sealing.seal(secret_key, _PURPOSE, plaintext.encode())


def unseal(secret_key: str, sealed: str) -> str:
    return sealing.unseal(secret_key, _PURPOSE, sealed, what="an LTI shared secret").decode()
