"""Routes grouped under a path prefix, so that a request only tries the routes that can match,
and the trailing-slash redirect a router makes, on the public URL.

Starlette's router tries every route in order, a regular expression each (~2 us on the
benchmark core): an identity login used to pay for all of Canvas's routes before its own. A
``PrefixGroup`` answers ``NONE`` with one ``str.startswith`` for a path outside its prefix,
and inside it behaves exactly as its routes would in the router's list: the first full match
wins, else the first partial one (405), and ``scope["route"]`` is the inner route that
matched, so route templates in logs and metrics are unchanged. The prefixes of a router's
groups never overlap, and no route outside a group matches a path under its prefix.

Starlette's ``Mount`` would group routes too, but it rewrites ``root_path`` and the path its
routes see; this keeps every route's own full path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.datastructures import URLPath
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match, NoMatchFound, Router
from starlette.types import Receive, Scope, Send


def _route_path(scope: Scope) -> str:
    """The path the router matches: ``path`` without the app's ``root_path`` (as Starlette's
    private ``get_route_path`` computes it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


class PrefixGroup(BaseRoute):
    def __init__(self, prefix: str, routes: Sequence[BaseRoute]) -> None:
        self.prefix = prefix
        self.routes = list(routes)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not _route_path(scope).startswith(self.prefix):
            return Match.NONE, {}
        partial: tuple[Match, Scope] | None = None
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return match, {**child_scope, "route": route}
            if match is Match.PARTIAL and partial is None:
                partial = (match, {**child_scope, "route": route})
        return partial or (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # ``matches`` put the inner route that matched in the scope.
        await scope["route"].handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)

    def __repr__(self) -> str:
        return f"PrefixGroup({self.prefix!r}, {len(self.routes)} routes)"


def redirect_slashes_to(router: Router, public_url: str) -> None:
    """Starlette's ``redirect_slashes`` (``/path/`` to ``/path`` and back, when only the other
    form is routed), with a ``Location`` on ``public_url``. Starlette builds it from the
    request's ``Host`` header, so a request naming another host was redirected to that host:
    an open redirect for anyone who can set ``Host`` (a cache or proxy that forwards it).

    The router keeps its routes and its 404; only the redirect's target changes."""
    router.redirect_slashes = False
    not_found = router.default

    async def redirect_or_not_found(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and _route_path(scope) not in ("", "/"):
            toggled = {**scope, "path": path.rstrip("/") if path.endswith("/") else path + "/"}
            if any(route.matches(toggled)[0] is not Match.NONE for route in router.routes):
                # As Starlette escapes a path it puts in a URL; the public URL names the host.
                target = toggled["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
                query = scope.get("query_string", b"").decode("latin-1")
                location = public_url + target + (f"?{query}" if query else "")
                await RedirectResponse(location)(scope, receive, send)
                return
        await not_found(scope, receive, send)

    router.default = redirect_or_not_found
