"""Backend outages: a database or Redis that is down, restarting or too slow.

Such a request fails fast (``core.db`` and ``core.kv`` bound every wait) and gets 503 with
``Retry-After``, in the wire format of the service it was for, never a 500 and never a hang.
Nothing is cached about the outage: the next request tries the backend again, so the server
recovers by itself when the backend is back (the database pool tests connections before use).
``/healthz`` says the process is up; ``/readyz`` whether the database and Redis answer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmsauth.core import metrics
from lmsauth.core.db import Database
from lmsauth.core.kv import Store, StoreUnavailable
from lmsauth.core.observe import route_path

log = logging.getLogger("lmsauth.outage")

MESSAGE = "The service is temporarily unavailable; try again shortly."
HEADERS = {"Retry-After": "1", "Cache-Control": "no-store"}
_NOT_NETWORK = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)
_ASYNCPG_OUTAGES = (
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, cannot connect now, timeout
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections
    asyncpg.exceptions.ConnectionDoesNotExistError,
)
_OUTAGES = (
    StoreUnavailable,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    TimeoutError,
    socket.gaierror,
    *_ASYNCPG_OUTAGES,
)


def is_outage(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) says a backend could not be reached in time."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, OSError) and not isinstance(current, _NOT_NETWORK):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def outage_response(path: str) -> Response:
    """The 503 of the main app, shaped like each service's own errors."""
    metrics.failure(_service_of(path), "backend_unavailable")
    if path.startswith("/login/oauth2/token"):
        body: Any = {"error": "temporarily_unavailable", "error_description": MESSAGE}  # RFC 6749 4.1.2.1
    elif path.startswith(("/ids/", "/dap/")):
        body = {"error": {"type": "ServiceUnavailableError", "uuid": str(uuid.uuid4()), "message": MESSAGE}}
    elif path.startswith("/api/"):
        body = {"errors": [{"message": MESSAGE}]}
    else:
        return PlainTextResponse(MESSAGE, status_code=503, headers=HEADERS)
    return JSONResponse(body, status_code=503, headers=HEADERS)


def _service_of(path: str) -> str:
    """Which service of the main app ``path`` belongs to (Commons counts its own outages)."""
    if path.startswith("/ids/"):
        return "identity"
    if path.startswith("/dap/"):
        return "dap"
    return "emulator" if path.startswith("/_emulator") else "canvas"


class OutageMiddleware:
    """Turns a backend outage under any route into ``respond(path)`` (a 503), if no response
    has started yet; everything else passes through untouched."""

    def __init__(self, app: ASGIApp, respond: Callable[[str], Response] = outage_response) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started or not is_outage(exc):
                raise
            await answer_outage(exc, self.respond, scope, receive, send)


async def answer_outage(
    exc: Exception, respond: Callable[[str], Response], scope: Scope, receive: Receive, send: Send
) -> None:
    """Log the outage ``exc`` (by route template: the raw path can hold a session id) and
    send ``respond(path)``."""
    log.warning(
        "backend unavailable on %s %s: %s: %s", scope["method"], route_path(scope), type(exc).__name__, exc
    )
    await respond(scope["path"])(scope, receive, send)


def health_routes(db: Database, store: Store | None, timeout: float) -> list[BaseRoute]:
    """``/healthz``: the process answers. ``/readyz``: the database and Redis answer within
    ``timeout`` seconds (503 otherwise), for a load balancer to route around an instance."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def check(probe: Callable[[], Any]) -> str:
        try:
            await asyncio.wait_for(probe(), timeout)
        except Exception as exc:
            if not is_outage(exc):
                log.exception("readiness probe failed")
            return f"unavailable ({type(exc).__name__})"
        return "ok"

    async def readyz(request: Request) -> Response:
        checks = {"database": await check(db.ping)}
        checks["redis"] = await check(store.ping) if store is not None and store.shared else "not configured"
        ready = all(value in ("ok", "not configured") for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", **checks},
            status_code=200 if ready else 503,
            headers={"Cache-Control": "no-store", **({} if ready else {"Retry-After": "1"})},
        )

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
