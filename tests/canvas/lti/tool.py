"""An LTI 1.3 tool for the tests: pylti1p3 2.x, unmodified, behind a tiny WSGI app served on a
real port (``wsgiref``), so that browsers, httpx and Chromium reach it as they would any tool.

pylti1p3 needs four small adapters (spec lti13.md 9.3): a request (parameters, session,
``is_secure``), a cookie service, a redirect, and the two abstract methods of ``OIDCLogin``
and ``MessageLaunch``. The tool's session is a server-side dict named by a ``tool_sid``
cookie; the cookies pylti1p3 sets (its ``lti1p3-state-*``) go out as ``Set-Cookie``.

- ``/login`` (GET or POST): ``OIDCLogin.redirect(<tool>/launch)``, a 302 to the platform;
- ``/launch`` (POST): ``MessageLaunch`` validates the id_token; a resource link launch shows
  a page naming the user and the context, a deep linking launch answers with pylti1p3's own
  auto-posting form carrying its response JWT for ``deep_link_items``; ``on_launch`` lets a test
  act as the tool's back end, calling the launch's own NRPS and AGS services;
- ``/jwks``: the tool's JWK set (``ToolConfDict.get_jwks()``), for ``public_jwk_url`` keys.
"""

from __future__ import annotations

import html
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pylti1p3.cookie import CookieService
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.oidc_login import OIDCLogin
from pylti1p3.redirect import Redirect
from pylti1p3.request import Request
from pylti1p3.session import SessionService
from pylti1p3.tool_config import ToolConfDict

from lmsauth.testing import free_port


class ToolRequest(Request):
    def __init__(self, params: dict[str, str], session: dict[str, Any]) -> None:
        self._params = params
        self._session = session

    @property
    def session(self) -> dict[str, Any]:
        return self._session

    def is_secure(self) -> bool:
        return False

    def get_param(self, key: str) -> Any:
        return self._params.get(key)


class ToolCookies(CookieService):
    def __init__(self, sent: dict[str, str], to_set: list[tuple[str, str]]) -> None:
        self.sent = sent
        self.to_set = to_set

    def get_cookie(self, name: str) -> str | None:
        return self.sent.get(name)

    def set_cookie(self, name: str, value: str | int, exp: int | None = 3600) -> None:
        self.to_set.append((name, str(value)))


class ToolRedirect(Redirect):
    def __init__(self, url: str) -> None:
        self.url = url

    def do_redirect(self) -> str:
        return self.url

    def do_js_redirect(self) -> str:
        return self.url

    def set_redirect_url(self, location: str) -> None:
        self.url = location

    def get_redirect_url(self) -> str:
        return self.url


class ToolLogin(OIDCLogin):
    def get_redirect(self, url: str) -> ToolRedirect:
        return ToolRedirect(url)


class ToolLaunch(MessageLaunch):
    def _get_request_param(self, key: str) -> Any:
        return self._request.get_param(key)


def rsa_key_pair() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def public_jwk(public_pem: str) -> dict[str, Any]:
    """The tool's public key as the JWK an admin pastes into Canvas (with ``alg`` and ``use``)."""
    key = serialization.load_pem_public_key(public_pem.encode())
    found: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True)
    found.update(alg="RS256", use="sig", kid="tool-key-1")
    return found


@dataclass
class Platform:
    """The platform values ``lmsauth lti-key create --json`` prints."""

    client_id: str
    deployment_id: str
    issuer: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    tool_id: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Platform:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass
class Tool:
    """The WSGI app and what it saw: each launch's data, each refusal's message."""

    private_pem: str
    public_pem: str
    base: str = ""
    conf: ToolConfDict | None = None
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    launches: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deep_link_items: list[DeepLinkResource] = field(default_factory=list)
    # What the tool's back end does during a resource link launch with the launch's own
    # services (``get_nrps()``, ``get_ags()``), and what that returned, launch by launch.
    on_launch: Callable[[MessageLaunch], Any] | None = None
    service_results: list[Any] = field(default_factory=list)

    @property
    def login_url(self) -> str:
        return self.base + "/login"

    @property
    def launch_url(self) -> str:
        return self.base + "/launch"

    def configure(self, platforms: Iterable[Platform]) -> None:
        """pylti1p3's configuration for these registrations, as a tool's ``tool.json``."""
        settings: dict[str, list[dict[str, Any]]] = {}
        for platform in platforms:
            settings.setdefault(platform.issuer, []).append(
                {
                    "default": not settings.get(platform.issuer),
                    "client_id": platform.client_id,
                    "deployment_ids": [platform.deployment_id],
                    "auth_login_url": platform.auth_login_url,
                    "auth_token_url": platform.auth_token_url,
                    "key_set_url": platform.key_set_url,
                }
            )
        conf = ToolConfDict(settings)
        for issuer, registrations in settings.items():
            for registration in registrations:
                conf.set_private_key(issuer, self.private_pem, client_id=registration["client_id"])
                conf.set_public_key(issuer, self.public_pem, client_id=registration["client_id"])
        self.conf = conf

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            params.update(parse_qsl(environ["wsgi.input"].read(length).decode(), keep_blank_values=True))
        jar = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        sent = {name: morsel.value for name, morsel in jar.items()}
        sid = sent.get("tool_sid") or uuid.uuid4().hex
        to_set = [("tool_sid", sid)]
        request = ToolRequest(params, self.sessions.setdefault(sid, {}))
        cookies = ToolCookies(sent, to_set)
        status, headers, body = self._route(environ["PATH_INFO"], method, request, cookies)
        headers += [("Set-Cookie", f"{name}={value}; Path=/; SameSite=Lax") for name, value in to_set]
        start_response(status, headers)
        return [body.encode()]

    def _route(
        self, path: str, method: str, request: ToolRequest, cookies: ToolCookies
    ) -> tuple[str, list[tuple[str, str]], str]:
        page = [("Content-Type", "text/html; charset=utf-8")]
        try:
            if path == "/jwks":
                assert self.conf is not None
                return "200 OK", [("Content-Type", "application/json")], json.dumps(self.conf.get_jwks())
            if path == "/login":
                assert self.conf is not None
                login = ToolLogin(request, self.conf, SessionService(request), cookies)
                return "302 Found", [("Location", login.redirect(self.launch_url))], ""
            if path == "/launch" and method == "POST":
                assert self.conf is not None
                launch = ToolLaunch(request, self.conf, SessionService(request), cookies)
                data = launch.get_launch_data()
                self.launches.append(data)
                if launch.is_deep_link_launch():
                    return "200 OK", page, launch.get_deep_link().output_response_form(self.deep_link_items)
                if self.on_launch is not None:
                    self.service_results.append(self.on_launch(launch))
                context = data.get("https://purl.imsglobal.org/spec/lti/claim/context", {})
                name = html.escape(str(data.get("name", data.get("sub"))))
                title = html.escape(str(context.get("title")))
                return "200 OK", page, f"<h1 id='launched'>{name} launched the tool in {title}</h1>"
        except Exception as exc:  # pylti1p3 raises LtiException, OIDCException and plain Exception
            self.errors.append(str(exc))
            return "400 Bad Request", page, f"<p id='error'>{html.escape(str(exc))}</p>"
        return "404 Not Found", page, "not found"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_stderr(self) -> io.StringIO:
        return io.StringIO()


class _ThreadedServer(WSGIServer):
    daemon_threads = True


def serve_tool(tool: Tool) -> Iterator[Tool]:
    """Serve ``tool`` on a free loopback port for the duration of the ``with``."""
    port = free_port()
    server = make_server("127.0.0.1", port, tool, server_class=_ThreadedServer, handler_class=_QuietHandler)
    tool.base = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tool
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
