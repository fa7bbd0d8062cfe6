"""Who may call an LTI Advantage service (spec lti13.md 5.3): Canvas's
``Lti::IMS::Concerns::AdvantageServices``, for Names and Roles and the Assignment and Grade
Services alike.

Checks, in Canvas's order, each refusal ``{"errors": {"type", "message"}}``:

1. a Bearer token: 401 ``Missing access token``;
2. one this server issued for LTI services (``service_tokens``): 401 with its message;
3. its ``sub`` an active developer key: 401 ``Unknown or inactive Developer Key``;
4. the scopes the action needs among the token's: 401 ``Insufficient permissions``;
5. the key usable in the course's account (active binding): 401 ``Invalid Developer Key``;
6. the course exists: Canvas's generic 404 (its ``find`` raises before its own message);
7. a tool installed from this key in the course, or in its account: 401 ``Access Token not
   linked to a Tool associated with this Context``. So a token for one tool never reads a
   course where that tool is not installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas import tokens
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.courses.models import Course
from lmsauth.canvas.errors import lti_service_error, not_found
from lmsauth.canvas.keys.client_credentials import TOKEN_PATH
from lmsauth.canvas.lti import service_tokens
from lmsauth.canvas.models import DeveloperKey, local_id
from lmsauth.canvas.tool_models import ExternalTool
from lmsauth.core import clock
from lmsauth.core.db import row_id
from lmsauth.core.errors import BadParameters, WireError

NOT_LINKED = "Access Token not linked to a Tool associated with this Context"


@dataclass(frozen=True, slots=True)
class ServiceCall:
    """An authorized call: the key, its tool in the course, the course, the token's scopes."""

    key: DeveloperKey
    tool: ExternalTool
    course: Course
    scopes: frozenset[str]
    session: AsyncSession


Handler = Callable[[Request, ServiceCall], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class ScopeRule:
    """Canvas's scope matchers: ``all_of`` every one, or ``any_of`` at least one."""

    all_of: Sequence[str] = ()
    any_of: Sequence[str] = ()

    def allows(self, scopes: frozenset[str]) -> bool:
        return all(scope in scopes for scope in self.all_of) and (
            not self.any_of or any(scope in scopes for scope in self.any_of)
        )


class EmptyAnswer(WireError):
    """A refusal Canvas answers with a status and no body (``head :not_found``)."""

    def __init__(self, status: int) -> None:
        super().__init__(status, None)

    def response(self) -> Response:
        return Response(status_code=self.status)


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def parse_course_id(raw: str) -> int | None:
    """A course id, local or global (``10000000000001``); None if it cannot name one."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    return row_id(local_id(int(raw)))


async def read_json(request: Request) -> Any:
    """A JSON body (these services read JSON whatever the ``Content-Type``, as Canvas does);
    400 ``{"error": ...}`` (Rails' ``ActionController::BadRequest``) when it is not JSON."""
    body = await request.body()
    try:
        return orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise WireError(400, {"error": "The request body is not JSON"}) from None


class AdvantageServices:
    def __init__(self, ctx: CanvasContext) -> None:
        self.ctx = ctx

    def audiences(self, request: Request) -> list[str]:
        """Canvas's accepted ``aud``: the token URL on the request's host, or on
        ``lti_grant_host`` (here: this server's public URL)."""
        return [
            f"{request.url.scheme}://{request.url.netloc}{TOKEN_PATH}",
            self.ctx.settings.public_url + TOKEN_PATH,
        ]

    def endpoint(
        self, handler: Handler, rule: ScopeRule, *, write: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                async with self.ctx.db.session(write=write) as session:
                    call = await self.authorize(request, session, rule)
                    return await handler(request, call)
            except WireError as exc:
                return exc.response()
            except BadParameters as exc:
                return WireError(400, {"error": exc.message}).response()

        return serve

    async def authorize(self, request: Request, session: AsyncSession, rule: ScopeRule) -> ServiceCall:
        presented = bearer(request)
        if presented is None:
            raise lti_service_error(401, "Missing access token")
        try:
            claims = service_tokens.verify(
                self.ctx.settings.resolved_secret_key, presented, self.audiences(request), clock.timestamp()
            )
        except service_tokens.ServiceTokenError as exc:
            raise lti_service_error(401, exc.message) from None
        sub = claims.get("sub")
        key = await tokens.find_active_key(session, sub if isinstance(sub, str) else None)
        if key is None:
            raise lti_service_error(401, "Unknown or inactive Developer Key")
        raw_scopes = claims.get("scopes")
        scopes = frozenset(raw_scopes.split() if isinstance(raw_scopes, str) else ())
        if not rule.allows(scopes):
            raise lti_service_error(401, "Insufficient permissions")
        if not tokens.key_usable(key, await tokens.root_account_id(session)):
            raise lti_service_error(401, "Invalid Developer Key")
        course_id = parse_course_id(request.path_params["course_id"])
        course = await session.get(Course, course_id) if course_id is not None else None
        if course is None or course.workflow_state == "deleted":
            raise not_found()
        tool = await installed_tool(session, key, course)
        if tool is None:
            raise lti_service_error(401, NOT_LINKED)
        return ServiceCall(key, tool, course, scopes, session)


async def installed_tool(session: AsyncSession, key: DeveloperKey, course: Course) -> ExternalTool | None:
    """The active LTI 1.3 tool of ``key`` in the course, else in the course's account (Canvas's
    context chain: the course's own install wins)."""
    found = await session.scalars(
        select(ExternalTool)
        .where(
            ExternalTool.developer_key_id == key.id,
            ExternalTool.lti_version == "1.3",
            ExternalTool.workflow_state == "active",
            or_(
                ExternalTool.course_id == course.id,
                (ExternalTool.course_id.is_(None)) & (ExternalTool.account_id == course.account_id),
            ),
        )
        .order_by(ExternalTool.course_id.is_(None), ExternalTool.id)
    )
    return found.first()
