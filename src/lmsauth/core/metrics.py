"""Prometheus metrics: requests and their latency by route, tokens issued, failures by reason,
and the ``/metrics`` endpoint that exposes them.

Services record what happened through ``token_issued(kind)`` and ``failure(service, reason)``;
core knows no service. Labels are bounded: a request is labelled with its route's path
template (``/commons/api/sessions/{session_id}``), never the raw path, which can hold ids and
session ids; a request no route matched is ``unmatched``; an unusual method is ``other``.

``/metrics`` reveals operational data, so it is guarded: with ``LMSAUTH_METRICS_TOKEN`` set it
answers only ``Authorization: Bearer <token>``, from anywhere; without one it answers only
connections from this machine (loopback, not forwarded by a proxy). ``LMSAUTH_METRICS=false``
removes the route and the request counting.

Each process counts for itself. ``lmsauth serve --workers N`` runs prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set up by the CLI), so any worker's
``/metrics`` answers for all of them; separate instances are scraped separately.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from lmsauth.core.network import is_loopback
from lmsauth.core.routing import PrefixGroup

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
FORWARDING_HEADERS = ("x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip")
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

disable_created_metrics()  # type: ignore[no-untyped-call]  # no "_created" series: noise

REQUESTS = Counter(
    "lmsauth_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "lmsauth_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TOKENS = Counter(
    "lmsauth_tokens_issued",
    "Credentials issued, by kind: canvas_code, canvas_token_authorization_code, "
    "canvas_token_refresh_token, identity_jwt, commons_session.",
    ["kind"],
)
FAILURES = Counter(
    "lmsauth_failures",
    "Refused requests and outages, by service and reason (an OAuth error code, an error type, "
    "backend_unavailable).",
    ["service", "reason"],
)


def token_issued(kind: str) -> None:
    """A credential of ``kind`` was issued (``canvas_code``, ``identity_jwt``, ...)."""
    _tokens_child(kind).inc()


def failure(service: str, reason: str) -> None:
    """``service`` refused a request for ``reason`` (or could not serve it: ``backend_unavailable``)."""
    _failures_child(service, reason).inc()


# prometheus_client's ``labels()`` validates and converts its values and takes a lock on every
# call (~3 % of an identity login in py-spy); a label set's child never changes, so it is looked
# up once. The label values are the code's own constants (kinds, error codes): a few dozen.
@functools.lru_cache(maxsize=1024)
def _tokens_child(kind: str) -> Any:
    return TOKENS.labels(kind)


@functools.lru_cache(maxsize=1024)
def _failures_child(service: str, reason: str) -> Any:
    return FAILURES.labels(service, reason)


class RequestCounter:
    """Counts finished requests; keeps each label set's children, so a request costs two
    dictionary lookups and two increments rather than prometheus_client's ``labels()``."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def done(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def route_templates(app: Any) -> dict[int, str]:
    """Every route of ``app`` (Mounts walked), by ``id(route)``, to its full path template.

    Starlette's router leaves the innermost matched route in ``scope["route"]``; a Mount whose
    app has no routes of its own (static files), or none of which matched, is its own template.
    """
    templates: dict[int, str] = {}

    def walk(routes: Iterable[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                templates[id(route)] = prefix + route.path_format
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route | WebSocketRoute):
                templates[id(route)] = prefix + route.path_format
            elif isinstance(route, PrefixGroup):
                walk(route.routes, prefix)

    walk(getattr(app, "routes", ()), "")
    return templates


def exposition() -> bytes:
    """The metrics in Prometheus' text format: this process's, or, in multiprocess mode, the
    sum over every worker that wrote to ``PROMETHEUS_MULTIPROC_DIR``."""
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def refusal(request: Request, token: str | None) -> Response | None:
    """Why ``request`` may not read the metrics, as the response to send; None if it may."""
    if token:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
            return PlainTextResponse(
                "Send Authorization: Bearer <LMSAUTH_METRICS_TOKEN>.",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="lmsauth-metrics"', "Cache-Control": "no-store"},
            )
        return None
    client = request.scope.get("client")
    if (
        not client
        or not is_loopback(client[0])
        or any(name in request.headers for name in FORWARDING_HEADERS)
    ):
        return PlainTextResponse(
            "Metrics answer only this machine; set LMSAUTH_METRICS_TOKEN to scrape from elsewhere.",
            status_code=403,
            headers={"Cache-Control": "no-store"},
        )
    return None


def metrics_routes(enabled: bool, token: str | None) -> list[BaseRoute]:
    """``GET /metrics`` when ``enabled`` (``LMSAUTH_METRICS``), guarded by ``refusal``."""
    if not enabled:
        return []

    async def metrics(request: Request) -> Response:
        refused = refusal(request, token)
        if refused is not None:
            return refused
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return [Route("/metrics", metrics, methods=["GET"])]
