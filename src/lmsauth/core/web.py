"""What every service's HTTP layer shares: parameter parsing, templates, CSRF, cookies and
the security headers (set by ``core.edge``).

Parameter parsing is ours rather than a framework's validation layer, because each service
must answer a bad parameter in its real counterpart's error format (DESIGN.md, web stack).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import JSONResponse

from lmsauth.core.errors import BadParameters

MAX_PARAM_LENGTH = 4096
MAX_PARAMS = 64


class Params:
    """Request parameters from the query string and a form or JSON body.

    RFC 6749 section 3.1: "Request and response parameters MUST NOT be included more than
    once." A repeated or oversized value is refused when it is read, naming the parameter.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)
        if len(self._values) > MAX_PARAMS:
            raise BadParameters("too many parameters")

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise BadParameters(f"the {name} parameter was given more than once")
        value = values[0]
        if len(value) > MAX_PARAM_LENGTH:
            raise BadParameters(f"the {name} parameter is too long")
        if "\x00" in value:
            raise BadParameters(f"the {name} parameter is malformed")
        return value

    def get_all(self, name: str) -> list[str]:
        """Every value of an array parameter such as ``include[]``."""
        values = self._values.get(name, [])
        if any(len(value) > MAX_PARAM_LENGTH for value in values):
            raise BadParameters(f"the {name} parameter is too long")
        return list(values)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def names(self) -> set[str]:
        return set(self._values)


def _json_pairs(raw: bytes) -> list[tuple[str, str]]:
    try:
        data = json.loads(raw)
    # RecursionError: arrays or objects nested deeper than the interpreter's stack ("[[[[...").
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadParameters("the request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadParameters("the request body must be a JSON object")
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, int | float | str):
            pairs.append((key, str(value)))
        else:
            raise BadParameters(f"the {key} parameter must be a string")
    return pairs


def _decode_form(raw: bytes) -> list[tuple[str, str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadParameters("the parameters are not UTF-8") from exc
    try:
        return parse_qsl(
            text, keep_blank_values=True, max_num_fields=MAX_PARAMS, encoding="utf-8", errors="strict"
        )
    except UnicodeDecodeError as exc:  # a percent-escape that is not UTF-8
        raise BadParameters("the parameters are not UTF-8") from exc
    except ValueError as exc:
        raise BadParameters("too many parameters") from exc


async def read_params(request: Request, *, query: bool = True, body: bool = True) -> Params:
    """Collect parameters; body values follow query values, and a name in both is "repeated"."""
    pairs: list[tuple[str, str]] = []
    raw_query = request.scope.get("query_string", b"") if query else b""
    if raw_query:
        # The raw bytes: Starlette's ``request.url`` would fail on a query that is not UTF-8.
        pairs.extend(_decode_form(raw_query))
    if body and request.method not in ("GET", "HEAD"):
        raw = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if raw:
            if content_type == "application/json" or content_type.endswith("+json"):
                pairs.extend(_json_pairs(raw))
            elif content_type in ("application/x-www-form-urlencoded", ""):
                pairs.extend(_decode_form(raw))
            else:
                raise BadParameters(f"unsupported content type {content_type}")
    return Params(pairs)


def templates(*folders: Path) -> Environment:
    """A Jinja2 environment that escapes HTML and looks in ``folders`` in order."""
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(str(folder)) for folder in folders]),
        autoescape=select_autoescape(default=True),
        enable_async=False,
    )


# No ``form-action``: browsers apply it to the redirects that follow a form post, and the
# consent and login forms end in a redirect to the client, whose URI may use any scheme
# (a native app's ``com.example.app://callback``, RFC 8252 section 7.1).
CSP = (
    "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


_ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
_PAGES = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)


def secured(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A response's raw ASGI headers plus the security headers it does not set itself: on
    every response ``nosniff`` and no referrer, and on HTML pages the CSP, no framing and no
    caching. Works on the raw list (names are lower case in ASGI): ``MutableHeaders`` would
    cost a wrapper and a scan per header set, on every response."""
    out = list(headers)
    present = {name for name, _ in out}
    page = any(name == b"content-type" and value.startswith(b"text/html") for name, value in out)
    for name, value in _ALWAYS + _PAGES if page else _ALWAYS:
        if name not in present:
            out.append((name, value))
    return out


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def page_context(request: Request, **values: Any) -> dict[str, Any]:
    return {"request": request, **values}


class ORJSONResponse(JSONResponse):
    """``JSONResponse`` rendered by orjson: the same bytes as Starlette's compact UTF-8
    ``json.dumps`` for the bodies we send (no floats), ~15 us cheaper a response on the
    benchmark core. Used on the hot paths (API calls, session reads, the identity and Canvas
    token endpoints' answers)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
