"""The access tokens of the LTI Advantage services (spec lti13.md 5.2, 5.3): what the
client-assertion grant issues and what the services accept.

Canvas signs them HS256 with its own encryption key, so only Canvas can read them; here the
key is derived (HKDF-SHA256) from ``LMSAUTH_SECRET_KEY``, which every instance shares. Claims:
``iss`` (the issuer), ``sub`` (the key's client id), ``aud`` (the token URL as the tool called
it), ``iat``, ``exp`` (one hour), ``jti``, ``scopes`` (a space-joined string) and, for an
account's key, ``canvas.instructure.com.account_uuid``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALGORITHM = "HS256"
# Spec 5.3 step 2: service endpoints refuse a token issued more than 60 minutes ago.
MAX_IAT_AGE_SECONDS = 3600


class ServiceTokenError(Exception):
    """Spec 5.3 step 2's 401 messages."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@lru_cache(maxsize=4)
def _signing_key(secret_key: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"lmsauth lti service tokens", info=b"hs256"
    ).derive(secret_key.encode())


def sign(secret_key: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, _signing_key(secret_key), algorithm=ALGORITHM)


def verify(secret_key: str, token: str, audiences: list[str], now: int) -> dict[str, Any]:
    """The token's claims, if Canvas's ``AdvantageAccessToken#validate!`` would take it:
    our HS256 signature, not expired, ``iss`` present, ``aud`` one of ``audiences`` (the token
    URL on the host of the request, or on this server's public URL: Canvas's
    ``lti_grant_host``), ``iat`` at most 60 minutes old."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise ServiceTokenError("Invalid access token format") from None
    if header.get("alg") != ALGORITHM:
        raise ServiceTokenError("Access token signature algorithm not allowed")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _signing_key(secret_key),
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        raise ServiceTokenError("Invalid access token signature") from None
    except jwt.PyJWTError:
        raise ServiceTokenError("Invalid access token format") from None
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
        raise ServiceTokenError("Access token expired")
    problems = []
    if not claims.get("iss"):
        problems.append("the following assertions are missing: iss")
    if not audience_matches(claims.get("aud"), audiences):
        problems.append("the 'aud' is invalid")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat < now - MAX_IAT_AGE_SECONDS:
        problems.append(f"the 'iat' must be less than {MAX_IAT_AGE_SECONDS} seconds old")
    if problems:
        raise ServiceTokenError("Invalid access token field/s: " + " | ".join(problems))
    return claims


def audience_matches(aud: Any, accepted: list[str]) -> bool:
    """``aud`` is one of ``accepted``, or an array holding one of them."""
    if isinstance(aud, str):
        return aud in accepted
    return isinstance(aud, list) and any(value in accepted for value in aud if isinstance(value, str))
