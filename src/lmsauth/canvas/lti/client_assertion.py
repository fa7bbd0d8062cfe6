"""``client_credentials`` with a client assertion at ``/login/oauth2/token``: the asymmetric
variant of spec canvas_oauth2.md 5.6, with which LTI 1.3 tools buy tokens for the LTI Advantage
services (spec lti13.md 5).

The tool sends no client id or secret: ``client_assertion_type`` is
``urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and ``client_assertion`` a JWT it
signed with its own key. Canvas's checks, in order:

1. The key is the assertion's unverified ``sub``; unknown or inactive: 401 ``invalid_client``
   "unknown client" (an assertion that is not a JWT names no key either).
2. The signature, with the key's ``public_jwk`` (``kid`` ignored) or the JWK Set at its
   ``public_jwk_url`` (``kid`` must match): ``JWS signature invalid.``, ``JWK Error: ...``.
3. The claims (``Canvas::Security::JwtValidator``), every failure in one message joined with
   `` | ``: ``sub aud exp iat jti`` and ``iss`` required; ``aud`` is (or, an array, contains)
   the token URL exactly as the tool called it; ``exp`` not past; ``iat`` at most 300 s old
   and at most 30 s ahead. ``jti`` is not checked for replay (``skip_jti_check``), as in Canvas.
4. The scopes: required, and all of them the key's (400 ``invalid_scope``).

Every refusal of steps 1 to 3 is a failed client authentication for ``core.ratelimit``.
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from starlette.requests import Request

from lmsauth.canvas import scopes as scope_rules
from lmsauth.canvas import tokens
from lmsauth.canvas.client_auth import ClientCredentials, ClientGate
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.errors import oauth_error, unknown_client
from lmsauth.canvas.keys import client_credentials as symmetric
from lmsauth.canvas.lti import service_tokens
from lmsauth.canvas.lti.tool_keys import JwkError, NoKey, ToolKeys
from lmsauth.canvas.models import Account, DeveloperKey
from lmsauth.core import clock
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import Params

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REQUIRED_CLAIMS = ("sub", "aud", "exp", "iat", "jti", "iss")
IAT_MAX_AGE_SECONDS = 300  # Canvas's Setting oauth2_jwt_iat_ago_in_seconds
IAT_MAX_FUTURE_SECONDS = 30
SIGNATURE_INVALID = "JWS signature invalid."


def is_assertion_request(grant_type: str | None, params: Params) -> bool:
    return grant_type == "client_credentials" and params.get("client_assertion_type") == JWT_BEARER


def token_url_as_called(request: Request) -> str:
    """Canvas's ``oauth2_token_url(host: request.host_with_port, protocol: request.protocol)``."""
    return f"{request.url.scheme}://{request.url.netloc}{symmetric.TOKEN_PATH}"


def tool_keys(ctx: CanvasContext) -> ToolKeys:
    allow = ctx.settings.lti_allow_private_jwk_urls or ctx.settings.emulator
    return ToolKeys(ctx.store, allow_private=allow)


def unverified_subject(assertion: str | None) -> str | None:
    if not assertion:
        return None
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub")
    if isinstance(sub, int) and not isinstance(sub, bool):
        return str(sub)
    return sub if isinstance(sub, str) else None


async def assertion_errors(keys: ToolKeys, key: DeveloperKey, assertion: str, expected_aud: str) -> list[str]:
    """Steps 2 and 3: the messages of everything wrong with the assertion, or none."""
    try:
        header = jwt.get_unverified_header(assertion)
        kid = header.get("kid")
        verifier = await keys.verification_key(key, kid if isinstance(kid, str) else None)
        claims: dict[str, Any] = jwt.decode(
            assertion,
            verifier.key,
            algorithms=[verifier.algorithm_name],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except JwkError as exc:
        return [f"JWK Error: {exc.message}"]
    except (NoKey, jwt.PyJWTError):
        return [SIGNATURE_INVALID]
    return claim_errors(claims, expected_aud, clock.timestamp())


def claim_errors(claims: dict[str, Any], expected_aud: str, now: int) -> list[str]:
    """``JwtValidator`` with ``require_iss`` and ``skip_jti_check`` (spec 5.6)."""
    errors = []
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        errors.append(f"the following assertions are missing: {','.join(missing)}")
    if "aud" in claims and not service_tokens.audience_matches(claims["aud"], [expected_aud]):
        errors.append("the 'aud' is invalid")
    if "exp" in claims:
        exp = claims["exp"]
        if not _number(exp):
            errors.append("the 'exp' must be a number")
        elif exp < now:
            errors.append("the JWT has expired")
    if "iat" in claims:
        iat = claims["iat"]
        if not _number(iat):
            errors.append("the 'iat' must be a number")
        elif iat < now - IAT_MAX_AGE_SECONDS:
            errors.append(f"the 'iat' must be less than {IAT_MAX_AGE_SECONDS} seconds old")
        elif iat > now + IAT_MAX_FUTURE_SECONDS:
            errors.append("the 'iat' must not be in the future")
    return errors


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


async def grant(ctx: CanvasContext, request: Request, params: Params) -> dict[str, Any]:
    """The token answer, or the ``WireError`` of the first failing step."""
    try:
        assertion = params.get("client_assertion")
        requested = scope_rules.parse(params.get("scope") or params.get("scopes"))
    except BadParameters as exc:
        raise oauth_error("invalid_request", exc.message) from exc
    subject = unverified_subject(assertion)
    gate = ClientGate(ctx.limits, request, ClientCredentials(subject, (), False))
    gate.check_address()
    async with ctx.db.session(write=True) as session:
        key = await tokens.find_active_key(session, subject)
        if key is None or assertion is None:
            raise await gate.failed(unknown_client())
        audience = token_url_as_called(request)
        errors = await assertion_errors(tool_keys(ctx), key, assertion, audience)
        if errors:
            raise await gate.failed(oauth_error("invalid_request", " | ".join(errors)))
        await gate.spend(key)
        missing = scope_rules.not_granted(requested, list(key.scopes))
        if missing is not None:
            raise oauth_error("invalid_scope", scope_rules.invalid_scope_description(missing))
        owner = await session.get(Account, key.account_id) if key.account_id is not None else None
        return await issue(ctx, key, owner, audience, requested)


async def issue(
    ctx: CanvasContext, key: DeveloperKey, owner: Account | None, audience: str, scopes: list[str]
) -> dict[str, Any]:
    """Canvas's ``DeveloperKey#issue_token``: HS256 with the server's own key, or RS256 from
    the key ring (verifiable at ``/login/oauth2/jwks``) for a key whose
    ``client_credentials_audience`` is ``external``."""
    now = clock.timestamp()
    scope = " ".join(scopes)
    claims: dict[str, Any] = {
        "iss": symmetric.issuer(ctx.settings.public_url),
        "sub": key.client_id,
        "aud": audience,
        "iat": now,
        "exp": now + symmetric.TOKEN_LIFETIME_SECONDS,
        "jti": str(uuid.uuid4()),
        "scopes": scope,
    }
    if owner is not None:
        claims["canvas.instructure.com"] = {"account_uuid": owner.uuid}
    if key.client_credentials_audience == "external":
        token = await ctx.keyring.sign_latest(claims)
    else:
        token = service_tokens.sign(ctx.settings.resolved_secret_key, claims)
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": symmetric.TOKEN_LIFETIME_SECONDS,
        "scope": scope,
    }
