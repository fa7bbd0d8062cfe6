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
from datetime import datetime
from typing import Any

from lmsauth.core.errors import WireError

log = logging.getLogger("lmsauth.dap")

BEARER_CHALLENGE = 'Bearer realm="dap", error="invalid_token"'  # RFC 6750 section 3


def dap_error(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None, **extra: Any
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


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def validation_error(message: str, text: str, position: int) -> WireError:
    """400 ``ValidationError``: the client requires ``location`` (line, column, character).
    ``position`` is the offset in the request body where the bad input starts; lines and
    columns count from 1, ``character`` from 0 (UNCONFIRMED: the real API's counting)."""
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    location = {"line": line, "column": column, "character": position}
    return dap_error(400, "ValidationError", message, location=location)


def snapshot_required(message: str, since: datetime, until: datetime | None = None) -> WireError:
    """400 ``SnapshotRequiredError``: the changes asked for are not kept; ``since`` is the
    earliest permitted time. (The client decodes it as ``OutOfRangeError``, spec B3.)"""
    extra: dict[str, Any] = {"since": _iso(since)}
    if until is not None:
        extra["until"] = _iso(until)
    return dap_error(400, "SnapshotRequiredError", message, **extra)


def out_of_range(message: str, since: datetime, until: datetime | None) -> WireError:
    """400 ``OutOfRangeError``: the window reaches past the data there is."""
    extra: dict[str, Any] = {"since": _iso(since)}
    if until is not None:
        extra["until"] = _iso(until)
    return dap_error(400, "OutOfRangeError", message, **extra)


def forbidden_url(message: str) -> WireError:
    """403 for an object URL whose signature or expiry is wrong (as S3 refuses one)."""
    return dap_error(403, "AccessDenied", message)
