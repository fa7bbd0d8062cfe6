"""How ``lmsauth serve`` runs uvicorn: the bounds on slow and greedy clients it passes
(``server_limits``), and the HTTP/1.1 protocol it serves with, uvicorn's httptools protocol plus
the two bounds on a request's head that uvicorn lacks.

uvicorn (0.55) has no header read timeout: it arms ``timeout_keep_alive`` only after a
response, and any byte received disarms it, so a client that connects and says nothing, or
trickles a request line and headers a byte at a time, holds its connection for as long as it
likes. Nor does it bound the head's size with httptools (``h11_max_incomplete_event_size``
binds its h11 protocol only; llhttp accepts megabytes of headers). Here:

- the line and headers of each request must arrive within ``LMSAUTH_HEADER_TIMEOUT_SECONDS``,
  counted from the connection's start or the request's first byte; past it the connection is
  closed without an answer (nginx's ``client_header_timeout`` does the same);
- a head over ``LMSAUTH_MAX_HEADER_BYTES`` is refused with uvicorn's own 400 and the
  connection closed.

And it tells the app (``core.edge.BODY_RECEIVED`` in the scope) once it holds a request's
whole body, so that reading it needs no timer.

The body's timeout is the app's (``core.edge``), which can answer it in HTTP.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lmsauth.core.edge import BODY_RECEIVED
from lmsauth.settings import Settings

PROTOCOL = "lmsauth.serving:BoundedHttpToolsProtocol"


def server_limits(settings: Settings) -> dict[str, Any]:
    """uvicorn's own bounds, as ``uvicorn.run`` keywords: the idle keep-alive timeout and, per
    process, the connections and requests in flight past which a request gets uvicorn's 503."""
    return {
        "http": PROTOCOL,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.max_concurrency,
    }


class HeadTooLarge(Exception):
    """Raised inside the parser's callback: httptools stops and uvicorn answers 400."""


@functools.cache
def _bounds() -> tuple[float, int]:
    """Read once per process: uvicorn builds the protocol from its import path in each worker,
    which reads its settings from the environment as the app does."""
    settings = Settings()
    return settings.header_timeout_seconds, settings.max_header_bytes


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.max_header_bytes = _bounds()
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_timer is None:  # armed at connect for the first request
            self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and cycle.message_event.is_set():  # the app's receive() won't wait
            self.scope[BODY_RECEIVED] = True  # type: ignore[literal-required]

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            raise HeadTooLarge

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.logger.info("Closed a connection whose request head did not arrive in time.")
            self.transport.close()
