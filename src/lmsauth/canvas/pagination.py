"""Canvas's API pagination (``Api.paginate`` in ``lib/api.rb``): ``per_page`` and ``page`` in,
a ``Link`` header out, which canvasapi's ``PaginatedList`` follows.

- ``per_page``: default 10, clamped to 1..100 (``per_page_for``: ``to_i.clamp(1, max)``, so
  ``0``, ``-3`` and ``abc`` all mean 1).
- ``page``: 1 when absent; a page that is not a positive integer is ``Folio::InvalidPage``,
  which Canvas answers 404; a page past the end is an empty list (ordinal collections).
- ``Link``: ``current``, ``next``, ``prev``, ``first``, ``last`` in that order, each
  ``<base?other-query&page=N&per_page=M>``, leaving out ``page``, ``per_page``,
  ``access_token`` and ``api_key`` of the request's query; ``last`` only when the total is
  counted, as here.

Hand-written: a pagination library would not write Canvas's links and clamping rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from lmsauth.canvas.errors import not_found
from lmsauth.core.web import Params

DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
_LEFT_OUT = frozenset({"page", "per_page", "access_token", "api_key"})


def _ruby_to_i(text: str | None) -> int:
    """Ruby's ``String#to_i``: leading whitespace, a sign and the digits that follow; else 0."""
    if text is None:
        return 0
    stripped = text.lstrip()
    sign, digits = 1, ""
    if stripped[:1] in ("+", "-"):
        sign, stripped = (-1 if stripped[0] == "-" else 1), stripped[1:]
    for char in stripped:
        if not ("0" <= char <= "9"):
            break
        digits += char
    return sign * int(digits[:19]) if digits else 0


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def _last(params: Params, name: str) -> str | None:
    """Rails keeps the last of a repeated query parameter, and canvasapi repeats ``per_page``
    (its own and the caller's) whenever a caller gives one."""
    values = params.get_all(name)
    return values[-1] if values else None


def page_request(
    params: Params,
    *,
    default_per_page: int = DEFAULT_PER_PAGE,
    max_per_page: int = MAX_PER_PAGE,
    size_override: str | None = None,
) -> PageRequest:
    """The page asked for; a ``page`` that is not a positive integer is Canvas's 404.
    ``size_override`` names a parameter that wins over ``per_page`` when given (the LTI
    services' ``limit``)."""
    raw_per_page = _last(params, "per_page")
    if size_override is not None and _last(params, size_override) is not None:
        raw_per_page = _last(params, size_override)
    per_page = default_per_page if raw_per_page is None else _ruby_to_i(raw_per_page)
    raw_page = _last(params, "page")
    if raw_page is None or raw_page == "":
        page = 1
    elif raw_page.strip().isdigit() and int(raw_page.strip()[:19]) > 0:
        page = int(raw_page.strip()[:19])
    else:
        raise not_found()
    return PageRequest(page, min(max(per_page, 1), max_per_page))


@dataclass(frozen=True, slots=True)
class LinkStyle:
    """How a ``Link`` header writes the request's other query parameters: ``leave_out`` drops
    more of them (the LTI services' ``limit``), ``sort`` puts the rest in Rails' ``to_query``
    order, as ``Api.paginate`` writes them for the LTI services."""

    leave_out: frozenset[str] = frozenset()
    sort: bool = False


CANVAS_API = LinkStyle()
LTI_SERVICES = LinkStyle(frozenset({"limit"}), sort=True)


def link_header(
    request: Request, public_url: str, asked: PageRequest, total: int, style: LinkStyle = CANVAS_API
) -> str:
    """The ``Link`` header of one page of ``total`` items, on the server's public URL."""
    last = max(1, math.ceil(total / asked.per_page))
    pages: dict[str, int] = {"current": asked.page}
    if asked.page < last:
        pages["next"] = asked.page + 1
    if asked.page > 1:
        pages["prev"] = min(asked.page - 1, last)
    pages["first"] = 1
    pages["last"] = last
    dropped = _LEFT_OUT | style.leave_out
    kept = [(name, value) for name, value in request.query_params.multi_items() if name not in dropped]
    if style.sort:
        kept.sort()
    base = public_url.rstrip("/") + request.url.path + "?" + (urlencode(kept) + "&" if kept else "")
    return ",".join(
        f'<{base}page={number}&per_page={asked.per_page}>; rel="{rel}"' for rel, number in pages.items()
    )


def paginate(
    response: Response,
    request: Request,
    public_url: str,
    asked: PageRequest,
    total: int,
    style: LinkStyle = CANVAS_API,
) -> Response:
    response.headers["Link"] = link_header(request, public_url, asked, total, style)
    return response
