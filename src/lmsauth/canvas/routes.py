"""The Canvas service's routes: its one public surface towards ``app.py``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lmsauth.canvas.access_tokens.routes import access_token_routes
from lmsauth.canvas.api import CanvasApi
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.courses.gradebook_pages import gradebook_routes
from lmsauth.canvas.courses.routes import course_routes
from lmsauth.canvas.keys.routes import developer_key_routes
from lmsauth.canvas.login import LoginPages
from lmsauth.canvas.lti.routes import lti_routes
from lmsauth.canvas.lti.service_routes import lti_service_routes
from lmsauth.canvas.oauth2 import OAuth2Provider
from lmsauth.canvas.people.routes import people_routes
from lmsauth.canvas.revocation import TokenRevocation
from lmsauth.canvas.tools import ExternalTools
from lmsauth.core.keys import ALGORITHM

JWKS_MAX_AGE = 864000  # Canvas's public_jwk_cache_age_in_seconds default (10 days)


def canvas_routes(ctx: CanvasContext) -> list[BaseRoute]:
    provider = OAuth2Provider(ctx)
    login = LoginPages(ctx, provider)
    api = CanvasApi(ctx)
    tools = ExternalTools(ctx)
    revocation = TokenRevocation(ctx)

    async def jwks(request: Request) -> Response:
        return JSONResponse(
            # Canvas's own set: its RS256 keys (an identity key of another algorithm is
            # published by the Identity Service's set only)
            await ctx.keyring.published_jwks((ALGORITHM,)),
            headers={"Cache-Control": f"max-age={JWKS_MAX_AGE}"},
        )

    async def metadata(request: Request) -> Response:
        """RFC 8414 authorization server metadata. No ``scopes_supported``: Canvas's scopes
        are each key's own list, and ``/auth/userinfo`` yields no access token."""
        base = ctx.settings.public_url
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/login/oauth2/auth",
                "token_endpoint": f"{base}/login/oauth2/token",
                "jwks_uri": f"{base}/login/oauth2/jwks",
                "revocation_endpoint": f"{base}/login/oauth2/revoke",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                    "none",
                ],
                "revocation_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                    "none",
                ],
                "code_challenge_methods_supported": ["S256"],
                "prompt_values_supported": ["none", "login"],
            }
        )

    # The hot routes first: Starlette tries routes in order.
    return [
        Route("/api/v1/users/{user_id}", api.protected(api.show_user), methods=["GET"]),
        Route("/api/lti/accounts/{account_id}/jwt_token", api.protected(tools.jwt_token), methods=["GET"]),
        Route("/login/oauth2/token", provider.token, methods=["POST"]),
        Route("/login/oauth2/token", provider.revoke, methods=["DELETE"]),
        Route("/login/oauth2/revoke", revocation.revoke, methods=["POST"]),
        Route("/", login.home, methods=["GET"]),
        Route("/login", login.login_redirect, methods=["GET"]),
        Route("/login/canvas", login.login_form, methods=["GET"]),
        Route("/login/canvas", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/login/oauth2/auth", provider.authorize, methods=["GET"]),
        Route("/login/oauth2/confirm", provider.confirm, methods=["GET"]),
        Route("/login/oauth2/accept", provider.accept, methods=["POST"]),
        Route("/login/oauth2/deny", provider.deny, methods=["GET", "POST"]),
        Route("/login/oauth2/jwks", jwks, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Route("/accounts/{account_id}/external_tools", tools.tool_list, methods=["GET"]),
        Route("/accounts/{account_id}/external_tools/{tool_id}", tools.launch, methods=["GET"]),
        *access_token_routes(ctx, api),
        *developer_key_routes(ctx, api),
        *people_routes(api),
        *course_routes(ctx, api),
        *lti_routes(ctx),
        *lti_service_routes(ctx),
        *gradebook_routes(api),
    ]
