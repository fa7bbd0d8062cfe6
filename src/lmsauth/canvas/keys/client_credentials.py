"""``grant_type=client_credentials`` at ``/login/oauth2/token`` (spec 5.6): a developer key
buys a JWT for itself, with no user.

Canvas chooses among three variants, in this order:

1. **Asymmetric** (LTI Advantage): ``client_assertion_type`` is
   ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and the key proves itself with a
   JWT signed by its own key pair: ``canvas.lti.client_assertion``, which the token endpoint
   tries first.
2. **Service user** (InstAccess tokens): this server has no service users.
3. **Symmetric**: ``client_id`` and ``client_secret``, allowed only for a key whose
   ``client_credentials_audience`` is ``external``; the answer is an RS256 JWT from the
   server's key ring, verifiable at ``/login/oauth2/jwks``. This is what ``grant`` serves.

The caller has already proved it is ``key``'s client (``canvas.client_auth``).
"""

from __future__ import annotations

import uuid
from typing import Any

from lmsauth.canvas import scopes as scope_rules
from lmsauth.canvas.errors import oauth_error
from lmsauth.canvas.models import Account, DeveloperKey
from lmsauth.core import clock
from lmsauth.core.keys import KeyRing
from lmsauth.core.web import Params

TOKEN_LIFETIME_SECONDS = 3600
TOKEN_PATH = "/login/oauth2/token"


def issuer(public_url: str) -> str:
    """``iss``: Canvas's ``lti_iss`` (``https://canvas.instructure.com`` on Instructure's
    cloud) is the Canvas install's own identity; here that is the server's public URL, the
    ``issuer`` of its authorization server metadata."""
    return public_url


def token_url(public_url: str) -> str:
    """``aud``: Canvas's ``oauth2_token_url``, where the token was bought."""
    return public_url + TOKEN_PATH


async def grant(
    keyring: KeyRing, public_url: str, key: DeveloperKey, account: Account | None, params: Params
) -> dict[str, Any]:
    """Spec 5.6, checks 3 to 5 (1 and 2, the key and its secret, are done): the assertion
    method, then the scopes, then the signed token. ``account`` is the key's owner, named in
    the token as Canvas does for an account's key."""
    if key.client_credentials_audience != "external":
        raise oauth_error("invalid_request", "assertion method not supported for this grant_type")
    requested = scope_rules.parse(params.get("scope") or params.get("scopes"))
    missing = scope_rules.not_granted(requested, list(key.scopes))
    if missing is not None:
        raise oauth_error("invalid_scope", scope_rules.invalid_scope_description(missing))
    now = clock.timestamp()
    scope = " ".join(requested)
    claims: dict[str, Any] = {
        "iss": issuer(public_url),
        "sub": key.client_id,
        "aud": token_url(public_url),
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "jti": str(uuid.uuid4()),
        "scopes": scope,
    }
    if account is not None:
        claims["canvas.instructure.com"] = {"account_uuid": account.uuid}
    token = await keyring.sign_latest(claims)
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_SECONDS,
        "scope": scope,
    }
