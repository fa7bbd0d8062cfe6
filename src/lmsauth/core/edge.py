"""The one ASGI layer every request crosses before a service sees it.

It does four jobs that were four middleware layers: the request id, the access line and the
request metrics (``core.observe``); a backend outage turned into a 503 in the service's own
format (``core.outage``); the security headers (``core.web.secured``); and the bounds on the
body's size and on the time it takes to arrive. As one layer they cost one coroutine frame
and one wrapped ``send`` and ``receive`` a request instead of four (~10 us less of CPU a
request on the benchmark core, ``benchmarks/ANALYSIS.md``). Written by hand for the reason
the layers were: Starlette's ``BaseHTTPMiddleware`` would cost a task and a stream per request.

What each job promises is unchanged: every response, error pages and 503s included, carries
``X-Request-Id`` and the security headers; a body over the bound is refused with 413 before
the app reads it all (a declared ``Content-Length`` at once, a streamed body when it crosses
the bound); an outage becomes a 503 only if no response has started.

A body must arrive within ``body_timeout`` seconds of the app's first read of it, else the
request gets 408 (plain text, ``BodyTimeout``) and its connection is closed: uvicorn has no
read timeout of its own, so a client declaring 100 bytes and sending 10 held a request, and
its connection, for as long as it liked. A response that starts before its request's body has
been read to the end says ``Connection: close``, so that a body the app never reads cannot
keep the connection open either (uvicorn would go on reading it for the next request, and
every byte trickled in restarts its keep-alive timer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import perf_counter

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmsauth.core.errors import BadParameters
from lmsauth.core.logs import REQUEST_ID
from lmsauth.core.observe import HEADER, Observer, new_id, safe_id
from lmsauth.core.outage import answer_outage, is_outage, outage_response
from lmsauth.core.web import secured

_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_CLOSE = (b"connection", b"close")
_HSTS = (b"strict-transport-security", b"max-age=31536000")
TOO_LARGE = b"Request body too large"
# Set in the scope by the server (``lmsauth.serving``) once it holds the request's whole body:
# ``receive`` then answers without waiting, so the body's bound needs no timer.
BODY_RECEIVED = "lmsauth.body_received"
TIMED_OUT = b"Request body not received in time"


class BodyTimeout(Exception):
    """The body did not arrive within the bound: 408, from ``Edge`` or a mounted app's handler
    (``body_timeout_response``). Not a ``TimeoutError``: that would read as a backend outage."""


def body_timeout_response() -> Response:
    return Response(TIMED_OUT, status_code=408, media_type="text/plain")


class Edge:
    """Request id, access line, metrics (``count``), security headers (``hsts`` adds
    ``Strict-Transport-Security``: for a server only reached over https), body bounds
    (``max_bytes``, ``body_timeout`` seconds) and, unless ``respond`` is None, outages answered
    with ``respond(path)``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        body_timeout: float = 30.0,
        hsts: bool = False,
        count: bool = True,
        respond: Callable[[str], Response] | None = outage_response,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout
        self.hsts = hsts
        self.observer = Observer(count)
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        self.observer.start(scope)
        request_id: str | None = None
        seen_id = False
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:  # one pass for the headers this layer reads
            if name == HEADER and not seen_id:
                seen_id = True
                request_id = safe_id(value)
            elif name == _CONTENT_LENGTH and declared is None:
                declared = value
            elif name == _TRANSFER_ENCODING:
                chunked = True
        body = _Body(pending=chunked or (declared is not None and declared != b"0"))
        request_id = request_id or new_id()
        reset = REQUEST_ID.set(request_id)
        id_header = (HEADER, request_id.encode())
        status = 500  # what the client sees if the app raises before answering
        responded = False

        async def edge_send(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                headers = secured(message.get("headers", ()))  # a new list: appended to, not copied
                headers.append(id_header)
                if self.hsts:
                    headers.append(_HSTS)
                if body.pending:
                    headers.append(_CLOSE)
                message["headers"] = headers
            await send(message)

        try:
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
                await _send_plain(edge_send, 413, TOO_LARGE)
            else:
                try:
                    await self.app(scope, self._bounded(scope, receive, body), edge_send)
                except BodyTimeout:  # raised in a layer outside the app's own error handlers
                    if responded:
                        raise
                    await body_timeout_response()(scope, receive, edge_send)
                except Exception as exc:
                    if responded or self.respond is None or not is_outage(exc):
                        raise
                    await answer_outage(exc, self.respond, scope, receive, edge_send)
        finally:
            self.observer.record(scope, status, perf_counter() - started, request_id)
        # On an exception the id stays set: Starlette's error handler and uvicorn log the
        # traceback after this returns, and each request runs in a task of its own.
        REQUEST_ID.reset(reset)

    def _bounded(self, scope: Scope, receive: Receive, body: _Body) -> Receive:
        """``receive`` that raises ``BadParameters`` (413 in each service's format) once the
        body passes ``max_bytes``, whatever the request declared, and ``BodyTimeout`` when the
        body is not all there ``body_timeout`` seconds after the app first asked for it. The
        timer (``asyncio.timeout_at``, ~8 us of CPU) is armed only when the server has not
        said it holds the whole body (``BODY_RECEIVED``): a small form usually arrives with
        its head, and is then read without one."""
        received = 0
        limit = self.max_bytes
        timeout = self.body_timeout
        deadline: float | None = None

        async def bounded() -> Message:
            nonlocal received, deadline
            if not body.pending:  # nothing left to wait for: uvicorn answers at once
                return await receive()
            message: Message | None = None
            if scope.get(BODY_RECEIVED):
                message = await receive()
            else:
                if deadline is None:
                    deadline = asyncio.get_running_loop().time() + timeout
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    pass
            if message is None:  # raised here, not above: its context would read as an outage
                raise BodyTimeout
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    body.pending = False
                if received > limit:
                    raise BadParameters("request body too large")
            return message

        return bounded


class _Body:
    """Whether a request's body may still hold bytes the app has not read."""

    __slots__ = ("pending",)

    def __init__(self, *, pending: bool) -> None:
        self.pending = pending


async def _send_plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
