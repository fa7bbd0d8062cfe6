"""The emulator's ASGI middleware: it guards the control API, answers injected faults before
the app runs, records traffic, and marks every response (and every page) as an emulator's.

Unless ``LMSAUTH_EMULATOR_ALLOW_REMOTE``, the emulator serves this machine only, and trusts
only the connection's own address (``scope["client"]``): a request that carries forwarding
headers is refused whatever they say, so a proxy on this machine cannot relay a remote caller
in. It also refuses, on every path, a ``Host`` that is not this machine's or the public URL's
(a DNS rebinding page would name its own host). Browsers' cross-site writes to the control
API are refused by ``Origin``, so a web page cannot drive it through a developer's browser.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmsauth.core import clock
from lmsauth.core.network import is_loopback
from lmsauth.emulator import records
from lmsauth.emulator.faults import answer
from lmsauth.emulator.state import EmulatorState
from lmsauth.emulator.traffic import Entry

log = logging.getLogger("lmsauth.emulator")

CONTROL_PREFIX = "/_emulator"
MARK_HEADER = (b"x-lmsauth-emulator", b"1")
FORWARDING_HEADERS = ("x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip")
PEEK_LIMIT = 65_536
CANVAS_COOKIE = "canvas_session"
COMMONS_COOKIE = "session"
# The opening body tag, with or without attributes (the signed-in layout sets a class).
_BODY_TAG = re.compile(rb"<body(?:\s[^>]*)?>")
BANNER_CSS = b'<link rel="stylesheet" href="/_emulator/static/emulator.css">'
BANNER = (
    b'<div class="lmsauth-emulator-banner" role="note"><strong>Emulator.</strong> This is lmsauth in '
    b"emulator mode, not a real Canvas, Identity Service or Commons: its clock can be moved, faults "
    b'injected and traffic inspected at <a href="/_emulator/">/_emulator/</a>.</div>'
)


def is_control_path(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def remote_refusal(scope: Scope, headers: Headers) -> str | None:
    """Why a request is not from this machine, or None: an emulator serves loopback only."""
    client = scope.get("client")
    if not client or not is_loopback(client[0]):
        return "The lmsauth emulator answers only requests from this machine (loopback)."
    if any(name in headers for name in FORWARDING_HEADERS):
        return "The lmsauth emulator does not answer forwarded requests."
    return None


def host_refusal(headers: Headers, public_host: str | None) -> str | None:
    """Why a request is not addressed to this machine, or None. A page on an attacker's name
    that resolves to 127.0.0.1 (DNS rebinding) reaches the emulator from the developer's own
    browser, over loopback, and reads the answers as same-origin: only its ``Host`` tells."""
    host = urlsplit("//" + headers.get("host", "")).hostname
    if is_loopback(host) or (host is not None and host == public_host):
        return None
    return "The lmsauth emulator answers only requests addressed to this machine."


def refusal(scope: Scope, headers: Headers) -> str | None:
    """Why this control request is refused, or None."""
    if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
        origin = headers.get("origin")
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
        if (origin is not None and origin != own) or headers.get("sec-fetch-site") == "cross-site":
            return "The emulator's control API refuses cross-site requests from browsers."
    return None


async def _send_json(send: Send, status: int, data: Any) -> None:
    body = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                MARK_HEADER,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _marked(send: Send, method: str) -> Send:
    """Add the emulator header everywhere, and the banner to every HTML page (a HEAD answer
    has no body to put it in, and keeps the length its GET would have)."""
    held: list[Message] = []
    chunks: list[bytes] = []

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            headers = MutableHeaders(scope=message)
            headers.append(*(part.decode() for part in MARK_HEADER))
            if method != "HEAD" and headers.get("content-type", "").startswith("text/html"):
                held.append(message)
                return
        elif message["type"] == "http.response.body" and held:
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            body = body.replace(b"</head>", BANNER_CSS + b"</head>", 1)
            body = _BODY_TAG.sub(lambda tag: tag.group(0) + BANNER, body, count=1)
            start = held.pop()
            MutableHeaders(scope=start)["content-length"] = str(len(body))
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return marked


class EmulatorMiddleware:
    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state
        self.allow_remote = state.settings.emulator_allow_remote
        self.public_host = urlsplit(state.settings.public_url).hostname
        self.commons_path = state.settings.commons_path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        send = _marked(send, scope["method"])
        headers = Headers(scope=scope)
        reason = (
            None
            if self.allow_remote
            else remote_refusal(scope, headers) or host_refusal(headers, self.public_host)
        )
        if reason is not None:
            await _send_json(send, 403, {"error": {"type": "forbidden", "message": reason}})
            return
        if is_control_path(path):
            reason = refusal(scope, headers)
            if reason is not None:
                await _send_json(send, 403, {"error": {"type": "forbidden", "message": reason}})
                return
            await self.app(scope, receive, send)
            return
        if path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        await self._observed(scope, receive, send)

    async def _observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client")
        entry = self.state.traffic.start(clock.now(), method, path, query, client[0] if client else None)
        receive = await self._identify(entry, scope, receive, query)
        started = time.perf_counter()
        fault = self.state.faults.take(method, path)
        try:
            if fault is not None:
                entry.fault = fault.id
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    reply = answer(fault, path, self.commons_path)
                    entry.status = reply.status
                    await send(
                        {"type": "http.response.start", "status": reply.status, "headers": reply.headers}
                    )
                    await send({"type": "http.response.body", "body": reply.body})
                    return

            async def recording(message: Message) -> None:
                if message["type"] == "http.response.start":
                    entry.status = message["status"]
                await send(message)

            await self.app(scope, receive, recording)
        finally:
            if entry.status is None:
                entry.status = 500
            entry.latency_ms = round((time.perf_counter() - started) * 1000, 1)

    async def _identify(self, entry: Entry, scope: Scope, receive: Receive, query: str) -> Receive:
        """Fill in who is calling; returns a ``receive`` that replays any body read to find out."""
        headers = Headers(scope=scope)
        params = dict(parse_qsl(query, keep_blank_values=True))
        replay: list[Message] = []
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        length = headers.get("content-length", "")
        if (
            content_type == "application/x-www-form-urlencoded"
            and length.isdigit()
            and int(length) <= PEEK_LIMIT
        ):
            body = b""
            while True:
                message = await receive()
                replay.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            await self._who(entry, headers, params)
        except Exception:  # the log is a convenience: it must never fail a request
            log.debug("could not tell who sent %s %s", entry.method, entry.path, exc_info=True)

        async def replayed() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        return replayed

    async def _who(self, entry: Entry, headers: Headers, params: dict[str, str]) -> None:
        entry.client_id = params.get("client_id") or None
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.strip().partition(" ")
        bearer = credentials.strip() if scheme.lower() == "bearer" else headers.get("x-instauth")
        bearer = bearer or params.get("access_token")  # Canvas also takes the token as a parameter
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if ":" in decoded:
                entry.client_id = unquote(decoded.split(":", 1)[0])
        cookies = _cookies(headers.get("cookie", ""))
        commons_id = headers.get("x-session-id") or params.get("session-id") or cookies.get(COMMONS_COOKIE)
        if bearer and bearer.count(".") == 2:
            try:
                claims = jwt.decode(bearer, options={"verify_signature": False})
            except jwt.PyJWTError:
                claims = {}
            subject = claims.get("sub")
            if isinstance(subject, str):
                entry.client_id = subject
            bearer = None
        if not (bearer or cookies.get(CANVAS_COOKIE) or commons_id):
            return
        async with self.state.db.session() as session:
            if bearer:
                client_id, user = await records.canvas_bearer_owner(session, bearer)
                entry.client_id = client_id or entry.client_id
                entry.user = user
            if entry.user is None and cookies.get(CANVAS_COOKIE):
                entry.user = await records.browser_session_user(session, cookies[CANVAS_COOKIE])
            if (
                entry.user is None
                and commons_id
                and self.commons_path
                and entry.path.startswith(self.commons_path + "/")
            ):
                entry.user = await records.commons_session_user(session, commons_id)


def _cookies(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name and name not in found:
            found[name] = value
    return found
