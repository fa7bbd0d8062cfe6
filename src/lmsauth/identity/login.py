"""``POST /ids/auth/login``: client credentials for a DAP access token (spec A1 to A5).

Malformed requests (no Basic header, bad base64, a wrong ``grant_type``) get 400 before the
credentials are looked at. Bad credentials get one 401 whatever was wrong, and the secret is
always digested and compared, against a dummy digest for an unknown id, so neither the body
nor the time taken tells an unknown client id from a wrong secret. Only a caller who proved
the secret learns that the client was revoked or has expired.

Rate limits (``core.ratelimit.ClientAuthLimits``): a client's budget is spent only by requests
that proved its secret; failures are counted per client address and per client id, the same
for unknown ids, so outsiders who know a client id cannot use up the real client's budget.
"""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request
from starlette.responses import Response

from lmsauth.core import clock, secrets
from lmsauth.core.db import Database
from lmsauth.core.errors import BadParameters, WireError
from lmsauth.core.keys import ALGORITHM, UNREAD_GENERATION, KeyRing
from lmsauth.core.ratelimit import RateLimits
from lmsauth.core.web import MAX_PARAM_LENGTH, ORJSONResponse, client_ip, read_params
from lmsauth.identity import tokens
from lmsauth.identity.clients import find_client, find_client_and_generation
from lmsauth.identity.errors import bad_request, too_many_requests, unauthorized

GRANT_TYPE = "client_credentials"
# Compared against when the client id is unknown, so both paths cost one digest comparison.
_DUMMY_DIGEST = secrets.digest(secrets.url_token(32))


def basic_credentials(header: str | None) -> tuple[str, str]:
    """RFC 7617 section 2: ``Basic base64(id:secret)``, split at the *first* colon.

    Hand-written because Starlette has no parser for it and ten lines do not warrant a
    dependency (werkzeug's). The id may hold ``#`` (``us-east-1#<uuid>``); the secret may
    hold colons.
    """
    if not header:
        raise BadParameters("Missing Authorization header: send the client ID and secret with HTTP Basic.")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise BadParameters("The Authorization header must use the Basic scheme.")
    encoded = encoded.strip()
    if not encoded or len(encoded) > MAX_PARAM_LENGTH:
        raise BadParameters("The Basic credentials are missing or too long.")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadParameters("The Basic credentials are not valid base64 of UTF-8 text.") from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or not secret:
        raise BadParameters("The Basic credentials must be CLIENT_ID:SECRET, both non-empty.")
    return client_id, secret


class IdentityLogin:
    """The token endpoint; holds what it needs from the composed app."""

    def __init__(
        self,
        db: Database,
        keyring: KeyRing,
        public_url: str,
        limits: RateLimits,
        signing_alg: str = ALGORITHM,
    ) -> None:
        self.db = db
        self.keyring = keyring
        self.public_url = public_url
        self.limits = limits
        self.signing_alg = signing_alg

    async def login(self, request: Request) -> Response:
        try:
            return await self._login(request)
        except WireError as exc:
            return exc.response()

    async def _login(self, request: Request) -> Response:
        try:
            client_id, secret = basic_credentials(request.headers.get("authorization"))
            grant_type = (await read_params(request, query=False)).get("grant_type")
        except BadParameters as exc:
            raise bad_request(exc.message) from exc
        if grant_type != GRANT_TYPE:
            shown = "missing" if grant_type is None else "not supported"
            raise bad_request(f"grant_type is {shown}: only {GRANT_TYPE} is accepted.")
        # An address past its failure limit is refused before anything is checked; a client's
        # own budget is spent only by requests that prove they are it (``ClientAuthLimits``).
        address = client_ip(request)
        refused = self.limits.client_auth.refused(address)
        if refused is not None:
            raise too_many_requests(refused.retry_after)
        if self.keyring.generation_in_database:  # one round trip for the client and the ring
            client, generation = await find_client_and_generation(self.db, client_id, self.keyring.ring)
        else:
            client, generation = await find_client(self.db, client_id), UNREAD_GENERATION
        matches = secrets.same(secrets.digest(secret), client.secret_digest if client else _DUMMY_DIGEST)
        if client is None or not matches:
            # Ids match the stored text exactly, so the text is the canonical id: an unknown id
            # is counted like a known one, and a 429 says nothing about whether it exists.
            failed = await self.limits.client_auth.failed(address, f"identity:{client_id}")
            if not failed.allowed:
                raise too_many_requests(failed.retry_after)
            raise unauthorized("Invalid client ID or secret.")
        limited = await self.limits.client_auth.authenticated(f"identity:{client.client_id}")
        if not limited.allowed:
            raise too_many_requests(limited.retry_after)
        if not client.active:
            raise unauthorized("This client has been revoked.")
        if not client.usable_at(clock.now()):
            raise unauthorized("This client has expired.")
        token, scope = await tokens.issue(
            self.keyring, client, self.public_url, alg=self.signing_alg, generation=generation
        )
        return ORJSONResponse(
            {
                "access_token": token,
                "expires_in": tokens.TOKEN_LIFETIME_SECONDS,
                "scope": scope,
                "token_type": "bearer",
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},  # RFC 6749 5.1
        )
