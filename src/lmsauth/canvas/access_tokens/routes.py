"""The routes of people's own tokens, mounted by ``canvas/routes.py``."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from lmsauth.canvas.access_tokens.api import AccessTokensApi
from lmsauth.canvas.access_tokens.pages import ProfilePages
from lmsauth.canvas.api import CanvasApi
from lmsauth.canvas.context import CanvasContext


def access_token_routes(ctx: CanvasContext, api: CanvasApi) -> list[BaseRoute]:
    tokens = AccessTokensApi(ctx)
    pages = ProfilePages(ctx)
    one = "/api/v1/users/{user_id}/tokens/{id}"
    return [
        Route(
            "/api/v1/users/{user_id}/user_generated_tokens",
            api.protected(tokens.list_user_generated),
            methods=["GET"],
        ),
        Route("/api/v1/users/{user_id}/tokens", api.protected(tokens.create), methods=["POST"]),
        Route(one, api.protected(tokens.show), methods=["GET"]),
        Route(one, api.protected(tokens.update), methods=["PUT"]),
        Route(one, api.protected(tokens.delete), methods=["DELETE"]),
        Route("/profile/settings", pages.settings, methods=["GET"]),
        Route("/profile/tokens/new", pages.new_token_form, methods=["GET"]),
        Route("/profile/tokens", pages.create, methods=["POST"]),
        Route("/profile/tokens/{token_id}", pages.details, methods=["GET"]),
        Route("/profile/tokens/{token_id}/regenerate", pages.regenerate, methods=["POST"]),
        Route("/profile/tokens/{token_id}/delete", pages.delete, methods=["POST"]),
    ]
