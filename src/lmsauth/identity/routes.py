"""The Identity Service's routes: its one public surface towards ``app.py``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lmsauth.core.db import Database
from lmsauth.core.keys import KeyRing
from lmsauth.core.ratelimit import RateLimits
from lmsauth.identity.errors import METHOD_NOT_ALLOWED, NOT_FOUND, ids_error
from lmsauth.identity.login import IdentityLogin
from lmsauth.settings import Settings

LOGIN_PATH = "/ids/auth/login"
# Starlette routes a function endpoint for GET only unless told otherwise.
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# The real service publishes no key set (spec A3: clients never verify), so we choose the
# RFC 8615 well-known location under the service's root.
JWKS_PATH = "/ids/.well-known/jwks.json"
JWKS_MAX_AGE = 300  # short, though core.keys publishes a new key well before it signs


def identity_routes(
    settings: Settings, db: Database, keyring: KeyRing, limits: RateLimits
) -> list[BaseRoute]:
    login = IdentityLogin(db, keyring, settings.public_url, limits, settings.identity_signing_alg)

    async def jwks(request: Request) -> Response:
        # Every published key: the identity tokens' algorithm, and keys of one no longer chosen
        # until they retire (the same ring's RS256 keys sign Canvas's JWTs).
        return JSONResponse(
            await keyring.published_jwks(), headers={"Cache-Control": f"max-age={JWKS_MAX_AGE}"}
        )

    async def wrong_method(request: Request) -> Response:
        # Registered after the POST route: Starlette prefers a full match over its own 405.
        return ids_error(405, METHOD_NOT_ALLOWED, "Use POST.", {"Allow": "POST"}).response()

    async def unknown(request: Request) -> Response:
        return ids_error(404, NOT_FOUND, "No such Identity Service endpoint.").response()

    return [
        Route(LOGIN_PATH, login.login, methods=["POST"]),
        Route(LOGIN_PATH, wrong_method, methods=ANY_METHOD),
        Route(JWKS_PATH, jwks, methods=["GET"]),
        Route("/ids/{path:path}", unknown, methods=ANY_METHOD),
    ]
