"""Compose the ASGI app: which services, which paths, the shared middleware and error pages."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import yaml
from sqlalchemy.orm import configure_mappers
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lmsauth.canvas import tokens as canvas_tokens
from lmsauth.canvas.context import CanvasContext
from lmsauth.canvas.errors import not_found
from lmsauth.canvas.routes import canvas_routes
from lmsauth.commons import sessions as commons_sessions
from lmsauth.commons.app import CommonsContext, commons_asgi
from lmsauth.core.db import Database
from lmsauth.core.edge import Edge
from lmsauth.core.errors import BadParameters
from lmsauth.core.keys import KeyLifecycle, KeyRing
from lmsauth.core.kv import create_store
from lmsauth.core.metrics import metrics_routes
from lmsauth.core.observe import route_path, with_request_id
from lmsauth.core.outage import health_routes
from lmsauth.core.ratelimit import RateLimits
from lmsauth.core.routing import PrefixGroup, redirect_slashes_to
from lmsauth.dap.api import dap_routes
from lmsauth.dap.jobs import JobRunner
from lmsauth.dap.objects import create_object_store
from lmsauth.emulator import EmulatorMiddleware, EmulatorState, emulator_routes
from lmsauth.identity.routes import identity_routes
from lmsauth.settings import Settings

log = logging.getLogger("lmsauth")
STATIC = Path(__file__).parent / "core" / "static"
SERVICES = ("canvas", "identity", "dap", "commons")
OPENAPI = Path(__file__).parent / "openapi.yaml"


@functools.cache
def openapi_json() -> bytes:
    """The spec-first OpenAPI document (``openapi.yaml``, DESIGN.md "Web stack") as JSON,
    converted once per process. It describes every service at its default paths. PyYAML's
    libyaml loader (in its wheels) reads it in ~50 ms where the pure-Python one takes ~290 ms of
    every server's start; the same safe loader, so the same document."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return json.dumps(yaml.load(OPENAPI.read_text(encoding="utf-8"), Loader=loader)).encode()  # noqa: S506


def parse_services(text: str) -> frozenset[str]:
    """``all`` or a comma-separated subset of ``SERVICES`` (``lmsauth serve --services``)."""
    if text.strip() in ("", "all"):
        return frozenset(SERVICES)
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = chosen - set(SERVICES)
    if unknown or not chosen:
        raise ValueError(
            f"unknown services: {', '.join(sorted(unknown)) or text!r}; choose from {', '.join(SERVICES)}"
        )
    return chosen


async def _cleanup_forever(
    db: Database,
    interval: float,
    services: frozenset[str],
    keyrings: list[KeyRing],
    dap: JobRunner | None,
) -> None:
    """Remove rows that can never be used again (expired codes, sessions, revoked tokens,
    retired signing keys, expired DAP jobs and their files, old changes) and rotate the
    signing keys when old (``KeyRing.maintain``)."""
    while True:
        await asyncio.sleep(interval)
        try:
            for keyring in keyrings:
                await keyring.maintain()
            async with db.session(write=True) as session:
                await canvas_tokens.remove_expired(session)
                if "commons" in services:
                    await commons_sessions.remove_expired(session)
            if dap is not None:
                await dap.sweep()
        except Exception:  # a failed sweep must not stop the next one
            log.exception("periodic clean-up failed")


def create_app(settings: Settings | None = None, services: Iterable[str] | None = None) -> Starlette:
    """The whole server, or the ``services`` chosen (default: ``settings.services``).
    Migrations are applied by the caller (``lmsauth serve``, tests)."""
    settings = settings or Settings()
    chosen = frozenset(services) if services is not None else parse_services(settings.services)
    commons_path = settings.commons_path.rstrip("/")
    if "commons" in chosen and not commons_path and chosen != {"commons"}:
        raise ValueError("Commons can serve at the root path only when it runs alone (--services commons)")
    db = Database(settings.resolved_database_url, timeout=settings.backend_timeout_seconds)
    store = create_store(
        settings.redis_url, namespace=settings.redis_namespace, timeout=settings.backend_timeout_seconds
    )
    keyring = KeyRing(
        db,
        settings.resolved_secret_key,
        store=store,
        lifecycle=KeyLifecycle.from_settings(settings),
        algorithms=settings.signing_algorithms,
    )
    lti_keyring = KeyRing(
        db,
        settings.resolved_secret_key,
        store=store,
        lifecycle=KeyLifecycle.from_settings(settings),
        ring="lti",
        keep_future=True,
    )
    limits = RateLimits(store, settings)
    canvas = CanvasContext(
        settings=settings, db=db, keyring=keyring, limits=limits, store=store, lti_keyring=lti_keyring
    )
    emulator = EmulatorState(settings, db, keyring, store, limits) if settings.emulator else None
    dap_runner = (
        JobRunner(settings, db, create_object_store(settings.dap_object_store, db, settings.data_dir))
        if "dap" in chosen
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await keyring.load()
        if "canvas" in chosen:
            await lti_keyring.load()
        if emulator is not None:
            await emulator.start()
        sweeper = asyncio.create_task(
            _cleanup_forever(
                db,
                settings.cleanup_interval_seconds,
                chosen,
                [keyring, lti_keyring] if "canvas" in chosen else [keyring],
                dap_runner,
            )
        )
        dap_worker = asyncio.create_task(dap_runner.run_forever()) if dap_runner is not None else None
        if settings.gc_freeze:
            # The app, its routes, mappers and templates live as long as the process: frozen,
            # a full collection no longer walks them (it paused requests for 25-85 ms before).
            configure_mappers()
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            for task in (sweeper, dap_worker):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await db.dispose()
            await store.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/") and exc.status_code == 404:
            return not_found().response()
        if exc.status_code == 404:
            return canvas.render(
                request,
                "message.html",
                404,
                title="Page not found",
                message="The page you asked for does not exist.",
            )
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)

    async def bad_parameters(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadParameters)
        return PlainTextResponse(exc.message, status_code=413 if "too large" in exc.message else 400)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, route_path(request.scope), exc_info=exc)
        if request.url.path.startswith("/api/"):
            body = {"errors": [{"message": "An error occurred."}]}
            return with_request_id(JSONResponse(body, status_code=500))
        return with_request_id(PlainTextResponse("Internal server error", status_code=500))

    openapi = openapi_json()

    async def openapi_document(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    app = Starlette(
        # Starlette tries routes in order, a regex each: the services' routes (whose paths
        # never overlap) come first, so an API call does not pay for the probes' and pages'.
        # The services under a prefix of their own are ``PrefixGroup``s: one ``startswith``
        # each for a request that is not theirs, and a login no longer tries Canvas's routes.
        routes=[
            *(
                [
                    PrefixGroup(
                        commons_path + "/",
                        [
                            Mount(
                                commons_path,
                                app=commons_asgi(CommonsContext(settings=settings, db=db, limits=limits)),
                            )
                        ],
                    )
                ]
                if "commons" in chosen and commons_path
                else []
            ),
            *(
                [PrefixGroup("/ids/", identity_routes(settings, db, keyring, limits))]
                if "identity" in chosen
                else []
            ),
            *(
                [PrefixGroup("/dap/", dap_routes(settings, db, keyring, dap_runner))]
                if dap_runner is not None
                else []
            ),
            *(canvas_routes(canvas) if "canvas" in chosen else []),
            Route("/openapi.json", openapi_document, methods=["GET"]),
            *health_routes(db, store, settings.backend_timeout_seconds),
            *metrics_routes(settings.metrics, settings.metrics_token),
            *(emulator_routes(emulator) if emulator is not None else []),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            *(
                # Commons alone at the root path (``--services commons``) catches every path: last.
                [Mount("", app=commons_asgi(CommonsContext(settings=settings, db=db, limits=limits)))]
                if "commons" in chosen and not commons_path
                else []
            ),
        ],
        middleware=[
            Middleware(
                Edge,
                max_bytes=settings.max_body_bytes,
                body_timeout=settings.body_timeout_seconds,
                hsts=settings.hsts,
                count=settings.metrics,
            ),
            *([Middleware(EmulatorMiddleware, state=emulator)] if emulator is not None else []),
        ],
        exception_handlers={
            HTTPException: http_error,
            BadParameters: bad_parameters,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    redirect_slashes_to(app.router, settings.public_url)
    app.state.settings = settings
    app.state.db = db
    app.state.keyring = keyring
    app.state.lti_keyring = lti_keyring
    app.state.store = store
    app.state.limits = limits
    app.state.emulator = emulator
    app.state.dap_runner = dap_runner
    return app
