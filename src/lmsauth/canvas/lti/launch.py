"""The LTI 1.3 launch, as Canvas runs it (spec lti13.md 2 to 4):

1. ``GET /courses/:course_id/external_tools/:id`` (a signed-in member of the course, or an
   admin): the launch's claims are built and cached under a random ``verifier`` for 5 minutes,
   single use, in the shared store (Canvas's ``Lti::RedisMessageClient``), and the page posts
   the third-party initiated login to the tool's ``oidc_initiation_url``.
2. ``/api/lti/authorize_redirect``: the tool's authentication request, sent on to
   ``/api/lti/authorize`` on the launching domain with only the OIDC parameters.
3. ``GET /api/lti/authorize``: validated as Canvas does (the last failing check names the
   error); the page posts the signed ``id_token`` and ``state`` (or the error) to the tool's
   ``redirect_uri``.
4. ``GET /api/lti/security/jwks``: the LTI key set (past, present and future keys).

The ``lti_message_hint`` is a 5-minute HS256 JWT (PyJWT) under a key derived from
``LMSAUTH_SECRET_KEY``; its ``exp`` is checked against ``core.clock`` (PyJWT reads the system
clock), so a moved clock ends launches as it ends tokens. Every page posts itself with
``/static/auto-submit.js`` (the CSP allows no inline script) and shows a button that does the
same without JavaScript.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from lmsauth.canvas import signed_in
from lmsauth.canvas.context import PAGES, PEOPLE_PAGES, SHARED_PAGES, CanvasContext
from lmsauth.canvas.courses.models import Course
from lmsauth.canvas.courses.service import find_course  # the course pages' and APIs' own lookup
from lmsauth.canvas.errors import bad_request, not_found
from lmsauth.canvas.keys import lti
from lmsauth.canvas.lti import messages
from lmsauth.canvas.lti.models import LtiResourceLink
from lmsauth.canvas.models import Account, DeveloperKey, User, global_id, local_id
from lmsauth.canvas.tokens import key_usable, parse_client_id, root_account_id
from lmsauth.canvas.tool_models import ExternalTool
from lmsauth.core import clock
from lmsauth.core.db import row_id
from lmsauth.core.errors import BadParameters, WireError
from lmsauth.core.web import Params, read_params, templates

LTI_PAGES = Path(__file__).parent / "pages"
LAUNCH_TTL = 300  # the cached launch and the message hint (spec 2.1, 11)
NONCE_TTL = messages.ID_TOKEN_LIFETIME
JWKS_MAX_AGE = 864000
STORAGE_TARGET = "post_message_forwarding"
OIDC_PARAMS = (
    "client_id",
    "login_hint",
    "lti_message_hint",
    "nonce",
    "prompt",
    "redirect_uri",
    "response_mode",
    "response_type",
    "scope",
)
FORWARDED = (*OIDC_PARAMS, "state")


async def _oidc_params(request: Request) -> Params:
    """The request's parameters, each one these steps read checked at once (given twice, too
    long, or holding a NUL), so that a bad one is refused in Canvas's JSON shape before any
    check runs, not by the app's plain-text fallback halfway through them."""
    params = await read_params(request)
    for name in FORWARDED:
        params.get(name)
    return params


# ---------------------------------------------------------------------------- signed values


def _secret(secret_key: str, purpose: bytes) -> bytes:
    return hmac.new(secret_key.encode(), purpose, hashlib.sha256).digest()


def sign_value(secret_key: str, purpose: bytes, claims: dict[str, Any], lifetime: int) -> str:
    return jwt.encode({**claims, "exp": clock.timestamp() + lifetime}, _secret(secret_key, purpose), "HS256")


def read_value(secret_key: str, purpose: bytes, token: str | None) -> dict[str, Any] | None:
    """The claims of a value ``sign_value`` made, if its signature holds and, by ``core.clock``,
    it has not expired."""
    if not token:
        return None
    try:
        found: dict[str, Any] = jwt.decode(
            token, _secret(secret_key, purpose), algorithms=["HS256"], options={"verify_exp": False}
        )
    except jwt.PyJWTError:
        return None
    expires = found.get("exp")
    if not isinstance(expires, int) or expires <= clock.timestamp():
        return None
    return found


HINT = b"lmsauth lti message hint"
RETURN_DATA = b"lmsauth lti deep linking data"


# ---------------------------------------------------------------------------- finding things


def installed_in(course: Course) -> Any:
    """Tools installed in ``course`` or in its account (Canvas's context chain)."""
    return or_(
        ExternalTool.course_id == course.id,
        (ExternalTool.course_id.is_(None)) & (ExternalTool.account_id == course.account_id),
    )


async def course_tool(session: AsyncSession, course: Course, raw: str) -> ExternalTool | None:
    """An active LTI 1.3 tool of the course's context chain, whose key may be used."""
    tool_id = row_id(int(raw)) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    if tool_id is None:
        return None
    tool = await session.scalar(
        select(ExternalTool).where(
            ExternalTool.id == tool_id,
            ExternalTool.lti_version == "1.3",
            ExternalTool.workflow_state == "active",
            installed_in(course),
        )
    )
    if tool is None or tool.developer_key_id is None:
        return None
    key = await session.get(DeveloperKey, tool.developer_key_id)
    if key is None or not key_usable(key, await root_account_id(session)):
        return None
    return tool


async def may_launch(session: AsyncSession, user: User, course: Course) -> bool:
    """A member of the course (an active enrollment of any type), or an account admin."""
    return user.is_admin or bool(await messages.course_enrollments(session, user.id, course.id))


async def may_edit(session: AsyncSession, user: User, course: Course) -> bool:
    """Canvas's ``require_context_update_rights``: teachers, TAs, designers and admins."""
    if user.is_admin:
        return True
    return bool(
        messages.EDITING_ENROLLMENTS & set(await messages.course_enrollments(session, user.id, course.id))
    )


def redirect_uri_registered(registered: list[str], requested: str) -> bool:
    """Canvas's ``redirect_uri`` check (spec 2.3 row 6), split on the first ``?``: a registered
    URI without a query must equal the requested base exactly; one with a query matches when
    the request carries all of its query parameters (its base is not compared: Canvas's quirk)."""
    base, _, query = requested.partition("?")
    present = set(parse_qsl(query, keep_blank_values=True))
    for uri in registered:
        if "?" not in uri:
            if uri == base:
                return True
        elif set(parse_qsl(uri.partition("?")[2], keep_blank_values=True)) <= present:
            return True
    return False


# ---------------------------------------------------------------------------- HTTP


class LtiLaunch:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = dataclasses.replace(ctx, pages=templates(LTI_PAGES, PAGES, PEOPLE_PAGES, SHARED_PAGES))
        self.settings = ctx.settings

    # ------------------------------------------------------------------ step 1

    def _not_found_page(self, request: Request, who: signed_in.Viewer, what: str) -> Response:
        return signed_in.page(
            self.ctx,
            request,
            who,
            "message.html",
            404,
            title="Page not found",
            message=f"There is no such {what}.",
        )

    async def course_member(
        self, session: AsyncSession, request: Request
    ) -> tuple[signed_in.Viewer, Course] | Response:
        """The signed-in person and the course of the path, if they may open its tools (a
        member or an admin), or the page that refuses them."""
        who = await signed_in.viewer(session, request)
        if who is None:
            return signed_in.to_login()
        course = await find_course(session, request.path_params["course_id"])
        if course is None:
            return self._not_found_page(request, who, "course")
        if not await may_launch(session, who.user, course):
            return signed_in.not_authorized_page(self.ctx, request, who)
        return who, course

    async def start(self, request: Request) -> Response:
        """GET /courses/:course_id/external_tools/:id[?launch_type=PLACEMENT][&resource_link_id=]:
        the third-party initiated login, posted to the tool (spec 2.1)."""
        async with self.ctx.db.session(write=True) as session:
            member = await self.course_member(session, request)
            if isinstance(member, Response):
                return member
            who, course = member
            tool = await course_tool(session, course, request.path_params["tool_id"])
            if tool is None:
                return self._not_found_page(request, who, "external tool")
            key = await session.get(DeveloperKey, tool.developer_key_id)
            account = await session.get(Account, course.account_id)
            assert key is not None and account is not None
            config = key.tool_configuration or {}
            placements = {placement.name: placement for placement in lti.placements(config)}
            launch_type = request.query_params.get("launch_type")
            link: LtiResourceLink | None = None
            if launch_type is not None:
                placement = placements.get(launch_type)
                if placement is None:
                    return self._not_found_page(request, who, f"placement of {tool.name}")
            else:
                placement = placements.get("course_navigation")
            raw_link = request.query_params.get("resource_link_id")
            if raw_link is not None:
                link = await session.scalar(
                    select(LtiResourceLink).where(
                        LtiResourceLink.uuid == raw_link,
                        LtiResourceLink.course_id == course.id,
                        LtiResourceLink.external_tool_id == tool.id,
                        LtiResourceLink.workflow_state == "active",
                    )
                )
                if link is None:
                    return self._not_found_page(request, who, "resource link")
                if placement is not None and placement.message_type != lti.RESOURCE_LINK:
                    placement = None
            secret_key = self.settings.resolved_secret_key
            deployment = await lti.tool_deployment_id(session, tool)
            return_data = None
            if placement is not None and placement.message_type == lti.DEEP_LINKING:
                return_data = sign_value(
                    secret_key,
                    RETURN_DATA,
                    {
                        "placement": placement.name,
                        "course_id": course.id,
                        "tool_id": tool.id,
                        "user_id": who.user.id,
                        "modal": True,
                    },
                    messages.ID_TOKEN_LIFETIME,
                )
            launch = messages.Launch(
                key=key,
                tool=tool,
                course=course,
                account=account,
                user=who.user,
                public_url=self.settings.public_url,
                secret_key=secret_key,
                deployment_id=deployment,
                placement=placement,
                link=link,
                return_data=return_data,
                locale=who.user.locale or "en",
            )
            claims = await messages.claims(session, launch)
            verifier = secrets.token_hex(64)
            await self.ctx.store.set(
                f"lti-launch:{verifier}",
                json.dumps({"claims": claims, "client_id": key.client_id, "user_id": who.user.id}),
                expires_in=LAUNCH_TTL,
            )
            hint = sign_value(
                secret_key,
                HINT,
                {
                    "verifier": verifier,
                    "canvas_domain": urlsplit(self.settings.public_url).netloc,
                    "context_type": "Course",
                    "context_id": global_id(course.id),
                    "canvas_locale": launch.locale,
                    "include_storage_target": True,
                },
                LAUNCH_TTL,
            )
            fields = [
                ("iss", self.settings.public_url),
                ("login_hint", messages.login_hint(secret_key, who.user)),
                ("target_link_uri", claims[messages.P + "target_link_uri"]),
                ("lti_message_hint", hint),
                ("client_id", key.client_id),
                ("lti_deployment_id", deployment),
                ("canvas_environment", "prod"),
                ("canvas_region", "not_configured"),
                ("lti_storage_target", STORAGE_TARGET),
            ]
            return signed_in.page(
                self.ctx,
                request,
                who,
                "lti_login.html",
                tool=tool,
                course=course,
                action=config["oidc_initiation_url"],
                fields=fields,
                placement=placement,
            )

    # ------------------------------------------------------------------ step 2a

    async def authorize_redirect(self, request: Request) -> Response:
        """GET or POST /api/lti/authorize_redirect (spec 2.2)."""
        try:
            params = await _oidc_params(request)
        except BadParameters as exc:
            return bad_request(exc.message).response()
        raw_hint = params.get("lti_message_hint")
        if not raw_hint:
            return bad_request("lti_message_hint is missing").response()
        hint = read_value(self.settings.resolved_secret_key, HINT, raw_hint)
        if hint is None or not isinstance(hint.get("canvas_domain"), str):
            return _invalid("lti_message_hint")
        scheme = urlsplit(self.settings.public_url).scheme
        query = urlencode(
            [(name, params.get(name) or "") for name in FORWARDED if params.get(name) is not None]
        )
        return RedirectResponse(
            f"{scheme}://{hint['canvas_domain']}/api/lti/authorize?{query}", status_code=302
        )

    # ------------------------------------------------------------------ step 2b

    async def authorize(self, request: Request) -> Response:
        """GET /api/lti/authorize (spec 2.3): the checks in Canvas's order, the last failing
        one naming the OIDC error; a bad hint, an unknown client or an unregistered
        ``redirect_uri`` are answered at once, with no form."""
        try:
            params = await _oidc_params(request)
        except BadParameters as exc:
            return bad_request(exc.message).response()
        error: tuple[str, str] | None = None
        missing = [name for name in OIDC_PARAMS if not params.get(name)]
        if missing:
            error = ("invalid_request_object", f"The following parameters are missing: {','.join(missing)}")
        elif params.get("scope") != "openid":
            error = ("invalid_request_object", "The 'scope' must be 'openid'")
        secret_key = self.settings.resolved_secret_key
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            hint = read_value(secret_key, HINT, params.get("lti_message_hint"))
            if (
                hint is None
                or hint.get("context_type") != "Course"
                or not isinstance(hint.get("context_id"), int)
            ):
                return _invalid("lti_message_hint")
            course = await find_course(session, str(local_id(hint["context_id"])))
            if course is None:
                return _invalid("lti_message_hint")
            if who is None or params.get("login_hint") != messages.login_hint(secret_key, who.user):
                error = ("login_required", "Must have an active user session")
            client_id = parse_client_id(params.get("client_id"))
            key_id = row_id(local_id(client_id)) if client_id is not None else None
            key = await session.get(DeveloperKey, key_id) if key_id is not None else None
            if key is None or key.is_default:
                return not_found().response()
            if not await self._authorized_in(session, key, course):
                error = ("unauthorized_client", "Client not authorized in requested context")
            launch = None
            if error is None:
                cached = await self.ctx.store.take(f"lti-launch:{hint.get('verifier')}")
                launch = json.loads(cached) if cached is not None else None
                if launch is None:
                    error = (
                        "launch_no_longer_valid",
                        "The launch has either expired or already been consumed",
                    )
                elif launch["client_id"] != key.client_id:
                    error = ("unauthorized_client", "Client not authorized in requested context")
                elif not await self._first_use(key, str(params.get("nonce"))):
                    error = ("invalid_request_object", "The 'nonce' has already been used")
            redirect_uri = params.get("redirect_uri") or ""
            if not redirect_uri_registered(list(key.redirect_uris), redirect_uri):
                return _invalid("redirect_uri")
            fields: list[tuple[str, str]]
            if error is not None or launch is None:
                code, description = error or ("launch_no_longer_valid", "")
                fields = [("error", code), ("error_description", description)]
                if params.get("state") is not None:
                    fields.append(("state", str(params.get("state"))))
            else:
                claims = {**launch["claims"], "nonce": params.get("nonce")}
                fields = [("id_token", await self.ctx.lti_keyring.sign_latest(claims))]
                if params.get("state") is not None:
                    fields.append(("state", str(params.get("state"))))
                if hint.get("include_storage_target"):
                    fields.append(("lti_storage_target", STORAGE_TARGET))
        return self.ctx.render(request, "lti_authorize.html", action=redirect_uri, fields=fields)

    async def _authorized_in(self, session: AsyncSession, key: DeveloperKey, course: Course) -> bool:
        """``validate_client_id!``: the key usable (active, bound on), with its tool installed in
        the course's context chain."""
        if not key.is_lti_key or not key_usable(key, await root_account_id(session)):
            return False
        found = await session.scalar(
            select(ExternalTool.id).where(
                ExternalTool.developer_key_id == key.id,
                ExternalTool.workflow_state == "active",
                installed_in(course),
            )
        )
        return found is not None

    async def _first_use(self, key: DeveloperKey, nonce: str) -> bool:
        """A nonce signs one id_token for a client: a second authentication request with it is
        a replay (kept for the id_token's lifetime)."""
        digest = hashlib.sha256(nonce.encode()).hexdigest()
        return await self.ctx.store.incr(f"lti-nonce:{key.client_id}:{digest}", expires_in=NONCE_TTL) == 1

    # ------------------------------------------------------------------ the key set

    async def jwks(self, request: Request) -> Response:
        """GET /api/lti/security/jwks (spec 4): no authentication, 10-day cache."""
        return JSONResponse(
            await self.ctx.lti_keyring.published_jwks(), headers={"Cache-Control": f"max-age={JWKS_MAX_AGE}"}
        )


def _invalid(what: str) -> Response:
    """Canvas's ``reject!`` under ``/api/``: ``{"status":"bad_request","message":...}``."""
    return WireError(400, {"status": "bad_request", "message": f"Invalid {what}"}).response()


__all__ = ["LtiLaunch", "find_course", "may_edit", "may_launch", "read_value", "redirect_uri_registered"]
