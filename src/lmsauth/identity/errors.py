"""The Identity Service's error replies, in the envelope the dap client decodes (spec A5, B3).

``{"error": {"type", "uuid", "message"}}`` with exactly those members: the client's strict
decoder turns a 401 into ``AuthenticationError`` and prints ``message``; any extra member
would make it fall back to a bare ``ServerError``. ``uuid`` is fresh per error, as the real
service's is, so an operator can find the matching log line.
"""

from __future__ import annotations

import logging
import uuid

from lmsauth.core.errors import WireError

log = logging.getLogger("lmsauth.identity")

# Named after the dap client's error classes, which is how a reader of its logs sees them.
AUTHENTICATION_ERROR = "AuthenticationError"
BAD_REQUEST = "BadRequestError"
METHOD_NOT_ALLOWED = "MethodNotAllowedError"
NOT_FOUND = "NotFoundError"

BASIC_CHALLENGE = 'Basic realm="Instructure Identity Service", charset="UTF-8"'


def ids_error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> WireError:
    error_id = str(uuid.uuid4())
    log.info("identity error %s %s %s: %s", status, kind, error_id, message)
    body = {"error": {"type": kind, "uuid": error_id, "message": message}}
    return WireError(
        status, body, {"Cache-Control": "no-store", **(headers or {})}, failure=("identity", kind)
    )


def bad_request(message: str) -> WireError:
    return ids_error(400, BAD_REQUEST, message)


def unauthorized(message: str) -> WireError:
    """RFC 9110 15.5.2: a 401 names the scheme that would work."""
    return ids_error(401, AUTHENTICATION_ERROR, message, {"WWW-Authenticate": BASIC_CHALLENGE})


def too_many_requests(retry_after: int) -> WireError:
    """429 for a client id that asks for tokens too often. The dap client does not retry a
    login (spec A1): it shows ``message`` (its decoder reads this body as a ``ProcessingError``)."""
    return ids_error(
        429,
        "TooManyRequestsError",
        f"Too many logins for this client; retry after {retry_after} seconds.",
        {"Retry-After": str(retry_after)},
    )
