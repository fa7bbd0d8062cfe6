"""The traffic log: the last requests this server answered, with every secret masked.

An entry keeps what a developer needs to follow a client (time, method, path, status, who
called, latency, the fault that answered) and nothing a reader could reuse: no header or
body is stored, secret query parameters are replaced by ``***``, and a path segment that
looks like a token (a Commons session id in ``/api/sessions/{id}``) is masked too.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

MASK = "***"
CAPACITY = 1000
# Parameters whose values open something: tokens, codes, secrets, passwords, CSRF values.
SECRET_PARAMETERS = frozenset(
    {
        "access_token",
        "refresh_token",
        "code",
        "client_secret",
        "code_verifier",
        "password",
        "pseudonym_session[password]",
        "authenticity_token",
        "custom_csrf_token",
        "csrf_token",
        "jwt_token",
        "id_token",
        "assertion",
        "client_assertion",
        "session-id",
        "sessionId",
        "state",
        "oauth_signature",
        "token",
    }
)
_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_\-~.]{32,}")


def mask_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, MASK if k in SECRET_PARAMETERS else v) for k, v in pairs], safe="*[]/:")


def mask_path(path: str) -> str:
    return "/".join(MASK if _TOKEN_SEGMENT.fullmatch(part) else part for part in path.split("/"))


@dataclass
class Entry:
    id: int
    time: datetime
    method: str
    path: str
    query: str
    status: int | None = None
    latency_ms: float | None = None
    client_id: str | None = None
    user: str | None = None
    fault: int | None = None
    remote: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time.isoformat(),
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "client_id": self.client_id,
            "user": self.user,
            "fault": self.fault,
            "remote": self.remote,
        }


@dataclass
class TrafficLog:
    entries: deque[Entry] = field(default_factory=lambda: deque(maxlen=CAPACITY))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def start(self, time: datetime, method: str, path: str, query: str, remote: str | None) -> Entry:
        entry = Entry(next(self._ids), time, method, mask_path(path), mask_query(query), remote=remote)
        self.entries.append(entry)
        return entry

    def last(self, limit: int) -> list[dict[str, Any]]:
        """Newest first."""
        return [entry.public() for entry in list(self.entries)[::-1][:limit]]

    def clear(self) -> None:
        self.entries.clear()
