"""IDS access tokens: JWTs signed by the core key ring, and their verification.

They are RS256 by default; ``LMSAUTH_IDENTITY_SIGNING_ALG`` may choose ES256 or EdDSA, which
sign 10x faster. Nothing a client relies on changes (spec A2, A3): the real client decodes the
token without verifying it and reads ``exp`` only, and a verifier finds the key's ``alg`` in
the published set.

The real client reads only ``exp`` (spec A3) and never checks the signature; our own DAP API
does, so every check a resource server owes a bearer JWT (RFC 8725 section 3) lives here:
a fixed algorithm, a known ``kid``, the token type, issuer, audience, and an ``exp`` read
against ``core.clock`` rather than the wall clock PyJWT would use.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from lmsauth.core import clock, metrics
from lmsauth.core.keys import ALGORITHM, UNREAD_GENERATION, KeyRing

# Spec A2: the documented example, one second short of the hour the docs promise.
TOKEN_LIFETIME_SECONDS = 3599
# RFC 9068 section 2.1: the same key ring signs Canvas's JWTs; a distinct ``typ`` keeps one
# kind from being replayed as the other.
TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ("iss", "sub", "aud", "iat", "exp", "jti", "scope", "service", "principal", "region")


def issuer(public_url: str) -> str:
    """``iss``: the Identity Service's root on this server (the real value is unpublished)."""
    return f"{public_url}/ids"


def audience(public_url: str, service: str) -> str:
    """``aud``: the root URL of the service the token opens (RFC 8707 resource indicator)."""
    return f"{public_url}/{service}"


def scope_of(service: str, principal: str, partner: str | None, region: str) -> str:
    """Spec A4: ``SERVICE_ID principal:P partner:Q region:R``; no partner leaves ``partner:`` empty."""
    return f"{service} principal:{principal} partner:{partner or ''} region:{region}"


@dataclass(frozen=True)
class Grant:
    """What a verified token says: who holds it and what it opens."""

    client_id: str
    service: str
    principal: str
    partner: str | None
    region: str
    scope: str
    expires_at: int
    jti: str


class TokenRefused(Exception):
    """The bearer token cannot be used; ``expired`` tells an old token from a bad one."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.expired = expired


class TokenSubject(Protocol):
    """What a token says about its client (an ``IdentityClient`` row or a ``ClientRecord``)."""

    @property
    def client_id(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def principal(self) -> str: ...
    @property
    def partner(self) -> str | None: ...
    @property
    def region(self) -> str: ...


async def issue(
    keyring: KeyRing,
    client: TokenSubject,
    public_url: str,
    alg: str = ALGORITHM,
    *,
    generation: object = UNREAD_GENERATION,
) -> tuple[str, str]:
    """A fresh token for ``client``, signed by the ``alg`` key that signs now on every
    instance; returns ``(token, scope)``. ``generation``: the key ring's, if read with the
    client."""
    now = clock.timestamp()
    scope = scope_of(client.service, client.principal, client.partner, client.region)
    claims: dict[str, Any] = {
        "iss": issuer(public_url),
        "sub": client.client_id,
        "aud": audience(public_url, client.service),
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "jti": str(uuid.uuid4()),
        "scope": scope,
        "service": client.service,
        "principal": client.principal,
        "partner": client.partner,
        "region": client.region,
    }
    token = await keyring.sign_latest(claims, headers={"typ": TOKEN_TYPE}, alg=alg, generation=generation)
    metrics.token_issued("identity_jwt")
    return token, scope


async def verify(keyring: KeyRing, token: str, *, public_url: str, service: str) -> Grant:
    """The token's grant, or ``TokenRefused``. Does not look at the client's current state.
    Any key published now on any instance verifies (a key rotated in elsewhere included), with
    its own algorithm only (RFC 8725 section 3.1), so a key of an algorithm no longer chosen
    verifies the tokens it signed until it retires."""
    invalid = TokenRefused("Invalid access token.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise invalid from exc
    kid = header.get("kid")
    key = await keyring.latest_published_key(kid) if isinstance(kid, str) else None
    if key is None or header.get("typ") != TOKEN_TYPE:
        raise invalid
    try:
        claims = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=[key.alg],
            audience=audience(public_url, service),
            issuer=issuer(public_url),
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_exp": False,  # checked below against core.clock
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise invalid from exc
    grant = _grant(claims)
    if grant is None or grant.service != service:
        raise invalid
    if clock.timestamp() >= grant.expires_at:  # RFC 7519 4.1.4: valid only *before* exp
        raise TokenRefused("Access token has expired.", expired=True)
    return grant


def _grant(claims: dict[str, Any]) -> Grant | None:
    text = ("sub", "service", "principal", "region", "scope", "jti")
    if not all(isinstance(claims.get(name), str) for name in text):
        return None
    exp, partner = claims.get("exp"), claims.get("partner")
    if not isinstance(exp, int) or isinstance(exp, bool) or not (partner is None or isinstance(partner, str)):
        return None
    return Grant(
        client_id=claims["sub"],
        service=claims["service"],
        principal=claims["principal"],
        partner=partner,
        region=claims["region"],
        scope=claims["scope"],
        expires_at=exp,
        jti=claims["jti"],
    )
