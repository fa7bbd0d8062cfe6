"""The DAP Query API's error replies, shaped so the dap client decodes each as intended (spec B3).

The envelope is ``{"error": {"type", "uuid", "message", ...}}``. The client decodes a 401 as
``AuthenticationError`` (exactly the three members) and, for other statuses, tries its error
classes in order: a 404 that carries ``id`` and ``kind`` becomes ``NotFoundError``, which the
CLI records per table and moves on from, as the real API's does. ``uuid`` is fresh per error.
The Identity Service has its own copy of the envelope: the two services share no code.
"""

from __future__ import annotations

import logging
import uuid

from lmsauth.core.errors import WireError

log = logging.getLogger("lmsauth.dap")

BEARER_CHALLENGE = 'Bearer realm="dap", error="invalid_token"'  # RFC 6750 section 3


def dap_error(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None, **extra: str
) -> WireError:
    """``extra`` holds the members a type needs beyond the three (``id`` and ``kind`` for 404)."""
    error_id = str(uuid.uuid4())
    log.info("dap error %s %s %s: %s", status, error_type, error_id, message)
    body = {"error": {"type": error_type, "uuid": error_id, "message": message, **extra}}
    return WireError(
        status, body, {"Cache-Control": "no-store", **(headers or {})}, failure=("dap", error_type)
    )


def unauthenticated(message: str) -> WireError:
    return dap_error(401, "AuthenticationError", message, {"WWW-Authenticate": BEARER_CHALLENGE})


def not_found(kind: str, name: str) -> WireError:
    """``kind`` is what is missing (namespace, table, endpoint); ``name`` the id asked for."""
    return dap_error(404, "NotFoundError", f"The {kind} {name!r} does not exist.", id=name, kind=kind)


def method_not_allowed(allowed: str) -> WireError:
    return dap_error(405, "MethodNotAllowedError", f"Use {allowed}.", {"Allow": allowed})
