"""Commons' error format: ``{"error": {"type": ..., "message": ...}}``.

The real service's error bodies are undocumented (spec C8). We chose one JSON shape with a
stable, machine-readable ``type`` and a sentence for people, and these statuses: 401 when the
caller did not prove who they are (no, unknown, expired or ended session; a JWT that is
malformed, badly signed, from an unknown consumer, too old, from the future, or replayed),
403 when they did but may not proceed (never launched Commons, terms not accepted, another
session's id, a cookie-only logout another site sent), 400 for a malformed request.
"""

from __future__ import annotations

from lmsauth.core.errors import WireError


def commons_error(status: int, kind: str, message: str) -> WireError:
    # A 5xx is not a refusal: outages are counted where they are caught (backend_unavailable).
    failure = ("commons", kind) if status < 500 else None
    return WireError(status, {"error": {"type": kind, "message": message}}, failure=failure)


def bad_request(message: str) -> WireError:
    return commons_error(400, "bad_request", message)


def invalid_session() -> WireError:
    return commons_error(
        401, "invalid_session", "No valid session: it is missing, unknown, expired or logged out."
    )


def invalid_jwt(message: str) -> WireError:
    return commons_error(401, "invalid_jwt", message)


def unknown_consumer() -> WireError:
    return commons_error(401, "unknown_consumer", "The JWT's consumer_key is not known to Commons.")


def jwt_expired(max_age: int) -> WireError:
    return commons_error(
        401, "jwt_expired", f"The JWT was issued more than {max_age} seconds ago; ask Canvas for a new one."
    )


def jwt_from_future() -> WireError:
    return commons_error(401, "jwt_not_yet_valid", "The JWT's iat is in the future.")


def jwt_replayed() -> WireError:
    return commons_error(
        401, "jwt_replayed", "This JWT was already used to create a session; ask Canvas for a new one."
    )


def never_launched() -> WireError:
    return commons_error(
        403,
        "never_launched",
        "You have never launched into Commons before. Launch Commons from Canvas once, then try again.",
    )


def terms_not_accepted() -> WireError:
    return commons_error(
        403,
        "terms_not_accepted",
        "You have not accepted the Commons terms of service. Launch Commons from Canvas and accept them.",
    )


def not_your_session() -> WireError:
    return commons_error(403, "forbidden", "Only the caller's own current session can be read.")


def cross_site_logout() -> WireError:
    return commons_error(
        403,
        "cross_site_request",
        "Another site cannot log you out with the session cookie; "
        "send the session id in the x-session-id header.",
    )


def not_found() -> WireError:
    return commons_error(404, "not_found", "The specified resource does not exist.")


def too_many_requests(limit: int, retry_after: int) -> WireError:
    """429 for a session past its quota (Commons documents 2500 requests an hour per user, spec
    C1; its status and body are undocumented, so we chose 429 with ``Retry-After``)."""
    error = commons_error(
        429,
        "rate_limited",
        f"This session made more than {limit} requests in its window; retry after {retry_after} seconds.",
    )
    error.headers["Retry-After"] = str(retry_after)
    return error
