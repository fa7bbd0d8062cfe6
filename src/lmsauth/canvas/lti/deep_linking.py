"""The deep linking response (spec lti13.md 8): ``POST /courses/:course_id/deep_linking_response``.

The tool's browser posts its signed ``JWT``; the key is found by the JWT's ``iss`` (the client
id) and the signature verified with the tool's ``public_jwk``, or with the key of its JWK set
(``public_jwk_url``) whose ``kid`` the header names. PyJWT does the JOSE work (its ``PyJWK``
and ``PyJWKClient``); the time windows are checked against ``core.clock``: ``iat`` at most
300 s old and 30 s ahead, ``exp`` not passed. Each ``ltiResourceLink`` item becomes a resource
link of the course; one that carries a ``lineItem`` keeps that request for the gradebook.

Canvas needs the browser's session here. Ours is ``SameSite=Lax`` and a tool on another site
posts cross-site, which drops it: without a session, the user who launched the deep linking
request, named in the return URL's signed ``data``, stands in (docs/fidelity.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lmsauth.canvas import signed_in
from lmsauth.canvas.courses.models import Course
from lmsauth.canvas.lti import launch as lti_launch
from lmsauth.canvas.lti import line_items
from lmsauth.canvas.lti.messages import DL, P
from lmsauth.canvas.lti.models import LtiResourceLink
from lmsauth.canvas.models import DeveloperKey, User, local_id
from lmsauth.canvas.people import usable_user
from lmsauth.canvas.tokens import key_usable, parse_client_id, root_account_id
from lmsauth.canvas.tool_models import ExternalTool
from lmsauth.core import clock
from lmsauth.core.db import row_id
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import read_params

MAX_AGE = 300
MAX_AHEAD = 30
# Placements whose items with a ``lineItem`` make an assignment with a line item (spec 8).
LINE_ITEM_PLACEMENTS = frozenset(
    {
        "course_assignments_menu",
        "module_index_menu_modal",
        "assignment_selection",
        "link_selection",
        "module_menu_modal",
    }
)


class Refused(Exception):
    """A response JWT Canvas refuses: ``{"errors": {field: [message]}}`` with 400 (the shape
    is UNCONFIRMED: Canvas renders its validator's ActiveModel errors)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def response(self) -> Response:
        return JSONResponse({"errors": {self.field: [self.message]}}, status_code=400)


@dataclass
class Item:
    """One content item as the result page shows it: made, or refused with its error."""

    type: str
    title: str
    url: str | None
    link: LtiResourceLink | None = None
    error: str | None = None
    line_item: dict[str, Any] | None = None


def _fetch_jwk_set_key(url: str, kid: str) -> Any:
    """The key ``kid`` of the JWK set at ``url`` (blocking: run in a thread)."""
    return jwt.PyJWKClient(url, cache_keys=False, cache_jwk_set=False, timeout=10).get_signing_key(kid).key


async def verify_response(
    session: AsyncSession, token: str, issuer: str
) -> tuple[DeveloperKey, dict[str, Any]]:
    """The key and the verified claims of a deep linking response JWT (spec 8 "Key", "Claim
    checks"), or ``Refused``."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Refused("jwt", "JWT format is invalid") from exc
    client_id = parse_client_id(str(unverified.get("iss", "")))
    key_id = row_id(local_id(client_id)) if client_id is not None else None
    key = await session.get(DeveloperKey, key_id) if key_id is not None else None
    if key is None or not key.is_lti_key or key.workflow_state == "deleted":
        raise Refused("jwt", "Client not found")
    if not key_usable(key, await root_account_id(session)):
        raise Refused("developer_key", "Developer key inactive in context")
    try:
        if key.public_jwk is not None:
            verifying_key: Any = jwt.PyJWK(key.public_jwk, algorithm="RS256").key
        elif key.public_jwk_url is not None and isinstance(header.get("kid"), str):
            verifying_key = await asyncio.to_thread(_fetch_jwk_set_key, key.public_jwk_url, header["kid"])
        else:
            raise Refused("jwt", "JWT verification failure")
        claims: dict[str, Any] = jwt.decode(
            token,
            verifying_key,
            algorithms=["RS256"],
            audience=issuer,
            issuer=key.client_id,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["iss", "aud", "exp", "iat"],
            },
        )
    except jwt.PyJWTError as exc:
        raise Refused("jwt", "JWT verification failure") from exc
    now = clock.timestamp()
    if not isinstance(claims.get("nonce"), str) or not claims["nonce"]:
        raise Refused("jwt", "JWT verification failure: the nonce (jti) is missing")
    iat, exp = claims["iat"], claims["exp"]
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise Refused("jwt", "JWT verification failure")
    if iat < now - MAX_AGE or iat > now + MAX_AHEAD:
        raise Refused("jwt", "JWT verification failure: the 'iat' is invalid")
    if exp < now:
        raise Refused("jwt", "JWT verification failure: the JWT has expired")
    return key, claims


def _line_item_problem(line_item: Any) -> str | None:
    if not isinstance(line_item, dict):
        return "lineItem must be an object"
    maximum = line_item.get("scoreMaximum")
    if isinstance(maximum, bool) or not isinstance(maximum, int | float):
        return "lineItem.scoreMaximum is a required field"
    return None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


async def record_items(
    session: AsyncSession, claims: dict[str, Any], course: Course, tool: ExternalTool, placement: str
) -> list[Item]:
    """``ltiResourceLink`` items become resource links (spec 8); other types are listed, not
    kept: this Canvas has no rich content editor to put them in."""
    raw_items = claims.get(DL + "content_items") or []
    items: list[Item] = []
    for raw in raw_items if isinstance(raw_items, list) else []:
        if not isinstance(raw, dict):
            continue
        kind = str(raw.get("type", ""))
        title = _text(raw.get("title"), 255) or tool.name
        url = _text(raw.get("url"), 4096)
        if kind != "ltiResourceLink":
            items.append(Item(kind, title, url, error="only ltiResourceLink items are added to a course"))
            continue
        line_item = raw.get("lineItem")
        if line_item is not None and placement in LINE_ITEM_PLACEMENTS:
            problem = _line_item_problem(line_item)
            if problem is not None:
                items.append(Item(kind, title, url, error=problem))
                continue
        else:
            line_item = None
        custom = raw.get("custom")
        link = LtiResourceLink(
            course_id=course.id,
            external_tool_id=tool.id,
            placement=placement,
            title=title,
            url=url,
            custom=dict(custom) if isinstance(custom, dict) else {},
            line_item=line_item,
        )
        session.add(link)
        if line_item is not None and tool.developer_key_id is not None:
            await session.flush()  # the link's uuid names the line item's resource link
            await line_items.create_from_deep_link(
                session,
                course_id=course.id,
                developer_key_id=tool.developer_key_id,
                line_item=line_item,
                resource_link_id=link.uuid,
                title=title,
            )
        items.append(Item(kind, title, url, link=link, line_item=line_item))
    await session.flush()
    return items


class DeepLinkingResponses:
    def __init__(self, launch: lti_launch.LtiLaunch) -> None:
        self.ctx = launch.ctx  # Canvas's context, with the LTI pages

    async def receive(self, request: Request) -> Response:
        """POST /courses/:course_id/deep_linking_response?data=...: no CSRF token, by design:
        the tool's page posts it (spec 8 "Session")."""
        try:
            params = await read_params(request)
        except BadParameters as exc:
            return Refused("jwt", exc.message).response()
        secret_key = self.ctx.settings.resolved_secret_key
        async with self.ctx.db.session(write=True) as session:
            course = await lti_launch.find_course(session, request.path_params["course_id"])
            if course is None:
                return self._message(request, None, 404, "Page not found", "There is no such course.")
            data = lti_launch.read_value(secret_key, lti_launch.RETURN_DATA, params.get("data"))
            if data is None or data.get("course_id") != course.id:
                return Refused("data", "The deep linking return data is invalid or has expired").response()
            token = params.get("JWT")
            if not token:
                return Refused("jwt", "JWT format is invalid").response()
            try:
                key, claims = await verify_response(session, token, self.ctx.settings.public_url)
            except Refused as refused:
                return refused.response()
            who = await signed_in.viewer(session, request)
            user: User | None = (
                who.user if who is not None else await usable_user(session, int(data.get("user_id", 0)))
            )
            if user is None:
                return signed_in.to_login()
            if not await lti_launch.may_edit(session, user, course):
                if who is not None:
                    return signed_in.not_authorized_page(self.ctx, request, who)
                return self._message(
                    request, None, 401, "Unauthorized", "You are not authorized to perform that action."
                )
            tool = await session.scalar(
                select(ExternalTool).where(
                    ExternalTool.id == data.get("tool_id"),
                    ExternalTool.developer_key_id == key.id,
                    ExternalTool.workflow_state == "active",
                    lti_launch.installed_in(course),
                )
            )
            if tool is None:
                return self._message(request, who, 404, "Page not found", "There is no such external tool.")
            items = await record_items(session, claims, course, tool, str(data.get("placement")))
            values: dict[str, Any] = {
                "course": course,
                "tool": tool,
                "items": items,
                "message": _text(claims.get(DL + "msg"), 1000),
                "error_message": _text(claims.get(DL + "errormsg"), 1000),
                "deployment_id": claims.get(P + "deployment_id"),
            }
            if who is not None:
                return signed_in.page(
                    self.ctx, request, who, "lti_deep_linking.html", section="tools", **values
                )
            return self.ctx.render(request, "lti_deep_linking.html", **values)

    def _message(
        self, request: Request, who: signed_in.Viewer | None, status: int, title: str, message: str
    ) -> Response:
        if who is not None:
            return signed_in.page(
                self.ctx, request, who, "message.html", status, title=title, message=message
            )
        return self.ctx.render(request, "message.html", status, title=title, message=message)


__all__ = ["LINE_ITEM_PLACEMENTS", "DeepLinkingResponses", "Refused", "record_items", "verify_response"]
