"""Injected faults: which requests they catch, for how long, and what they answer instead.

A fault is matched before the app runs (``middleware``), so a faulted request changes nothing.
Its answer wears the real service's error format, chosen by path, because that is what a
client's error handling is written against: DAP's and the Identity Service's envelope
(``{"error": {"type", "uuid", "message"}}``, spec B3, with ``Retry-After``, which the dap client
honours, spec B1), Canvas's throttle (``403 Forbidden (Rate Limit Exceeded)``, which canvasapi
recognises by that text, spec 7.3), Canvas's OAuth2 and API bodies, the LTI Advantage services'
(``{"errors": {"type", "message"}}``), and Commons' envelope.
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from lmsauth.canvas.errors import lti_service_error, oauth_error
from lmsauth.commons.errors import commons_error
from lmsauth.core import clock
from lmsauth.core.errors import WireError
from lmsauth.dap.errors import dap_error
from lmsauth.identity.errors import ids_error

MAX_DELAY_SECONDS = 300.0
FIELDS = frozenset({"path", "method", "count", "duration", "status", "delay", "retry_after", "message"})
METHODS = {"*", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Canvas's throttle (``RequestThrottle``) answers every path with this text and no JSON.
CANVAS_THROTTLE_BODY = b"403 Forbidden (Rate Limit Exceeded)\n"
# RFC 6749 section 5.2 has no code for an overloaded server; section 4.1.2.1's fits.
_OAUTH_CODES = {503: "temporarily_unavailable", 429: "temporarily_unavailable"}
_DAP_TYPES = {429: "TooManyRequestsError", 503: "ServiceUnavailableError", 504: "GatewayTimeoutError"}


class FaultError(ValueError):
    """A fault description that cannot be used; the message names the field."""


@dataclass
class Fault:
    id: int
    path: str
    method: str
    status: int | None
    delay: float | None
    retry_after: int | None
    message: str | None
    remaining: int | None
    expires_at: datetime | None
    hits: int = 0
    created_at: datetime = field(default_factory=clock.now)

    def live(self) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.expires_at is None or clock.now() < self.expires_at

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(path, self.path)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "delay": self.delay,
            "retry_after": self.retry_after,
            "message": self.message,
            "remaining": self.remaining,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "hits": self.hits,
            "created_at": self.created_at.isoformat(),
        }


def _number(data: dict[str, Any], name: str, *, integer: bool, low: float, high: float) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        raise FaultError(f"{name} must be {'an integer' if integer else 'a number'}")
    if not low <= value <= high:
        raise FaultError(f"{name} must be between {low:g} and {high:g}")
    return value


class FaultBook:
    """The live faults of this process, in the order they were added (the first match wins)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, data: Any) -> Fault:
        if not isinstance(data, dict):
            raise FaultError("send a JSON object")
        unknown = set(data) - {
            "path",
            "method",
            "count",
            "duration",
            "status",
            "delay",
            "retry_after",
            "message",
        }
        if unknown:
            raise FaultError(f"unknown fields: {', '.join(sorted(unknown))}")
        path = data.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise FaultError("path must be a path pattern starting with / (* matches anything)")
        method = data.get("method", "*")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise FaultError(f"method must be one of {', '.join(sorted(METHODS))}")
        status = _number(data, "status", integer=True, low=400, high=599)
        delay = _number(data, "delay", integer=False, low=0, high=MAX_DELAY_SECONDS)
        if status is None and not delay:
            raise FaultError("give a status to answer, a delay, or both")
        count = _number(data, "count", integer=True, low=1, high=1_000_000)
        duration = _number(data, "duration", integer=False, low=0.001, high=10 * 365 * 86400)
        message = data.get("message")
        if message is not None and not isinstance(message, str):
            raise FaultError("message must be a string")
        fault = Fault(
            id=next(self._ids),
            path=path,
            method=method.upper(),
            status=status,
            delay=float(delay) if delay else None,
            retry_after=_number(data, "retry_after", integer=True, low=0, high=86400),
            message=message,
            remaining=count,
            expires_at=clock.now() + timedelta(seconds=duration) if duration is not None else None,
        )
        self._faults.append(fault)
        return fault

    def live(self) -> list[Fault]:
        self._faults = [fault for fault in self._faults if fault.live()]
        return list(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first live fault for this request, with one use counted off (asyncio runs this
        without a switch, so two requests never share a fault's last use)."""
        for fault in self.live():
            if fault.matches(method, path):
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def remove(self, fault_id: int) -> bool:
        before = len(self._faults)
        self._faults = [fault for fault in self._faults if fault.id != fault_id]
        return len(self._faults) != before

    def clear(self) -> None:
        self._faults = []


@dataclass(frozen=True)
class FaultAnswer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _from_wire(error: WireError, extra: dict[str, str]) -> FaultAnswer:
    response = error.response()
    headers = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    headers.append((b"content-length", str(len(response.body)).encode()))
    return FaultAnswer(error.status, headers, bytes(response.body))


def answer(fault: Fault, path: str, commons_path: str) -> FaultAnswer:
    """What ``fault`` answers on ``path``, in the format of the service that owns the path."""
    assert fault.status is not None
    status = fault.status
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    message = fault.message or f"{phrase} (injected by the lmsauth emulator, fault {fault.id})."
    extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    if path.startswith("/dap/"):
        return _from_wire(dap_error(status, _DAP_TYPES.get(status, "ProcessingError"), message), extra)
    if path == "/ids" or path.startswith("/ids/"):
        return _from_wire(ids_error(status, _DAP_TYPES.get(status, "ProcessingError"), message), extra)
    if commons_path and (path == commons_path or path.startswith(commons_path + "/")):
        kind = "rate_limited" if status == 429 else phrase.lower().replace(" ", "_").replace("-", "_")
        return _from_wire(commons_error(status, kind, message), extra)
    if status == 403:
        # Canvas's throttle, on pages, the OAuth endpoints and the API alike.
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"x-rate-limit-remaining", b"0.0"),
            *((k.lower().encode(), v.encode()) for k, v in extra.items()),
            (b"content-length", str(len(CANVAS_THROTTLE_BODY)).encode()),
        ]
        return FaultAnswer(403, headers, CANVAS_THROTTLE_BODY)
    if path.startswith("/api/lti/courses/") or path.startswith("/api/lti/groups/"):
        # The LTI Advantage services' own shape (spec lti13.md 5.3), which pylti1p3 reports.
        return _from_wire(lti_service_error(status, message), extra)
    if path.startswith("/login/oauth2/"):
        code = _OAUTH_CODES.get(status, "server_error" if status >= 500 else "invalid_request")
        return _from_wire(oauth_error(code, message, status), extra)
    return _from_wire(WireError(status, {"errors": [{"message": message}]}), extra)
