"""Commons over HTTP: its routes, its error pages, and an app factory that runs it alone.

``commons_asgi`` is the service itself, with paths relative to wherever it is mounted: the
full server mounts it at ``LMSAUTH_COMMONS_PATH``. ``create_commons_app`` wraps it with what a
server needs (middleware, static files, the clean-up task) so Commons can run as its own
process, on its own host, with no Canvas code loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from lmsauth.commons import errors, jwt_login, launch, sessions
from lmsauth.commons.models import CommonsAccount, CommonsSession, CommonsUser
from lmsauth.commons.settings import CommonsSettings
from lmsauth.core import metrics, secrets
from lmsauth.core.db import Database
from lmsauth.core.edge import BodyTimeout, Edge, body_timeout_response
from lmsauth.core.errors import BadParameters, WireError
from lmsauth.core.kv import create_store
from lmsauth.core.observe import route_path
from lmsauth.core.outage import MESSAGE, OutageMiddleware
from lmsauth.core.ratelimit import RateLimits
from lmsauth.core.routing import redirect_slashes_to
from lmsauth.core.web import ORJSONResponse, read_params, templates
from lmsauth.settings import Settings

log = logging.getLogger("lmsauth.commons")
PAGES = Path(__file__).parent / "pages"
SHARED_PAGES = Path(__file__).parent.parent / "core" / "pages"
STATIC = Path(__file__).parent.parent / "core" / "static"
FORM = "application/x-www-form-urlencoded"
# ``Sec-Fetch-Site`` values of a request another site started (Fetch Metadata).
CROSS_SITE = frozenset(("cross-site", "same-site"))


@dataclass
class CommonsContext:
    settings: Settings
    db: Database
    limits: RateLimits
    commons: CommonsSettings = field(default_factory=CommonsSettings)
    pages: Environment = field(default_factory=lambda: templates(PAGES, SHARED_PAGES))

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.pages.get_template(name).render(request=request, root=root(request), **values)
        return HTMLResponse(html, status_code=status)

    def message(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return self.render(request, "message.html", status, title=title, message=message)


def root(request: Request) -> str:
    """Where Commons is mounted, as a path prefix ("" when it serves at the root)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def cookie_path(request: Request) -> str:
    """The ``session`` cookie belongs to Commons' mount only, not to Canvas beside it."""
    return root(request) or "/"


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


class CommonsPages:
    """The browser side: the LTI launch, the terms of service, the signed-in page.

    Pages read the session from the ``session`` cookie only: the other four places of spec C2
    are for API clients, and a page that took a session id from its URL could be handed one.
    """

    def __init__(self, ctx: CommonsContext) -> None:
        self.ctx = ctx

    async def launch(self, request: Request) -> Response:
        """POST /api/lti: verify and record the launch, sign the browser in."""
        if _content_type(request) != FORM:
            return self.ctx.message(request, 400, "Launch failed", "An LTI launch is a form post.")
        try:
            accepted = await launch.accept_launch(
                self.ctx.db,
                self.ctx.commons,
                self.ctx.settings.resolved_secret_key,
                url=str(request.url),
                body=await request.body(),
                content_type=FORM,
            )
        except launch.LaunchRefused as exc:
            metrics.failure("commons", "launch_refused")
            return self.ctx.message(request, exc.status, "Launch failed", exc.message)
        metrics.token_issued("commons_session")
        response = RedirectResponse(f"{root(request)}/", status_code=303)
        sessions.set_cookie(
            response,
            accepted.session_id,
            path=cookie_path(request),
            secure=self.ctx.settings.secure_cookies,
        )
        return response

    async def _signed_in(self, request: Request) -> tuple[CommonsSession, CommonsUser] | None:
        async with self.ctx.db.session() as session:
            row = await sessions.load(session, request.cookies.get(sessions.COOKIE))
            user = await session.get(CommonsUser, row.user_id) if row is not None else None
        return (row, user) if row is not None and user is not None else None

    def _not_signed_in(self, request: Request) -> Response:
        return self.ctx.message(
            request, 401, "Not signed in", "Your Commons session has ended. Launch Commons again from Canvas."
        )

    async def home(self, request: Request) -> Response:
        """GET /: the terms until they are accepted, then the signed-in page."""
        found = await self._signed_in(request)
        if found is None:
            return self._not_signed_in(request)
        row, user = found
        if user.terms_accepted_at is None:
            return RedirectResponse(f"{root(request)}/terms", status_code=303)
        async with self.ctx.db.session() as session:
            account = await session.get(CommonsAccount, user.account_id)
        return self.ctx.render(
            request,
            "home.html",
            user=user,
            account=account,
            expires=sessions.expires_text(row.expires_at),
        )

    async def terms(self, request: Request) -> Response:
        found = await self._signed_in(request)
        if found is None:
            return self._not_signed_in(request)
        row, user = found
        if user.terms_accepted_at is not None:
            return RedirectResponse(f"{root(request)}/", status_code=303)
        return self.ctx.render(request, "terms.html", user=user, csrf=row.csrf_token)

    async def accept_terms(self, request: Request) -> Response:
        """POST /terms: needs the form's CSRF token, which belongs to the browser's session."""
        try:
            form = await read_params(request, query=False)
            presented = form.get("csrf_token")
            agreed = form.get("accept") == "yes"
        except BadParameters as exc:
            return self.ctx.message(request, 400, "Bad request", exc.message)
        async with self.ctx.db.session(write=True) as session:
            row = await sessions.load(session, request.cookies.get(sessions.COOKIE))
            if row is None:
                return self._not_signed_in(request)
            if presented is None or not secrets.same(row.csrf_token, presented):
                return self.ctx.message(
                    request,
                    422,
                    "Invalid form",
                    "The form expired or was not sent from this site. Go back, reload and try again.",
                )
            if not agreed:
                return self.ctx.message(
                    request, 400, "Terms not accepted", "Tick the box to accept the terms of service."
                )
            user = await session.get(CommonsUser, row.user_id)
            assert user is not None
            launch.accept_terms(user)
        return RedirectResponse(f"{root(request)}/", status_code=303)


class SessionApi:
    """``/api/sessions``: create from a Canvas JWT, read the current one, log out (C3 to C5)."""

    def __init__(self, ctx: CommonsContext) -> None:
        self.ctx = ctx

    async def create(self, request: Request) -> Response:
        """POST /api/sessions ``{"jwt_token": ...}`` → 201, the session object and ``sessionId``."""
        token = await _jwt_from_body(request)
        sid, _row = await jwt_login.create_session(
            self.ctx.db, self.ctx.commons, self.ctx.settings.resolved_secret_key, token
        )
        metrics.token_issued("commons_session")
        found = await sessions.view(self.ctx.db, sid)
        if found is None:  # its user was deleted in the meantime
            raise errors.invalid_session()
        response = ORJSONResponse(
            {**sessions.session_object(sid, found), "sessionId": sid},
            status_code=201,
            headers={"Cache-Control": "no-store"},  # the new session id is a credential
        )
        sessions.set_cookie(response, sid, path=cookie_path(request), secure=self.ctx.settings.secure_cookies)
        return response

    async def _current(self, request: Request) -> tuple[sessions.PresentedId, sessions.SessionView]:
        # Bodies are read on GET too: Commons' docs name body ``sessionId`` among the places,
        # and the session endpoints are all GETs.
        presented = sessions.presented_id(request, await request.body())
        found = await sessions.view(self.ctx.db, presented.value if presented else None)
        if presented is None or found is None:
            raise errors.invalid_session()
        limited = await self.ctx.limits.per_session.hit(str(found.id))
        if not limited.allowed:
            raise errors.too_many_requests(self.ctx.limits.per_session.limit, limited.retry_after)
        return presented, found

    async def show(self, request: Request) -> Response:
        """GET /api/sessions/{id}: only the caller's own current session (spec C4)."""
        presented, found = await self._current(request)
        if not secrets.same(presented.value, request.path_params["session_id"]):
            raise errors.not_your_session()
        return ORJSONResponse(sessions.session_object(presented.value, found))

    async def logout(self, request: Request) -> Response:
        """GET /api/sessions/logout: 204; the row is deleted, so every instance refuses the id.

        A GET that names its session only by the ``session`` cookie is refused (403) when the
        browser says another site sent it (``Sec-Fetch-Site`` ``cross-site`` or ``same-site``):
        a link or redirect on any page would carry the cookie and log its reader out. Same-site
        is refused too, because a site's other hosts are not Commons (Canvas's shared
        ``instructure.com`` serves every school's pages); when Commons is mounted beside Canvas
        on one host, Canvas's pages are same-origin. Requests without the header (older
        browsers, API clients) and ids sent on purpose (header, query, body) are not affected:
        no other site can put those on a request.
        """
        presented, found = await self._current(request)
        if presented.source == sessions.COOKIE and request.headers.get("sec-fetch-site") in CROSS_SITE:
            raise errors.cross_site_logout()
        async with self.ctx.db.session(write=True) as session:
            await sessions.end(session, found.id)
        response = Response(status_code=204)
        sessions.clear_cookie(response, path=cookie_path(request), secure=self.ctx.settings.secure_cookies)
        return response


async def _jwt_from_body(request: Request) -> str:
    if _content_type(request) not in ("application/json", FORM):
        raise errors.bad_request('Send {"jwt_token": "..."} as application/json.')
    raw = await request.body()
    if _content_type(request) == FORM:
        params = await read_params(request, query=False)
        value: Any = params.get("jwt_token")
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # too deeply nested
            raise errors.bad_request("The request body is not valid JSON.") from exc
        value = data.get("jwt_token") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise errors.bad_request("The body must carry jwt_token, the JWT exactly as Canvas returned it.")
    return value


def commons_routes(ctx: CommonsContext) -> list[BaseRoute]:
    pages = CommonsPages(ctx)
    api = SessionApi(ctx)
    # Starlette tries routes in order, a regex each: the session read (the hot path) first,
    # after the one literal path its pattern would also match.
    return [
        Route("/api/sessions/logout", api.logout, methods=["GET"]),
        Route("/api/sessions/{session_id}", api.show, methods=["GET"]),
        Route("/api/sessions", api.create, methods=["POST"]),
        Route("/api/lti", pages.launch, methods=["POST"]),
        Route("/", pages.home, methods=["GET"]),
        Route("/terms", pages.terms, methods=["GET"]),
        Route("/terms", pages.accept_terms, methods=["POST"]),
    ]


def _is_api(request: Request) -> bool:
    return request.url.path.removeprefix(root(request)).startswith("/api/")


def _outage(path: str) -> Response:
    """A backend outage (``core.outage``): 503 in Commons' error format."""
    metrics.failure("commons", "backend_unavailable")
    response = errors.commons_error(503, "service_unavailable", MESSAGE).response()
    response.headers["Retry-After"] = "1"
    return response


def commons_asgi(ctx: CommonsContext) -> Starlette:
    """The service, to be mounted; errors answer in Commons' format (``errors``)."""

    async def wire_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WireError)
        return exc.response()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if _is_api(request):
            kind = "not_found" if exc.status_code == 404 else "bad_request"
            return errors.commons_error(exc.status_code, kind, str(exc.detail)).response()
        return ctx.message(request, exc.status_code, "Commons", str(exc.detail))

    async def bad_parameters(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadParameters)
        status = 413 if "too large" in exc.message else 400
        return errors.commons_error(status, "bad_request", exc.message).response()

    async def body_timeout(request: Request, exc: Exception) -> Response:
        # Answered here because this app's own 500 layer would catch it before ``Edge``.
        return body_timeout_response()

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, route_path(request.scope), exc_info=exc)
        if _is_api(request):
            return errors.commons_error(500, "server_error", "An error occurred.").response()
        return PlainTextResponse("Internal server error", status_code=500)

    app = Starlette(
        routes=commons_routes(ctx),
        middleware=[Middleware(OutageMiddleware, respond=_outage)],
        exception_handlers={
            WireError: wire_error,
            HTTPException: http_error,
            BadParameters: bad_parameters,
            BodyTimeout: body_timeout,
            Exception: server_error,
        },
    )
    redirect_slashes_to(app.router, ctx.settings.public_url)
    return app


async def _sweep_forever(db: Database, interval: float) -> None:
    """Remove sessions, nonces and JWT records that can never be used again."""
    while True:
        await asyncio.sleep(interval)
        try:
            async with db.session(write=True) as session:
                await sessions.remove_expired(session)
        except Exception:  # a failed sweep must not stop the next one
            log.exception("periodic clean-up failed")


def create_commons_app(settings: Settings | None = None) -> Starlette:
    """Commons alone, at ``LMSAUTH_COMMONS_PATH`` (set it to "" to serve at the root, as
    lor.instructure.com does). Migrations are applied by the caller."""
    settings = settings or Settings()
    db = Database(settings.resolved_database_url)
    store = create_store(
        settings.redis_url, namespace=settings.redis_namespace, timeout=settings.backend_timeout_seconds
    )
    ctx = CommonsContext(settings=settings, db=db, limits=RateLimits(store, settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_forever(db, settings.cleanup_interval_seconds))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await db.dispose()
            await store.close()

    app = Starlette(
        routes=[
            *metrics.metrics_routes(settings.metrics, settings.metrics_token),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            Mount(settings.commons_path.rstrip("/"), app=commons_asgi(ctx)),
        ],
        middleware=[
            # Outages under Commons' paths are answered by ``commons_asgi``'s own layer, in
            # Commons' format; the probes and static files have nothing to fail on.
            Middleware(
                Edge,
                max_bytes=settings.max_body_bytes,
                body_timeout=settings.body_timeout_seconds,
                hsts=settings.hsts,
                count=settings.metrics,
                respond=None,
            ),
        ],
        lifespan=lifespan,
    )
    redirect_slashes_to(app.router, settings.public_url)
    app.state.settings = settings
    app.state.db = db
    return app
