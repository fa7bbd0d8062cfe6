"""``POST /api/sessions``: trade the JWT Canvas signed for this user (spec C3, C6) for a session.

Canvas signs the JWT with HS256 and the tool's LTI shared secret, and puts in it the LTI 1.1
launch parameters, ``consumer_key`` and ``iat``, but no ``exp`` (spec C6). So Commons finds the
secret by ``consumer_key``, then verifies; bounds the JWT's age by ``iat`` against
``core.clock`` (PyJWT's own time checks read the system clock and are switched off); and
records the JWT under a unique key so that no instance accepts it twice.

That key is the digest of the signing input (``header.payload``), and each of the three parts
must be the canonical base64url of what it holds (``core.base64url``): PyJWT, as Ruby's JWT
gem, decodes leniently (padding, stray characters, set low bits of the last character), so one
JWT has many spellings that verify alike, and a guard keyed on the text let each of them open a
session. Canvas writes only canonical text, so this refuses nothing that Canvas issues.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lmsauth.commons import errors, sessions
from lmsauth.commons.models import CommonsSession, CommonsUser, LtiConsumer, UsedJwt
from lmsauth.commons.sealing import unseal
from lmsauth.commons.settings import CommonsSettings
from lmsauth.core import base64url, clock, secrets
from lmsauth.core.db import Database

MAX_JWT_LENGTH = 16_384
_NO_TIME_CHECKS = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False}


def _signing_input(token: str) -> str:
    """``header.payload`` of a JWT whose three parts are canonical base64url, else refused."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        for part in parts:
            base64url.decode(part)
    except ValueError as exc:
        raise errors.invalid_jwt("The jwt_token is not a well-formed JWT.") from exc
    return f"{parts[0]}.{parts[1]}"


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise errors.invalid_jwt("The jwt_token is not a well-formed JWT.") from exc
    if header.get("alg") != "HS256":
        raise errors.invalid_jwt("The jwt_token must be signed with HS256, as Canvas signs it.")
    return claims


def _issued_at(claims: dict[str, Any], settings: CommonsSettings) -> datetime:
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise errors.invalid_jwt("The JWT has no numeric iat claim.")
    try:
        issued = datetime.fromtimestamp(iat, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise errors.invalid_jwt("The JWT's iat is out of range.") from exc
    now = clock.now()
    if issued > now + settings.clock_skew:
        raise errors.jwt_from_future()
    if issued < now - settings.jwt_max_age:
        raise errors.jwt_expired(settings.jwt_max_age_seconds)
    return issued


async def create_session(
    db: Database, settings: CommonsSettings, secret_key: str, token: str
) -> tuple[str, CommonsSession]:
    """Verify ``token`` and start a session; raises a Commons ``WireError`` on refusal."""
    if len(token) > MAX_JWT_LENGTH:
        raise errors.invalid_jwt("The jwt_token is too long.")
    signing_input = _signing_input(token)
    claims = _unverified_claims(token)
    consumer_key = claims.get("consumer_key")
    if not isinstance(consumer_key, str) or not consumer_key:
        raise errors.invalid_jwt("The JWT has no consumer_key claim.")
    async with db.session() as session:
        consumer = await session.scalar(select(LtiConsumer).where(LtiConsumer.consumer_key == consumer_key))
    if consumer is None:
        raise errors.unknown_consumer()
    try:
        with warnings.catch_warnings():
            # The secret's length is the consumer's choice, as in Canvas: no warning per request.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            claims = jwt.decode(
                token,
                unseal(secret_key, consumer.shared_secret_sealed),
                algorithms=["HS256"],
                options=_NO_TIME_CHECKS,  # type: ignore[arg-type]
            )
    except jwt.InvalidSignatureError as exc:
        raise errors.invalid_jwt("The JWT's signature does not match the consumer's shared secret.") from exc
    except jwt.PyJWTError as exc:
        raise errors.invalid_jwt("The jwt_token cannot be verified.") from exc
    issued = _issued_at(claims, settings)
    canvas_user_id, domain = claims.get("custom_canvas_user_id"), claims.get("custom_canvas_api_domain")
    if not isinstance(canvas_user_id, str) or not isinstance(domain, str):
        raise errors.invalid_jwt(
            "The JWT lacks custom_canvas_user_id or custom_canvas_api_domain: the Commons external "
            "tool's privacy level must be public."
        )
    try:
        async with db.session(write=True) as session:
            user = await session.scalar(
                select(CommonsUser).where(
                    CommonsUser.account_id == consumer.account_id,
                    CommonsUser.canvas_api_domain == domain.lower(),
                    CommonsUser.canvas_user_id == canvas_user_id,
                )
            )
            if user is None:
                raise errors.never_launched()
            if user.terms_accepted_at is None:
                raise errors.terms_not_accepted()
            session.add(
                UsedJwt(
                    digest=secrets.digest(signing_input),
                    expires_at=issued + settings.jwt_max_age + settings.clock_skew,
                )
            )
            await session.flush()
            row, sid = await sessions.start(
                session, user=user, origin="api", lifetime_seconds=settings.session_lifetime_seconds
            )
    except IntegrityError as exc:
        raise errors.jwt_replayed() from exc
    return sid, row
