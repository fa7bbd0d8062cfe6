"""Error types that carry their own wire format.

Each service answers errors in the format its real counterpart uses; a handler raises the
service's subclass and the app turns it into a response. Nothing here knows a service.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from lmsauth.core import metrics


class WireError(Exception):
    """An error that is already shaped for the client: status, JSON body, headers.

    ``failure`` is its ``(service, reason)`` for ``core.metrics``, counted when the error
    becomes the response (an error built and not sent is not a failure)."""

    def __init__(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        *,
        failure: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.failure = failure

    def response(self) -> Response:
        if self.failure is not None:
            metrics.failure(*self.failure)
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


class BadParameters(Exception):
    """The request's parameters cannot be read: repeated, oversized, or a malformed body."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
