"""The Canvas REST API endpoints lmsauth serves, behind Bearer authentication (spec 7)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas import scopes as scope_rules
from lmsauth.canvas.bearer import Bearer, BearerUser, authenticate, needs_touch, touch
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.errors import (
    add_quota_headers,
    bad_request,
    insufficient_scopes,
    invalid_access_token,
    rate_limit_exceeded,
    unauthenticated,
)
from lmsauth.canvas.models import User
from lmsauth.canvas.oauth2 import bearer_token
from lmsauth.canvas.people.api import PeopleApi
from lmsauth.canvas.people.users import parse_id
from lmsauth.core.errors import BadParameters, WireError
from lmsauth.core.web import ORJSONResponse, Params, read_params

Handler = Callable[[Request, Bearer, Params], Awaitable[Response]]


def user_profile(user: User | BearerUser, includes: set[str]) -> dict[str, Any]:
    """``users#api_show`` for the caller (spec 7.5)."""
    body: dict[str, Any] = {
        "id": user.id,
        "name": user.name,
        "created_at": user.created_at.isoformat().replace("+00:00", "Z"),
        "sortable_name": user.sortable_name,
        "short_name": user.short_name,
        "locale": user.locale,
        "effective_locale": user.locale or "en",
        "permissions": {
            "can_update_name": True,
            "can_update_avatar": False,
            "limit_parent_app_web_access": False,
        },
    }
    if user.avatar_url:
        body["avatar_url"] = user.avatar_url
    if user.email:
        body["email"] = user.email
    if "uuid" in includes:
        body["uuid"] = user.uuid
    return body


class CanvasApi:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx
        self.people = PeopleApi(ctx)

    def protected(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Spec 7.1 to 7.4: find the Bearer token, check it, enforce ``url:`` scopes."""

        async def endpoint(request: Request) -> Response:
            try:
                params = await read_params(request)
                presented = bearer_token(request, params)
            except BadParameters as exc:
                return bad_request(exc.message).response()
            if not presented:
                return unauthenticated().response()
            bearer = await authenticate(self.ctx.db, presented)
            if bearer is None:
                return invalid_access_token(strict=self.ctx.strict).response()
            # Spec 7.3: Canvas's leaky bucket per access token, one store call.
            bucket = self.ctx.limits.per_token
            throttle = await bucket.hit(str(bearer.token.id))
            if not throttle.allowed:
                return rate_limit_exceeded(self.ctx.settings.rate_limit_api_status, throttle, bucket.cost)
            if bearer.key.require_scopes and not scope_rules.allows(
                bearer.token.scopes, request.method, request.url.path
            ):
                response = insufficient_scopes().response()
            else:
                response = await self._answer(handler, request, bearer, params)
            add_quota_headers(response, throttle, bucket.cost)
            return response

        return endpoint

    async def _answer(self, handler: Handler, request: Request, bearer: Bearer, params: Params) -> Response:
        if needs_touch(bearer.token):
            await touch(self.ctx.db, bearer.token)
        try:
            return await handler(request, bearer, params)
        except WireError as exc:
            return exc.response()
        except BadParameters as exc:
            return bad_request(exc.message).response()

    async def show_user(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/v1/users/:id: ``self`` is the caller, answered from the token's read alone;
        any other id is the Users API's (``people.api``: the user themself or an admin)."""
        raw = request.path_params["user_id"]
        includes = set(_include_values(params))
        if raw == "self" or parse_id(raw) == bearer.user.id:
            return ORJSONResponse(user_profile(bearer.user, includes))
        return await self.people.show_user(bearer, raw, includes)


def _include_values(params: Params) -> list[str]:
    return params.get_all("include[]") + params.get_all("include")
