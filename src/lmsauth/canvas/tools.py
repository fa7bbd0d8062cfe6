"""External tools on the Canvas side: finding a tool by launch URL, the LTI 1.1 launch Canvas
builds for a user, the signed-in page that posts it, and ``jwt_token`` (spec 9, C6).

Canvas signs LTI 1.1 launches with OAuth 1.0a HMAC-SHA1 (body signature, RFC 5849 section
3.5.2); oauthlib's ``Client`` does the signing. The launch parameters follow Canvas's
``Lti::LtiOutboundAdapter`` for an account context (spec C6 lists them as indicative).
``jwt_token`` is the same launch without ``oauth_*`` plus ``consumer_key`` and ``iat``,
signed HS256 with the tool's shared secret and with no ``exp``, as
``Canvas::Security.create_jwt(params, nil, tool.shared_secret)`` does. lmsauth adds one claim
Canvas does not: a random ``jti``. Without it two tokens for one user in one second are the same
bytes, and Commons' replay guard (one JWT, one session) would refuse the second; a client reads
the token as opaque, so the extra claim costs it nothing (docs/fidelity.md).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import jwt
from jwt.warnings import InsecureKeyLengthWarning
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lmsauth.canvas import signed_in
from lmsauth.canvas.accounts import find_account
from lmsauth.canvas.admin import AdminError, root_account
from lmsauth.canvas.bearer import Bearer, BearerUser
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.errors import not_found
from lmsauth.canvas.models import Account, Login, User
from lmsauth.canvas.tool_models import PRIVACY_LEVELS, ExternalTool, seal, unseal
from lmsauth.core import clock
from lmsauth.core.db import row_id
from lmsauth.core.web import Params

FORM = "application/x-www-form-urlencoded"
ADMIN_ROLE = "urn:lti:instrole:ims/lis/Administrator"
USER_ROLE = "urn:lti:sysrole:ims/lis/User"


# ---------------------------------------------------------------------------- administration


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 4096:
        raise AdminError(f"a tool URL must be an absolute http(s) URL: {url}")
    return url.strip()


def _custom_key(name: str) -> str:
    """Canvas's custom field names: lower case, every non-word character an underscore."""
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name.strip().lower())


async def save_external_tool(
    session: AsyncSession,
    secret_key: str,
    *,
    name: str,
    url: str,
    consumer_key: str,
    shared_secret: str,
    privacy_level: str = "anonymous",
    domain: str | None = None,
    custom_fields: dict[str, str] | None = None,
    tool_id: int | None = None,
) -> ExternalTool:
    """Install (or, with ``tool_id``, update) an LTI 1.1 tool in the root account."""
    if not name.strip() or len(name) > 255:
        raise AdminError("name must be 1 to 255 characters")
    if privacy_level not in PRIVACY_LEVELS:
        raise AdminError(f"privacy must be one of {', '.join(PRIVACY_LEVELS)}")
    if not consumer_key or len(consumer_key) > 255:
        raise AdminError("a consumer key must be 1 to 255 characters")
    if not shared_secret:
        raise AdminError("the shared secret must not be empty")
    fields = {_custom_key(key): str(value) for key, value in (custom_fields or {}).items()}
    if any(not key for key in fields):
        raise AdminError("a custom field needs a name")
    account = await root_account(session)
    tool = await session.get(ExternalTool, tool_id) if tool_id is not None else None
    if tool is None:
        tool = ExternalTool(account_id=account.id)
        session.add(tool)
    tool.name = name.strip()
    tool.url = _check_url(url)
    tool.domain = domain.strip().lower() if domain else None
    tool.consumer_key = consumer_key
    tool.shared_secret_sealed = seal(secret_key, shared_secret)
    tool.privacy_level = privacy_level
    tool.custom_fields = fields
    tool.workflow_state = "active"
    await session.flush()
    return tool


async def list_external_tools(session: AsyncSession) -> list[ExternalTool]:
    rows = await session.scalars(
        select(ExternalTool).where(ExternalTool.workflow_state == "active").order_by(ExternalTool.id)
    )
    return list(rows)


# ---------------------------------------------------------------------------- finding a tool


def standard_url(url: str) -> str | None:
    """Canvas's ``ContextExternalTool.standardize_url``: scheme and host in lower case, no
    default port, no trailing slash, query parameters in order; ``None`` if not a URL."""
    candidate = url.strip()
    if "://" not in candidate:
        candidate = "http://" + candidate
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    host = parts.hostname.lower()
    if port is not None and (parts.scheme.lower(), port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    query = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), query, ""))


def _host_matches(domain: str, host: str) -> bool:
    return host == domain or host.endswith("." + domain)


def find_tool(tools: list[ExternalTool], url: str | None, tool_id: int | None) -> ExternalTool | None:
    """``ContextExternalTool.find_external_tool``: an exact URL match first, then a tool whose
    domain is the URL's host or a parent of it; among equals the preferred ``tool_id`` wins.
    Without a URL, the tool with ``tool_id``."""
    if url is None:
        return next((tool for tool in tools if tool.id == tool_id), None)
    wanted = standard_url(url)
    if wanted is None:
        return None
    host = urlsplit(wanted).netloc

    def preferred(matches: list[ExternalTool]) -> ExternalTool | None:
        return next((t for t in matches if t.id == tool_id), matches[0] if matches else None)

    exact = [tool for tool in tools if standard_url(tool.url) == wanted]
    if exact:
        return preferred(exact)
    return preferred([tool for tool in tools if tool.domain and _host_matches(tool.domain, host)])


# ---------------------------------------------------------------------------- the launch


def opaque_id(secret_key: str, asset_string: str) -> str:
    """Canvas's ``Lti::Asset.opaque_identifier_for``: an HMAC-SHA1 of the asset string, so
    tools see a stable id that reveals nothing."""
    return hmac.new(secret_key.encode(), asset_string.encode(), hashlib.sha1).hexdigest()


@dataclass
class LaunchContext:
    """Who launches what, where: everything ``launch_params`` needs."""

    tool: ExternalTool
    user: User | BearerUser
    login_id: str | None
    account: Account
    public_url: str
    secret_key: str


def expand_variable(value: str, ctx: LaunchContext, domain: str) -> str:
    """Canvas's variable expansion for the few variables this server knows; any other
    ``$Variable`` is sent as written, as Canvas sends variables it cannot expand."""
    known = {
        "$Canvas.user.id": str(ctx.user.id),
        "$Canvas.user.loginId": ctx.login_id or "",
        "$Canvas.api.domain": domain,
        "$Canvas.account.id": str(ctx.account.id),
        "$Canvas.user.prefersHighContrast": "false",  # this Canvas has no such user preference
        "$Person.name.full": ctx.user.name,
    }
    return known.get(value, value)


def launch_params(ctx: LaunchContext) -> dict[str, str]:
    """The LTI 1.1 launch for ``ctx.user`` in the root account, before OAuth signing."""
    tool, user, account = ctx.tool, ctx.user, ctx.account
    domain = urlsplit(ctx.public_url).netloc
    context_id = opaque_id(ctx.secret_key, f"account_{account.id}")
    roles = f"{ADMIN_ROLE},{USER_ROLE}" if user.is_admin else USER_ROLE
    params = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": context_id,
        "resource_link_title": tool.name,
        "user_id": opaque_id(ctx.secret_key, f"user_{user.id}"),
        "roles": ADMIN_ROLE if user.is_admin else USER_ROLE,
        "ext_roles": roles,
        "context_id": context_id,
        "context_title": account.name,
        "launch_presentation_locale": user.locale or "en",
        "launch_presentation_document_target": "window",
        "launch_presentation_return_url": f"{ctx.public_url}/accounts/self/external_tools",
        "tool_consumer_instance_guid": f"{account.uuid}:canvas-lms",
        "tool_consumer_instance_name": account.name,
        "tool_consumer_instance_contact_email": f"notifications@{urlsplit(ctx.public_url).hostname}",
        "tool_consumer_info_product_family_code": "canvas",
        "tool_consumer_info_version": "cloud",
        "custom_canvas_enrollment_state": "active",
    }
    if tool.privacy_level in ("name_only", "public"):
        given = user.name.rsplit(" ", 1)[0] if " " in user.name else user.name
        family = user.name.rsplit(" ", 1)[1] if " " in user.name else ""
        params.update(
            lis_person_name_given=given, lis_person_name_family=family, lis_person_name_full=user.name
        )
    if tool.privacy_level in ("email_only", "public") and user.email:
        params["lis_person_contact_email_primary"] = user.email
    if tool.privacy_level == "public":
        params.update(
            custom_canvas_user_id=str(user.id),
            custom_canvas_account_id=str(account.id),
            custom_canvas_api_domain=domain,
        )
        if ctx.login_id:
            params["custom_canvas_user_login_id"] = ctx.login_id
        if user.avatar_url:
            params["user_image"] = user.avatar_url
    for key, value in tool.custom_fields.items():
        params[f"custom_{key}"] = expand_variable(value, ctx, domain)
    return params


def sign_launch(tool: ExternalTool, secret: str, params: dict[str, str]) -> list[tuple[str, str]]:
    """The launch form as Canvas posts it: ``params`` plus the ``oauth_*`` body parameters."""
    client = Client(
        tool.consumer_key,
        client_secret=secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_BODY,
        nonce=uuid.uuid4().hex,
        timestamp=str(clock.timestamp()),
    )
    _uri, _headers, body = client.sign(
        tool.url, http_method="POST", body=params, headers={"Content-Type": FORM}
    )
    return parse_qsl(str(body), keep_blank_values=True)


def jwt_token(tool: ExternalTool, secret: str, params: dict[str, str]) -> str:
    claims: dict[str, Any] = {k: v for k, v in params.items() if not k.startswith("oauth_")}
    claims["consumer_key"] = tool.consumer_key
    claims["iat"] = clock.timestamp()
    claims["jti"] = uuid.uuid4().hex  # two tokens are never the same bytes (module docstring)
    with warnings.catch_warnings():
        # Canvas signs with whatever secret the tool was installed with, however short.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS256")


# ---------------------------------------------------------------------------- HTTP


class ExternalTools:
    """``jwt_token`` (behind ``CanvasApi.protected``) and the signed-in launch pages."""

    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    async def _launch_context(
        self, session: AsyncSession, tool: ExternalTool, user: User | BearerUser
    ) -> LaunchContext:
        account = await session.get(Account, tool.account_id)
        assert account is not None
        login_id = await session.scalar(
            select(Login.unique_id).where(Login.user_id == user.id).order_by(Login.id).limit(1)
        )
        return LaunchContext(
            tool=tool,
            user=user,
            login_id=login_id,
            account=account,
            public_url=self.ctx.settings.public_url,
            secret_key=self.ctx.settings.resolved_secret_key,
        )

    async def jwt_token(self, request: Request, bearer: Bearer, params: Params) -> Response:
        """GET /api/lti/accounts/:account_id/jwt_token (spec 9): any signed-in user may ask."""
        launch_url = params.get("tool_launch_url")
        raw_id = params.get("tool_id")
        tool_id = int(raw_id) if raw_id and raw_id.isdigit() and len(raw_id) <= 18 else None
        if tool_id is not None and row_id(tool_id) is None:
            raise not_found()  # no tool can have this id
        if launch_url is None and tool_id is None:
            raise not_found()
        async with self.ctx.db.session() as session:
            account = await find_account(session, request.path_params["account_id"])
            if account is None:
                raise not_found()
            tools = [tool for tool in await list_external_tools(session) if tool.account_id == account.id]
            tool = find_tool(tools, launch_url, tool_id)
            if tool is None:
                raise not_found()
            launch = await self._launch_context(session, tool, bearer.user)
        secret = unseal(self.ctx.settings.resolved_secret_key, tool.shared_secret_sealed)
        # A bearer credential for Commons: no cache may keep it (RFC 9111 section 5.2.2.5).
        return JSONResponse(
            {"jwt_token": jwt_token(tool, secret, launch_params(launch))},
            headers={"Cache-Control": "no-store"},
        )

    async def tool_list(self, request: Request) -> Response:
        """GET /accounts/:account_id/external_tools: the tools a signed-in user can launch."""
        async with self.ctx.db.session(write=True) as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            account = await find_account(session, request.path_params["account_id"])
            if account is None:
                return self._page_not_found(request)
            tools = [tool for tool in await list_external_tools(session) if tool.account_id == account.id]
            return signed_in.page(self.ctx, request, who, "launch_tools.html", section="tools", tools=tools)

    async def launch(self, request: Request) -> Response:
        """GET /accounts/:account_id/external_tools/:id: a form, signed for this user, that the
        browser posts to the tool. CSP forbids inline script, so the person presses Launch."""
        raw = request.path_params["tool_id"]
        async with self.ctx.db.session() as session:
            who = await signed_in.viewer(session, request)
            if who is None:
                return signed_in.to_login()
            account = await find_account(session, request.path_params["account_id"])
            found_id = row_id(int(raw)) if raw.isdigit() and len(raw) <= 18 else None
            tool = await session.get(ExternalTool, found_id) if found_id is not None else None
            if (
                account is None
                or tool is None
                or tool.account_id != account.id
                or tool.workflow_state != "active"
            ):
                return self._page_not_found(request)
            launch = await self._launch_context(session, tool, who.user)
        secret = unseal(self.ctx.settings.resolved_secret_key, tool.shared_secret_sealed)
        fields = sign_launch(tool, secret, launch_params(launch))
        return self.ctx.render(request, "launch.html", tool=tool, fields=fields)

    def _page_not_found(self, request: Request) -> Response:
        return self.ctx.render(
            request, "message.html", 404, title="Page not found", message="There is no such external tool."
        )
