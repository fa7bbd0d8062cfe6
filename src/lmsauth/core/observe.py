"""What is watched of every request: its id, its access-log line, its metrics.

``core.edge.Edge``, the one ASGI layer in front of every service, calls into this. The request
id is the incoming ``X-Request-Id`` when it is short and made of safe characters (a
balancer's or a client's, so one id follows a request across systems), else a fresh random
one; it is echoed in the response's ``X-Request-Id`` and stamped, through
``core.logs.REQUEST_ID``, on every line logged while the request is served.

The access line holds the method, the route template, the status, the duration, the request
id and the client address: never the raw path, the query string, a header or a body.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from starlette.responses import Response
from starlette.types import Scope

from lmsauth.core import metrics
from lmsauth.core.logs import ACCESS_LOGGER, REQUEST_ID

access_log = logging.getLogger(ACCESS_LOGGER)

HEADER = b"x-request-id"
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# Probes that answer every few seconds: logged at DEBUG when they succeed, to keep the log for people.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def incoming_id(scope: Scope) -> str | None:
    """The request's own ``X-Request-Id``, if it is 1 to 64 of ``A-Z a-z 0-9 . _ : -``."""
    for name, value in scope["headers"]:
        if name == HEADER:
            return safe_id(value)
    return None


def safe_id(value: bytes) -> str | None:
    """``value`` (an ``X-Request-Id`` header) if it may be echoed and logged as it is."""
    return value.decode("ascii") if _SAFE_ID.fullmatch(value) else None


def new_id() -> str:
    return os.urandom(16).hex()


def route_path(scope: Scope) -> str:
    """The path template of the route that matched (``/api/sessions/{session_id}``), for a log
    line that names the request: the raw path can hold an id that is a secret."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED


def with_request_id(response: Response) -> Response:
    """``response`` announcing the current request's id: for the answers Starlette sends from
    outside the middleware (its handler of unhandled errors)."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        response.headers["x-request-id"] = request_id
    return response


class Observer:
    """Records each finished HTTP request: the metrics (``count=True``) and the access line.

    Used by ``core.edge.Edge``, the one layer every request crosses; kept apart so that what
    an access line may hold is decided in this module only.
    """

    def __init__(self, count: bool = True) -> None:
        self.counter = metrics.RequestCounter() if count else None
        self._templates: dict[int, str] | None = None

    def start(self, scope: Scope) -> None:
        """Called as a request comes in, before routing: ``scope["app"]`` is then the app this
        layer serves (a mounted Starlette app replaces it on the way down)."""
        if self._templates is None:  # the app's routes, once
            self._templates = metrics.route_templates(scope.get("app"))

    def record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        matched = scope.get("route")
        templates = self._templates or {}
        route = templates.get(id(matched), metrics.UNMATCHED) if matched else metrics.UNMATCHED
        method = scope["method"] if scope["method"] in metrics.METHODS else "other"
        if self.counter is not None:
            self.counter.done(method, route, status, seconds)
        level = logging.DEBUG if route in PROBES and status < 400 else logging.INFO
        if access_log.isEnabledFor(level):
            client: Any = scope.get("client")
            # makeRecord and handle: Logger.log would also walk the stack to find its caller.
            record = access_log.makeRecord(
                ACCESS_LOGGER,
                level,
                __file__,
                0,
                "%s %s %s %.1fms",
                (method, route, status, seconds * 1000),
                None,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client_ip": client[0] if client else None,
                    "request_id": request_id,
                },
            )
            access_log.handle(record)
