"""Canvas's error formats: OAuth2 (``{"error","error_description"}``, spec 3.5 and 5.8),
the REST API's (``{"errors":[{"message"}]}``, spec 7.3) and the LTI Advantage services'
(``{"errors":{"type","message"}}``, spec lti13.md 5.3). The authentication errors are
counted in ``core.metrics`` (``lmsauth_failures_total``) when they are sent."""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import PlainTextResponse, Response

from lmsauth.core.errors import WireError
from lmsauth.core.ratelimit import Decision

OAUTH_CHALLENGE = {"WWW-Authenticate": "Canvas OAuth 2.0"}
API_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}
STRICT_API_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="canvas-lms", error="invalid_token"'}
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="canvas-lms"'}


def oauth_error(error: str, description: str, status: int = 400) -> WireError:
    """A JSON OAuth2 error; 401s carry Canvas's ``WWW-Authenticate`` header."""
    headers = dict(OAUTH_CHALLENGE) if status == 401 else {}
    headers["Cache-Control"] = "no-store"
    body = {"error": error, "error_description": description}
    return WireError(status, body, headers, failure=("canvas", error))


def unknown_client() -> WireError:
    return oauth_error("invalid_client", "unknown client", 401)


def invalid_client() -> WireError:
    return oauth_error("invalid_client", "invalid client", 401)


def client_rate_limited(retry_after: int) -> WireError:
    """429 at the token endpoint: too many requests for one client id. RFC 6749 has no error
    code for it; ``temporarily_unavailable`` (section 4.1.2.1) is the one OAuth clients know for
    "try again later", and the one our 503 uses."""
    error = oauth_error(
        "temporarily_unavailable",
        f"Too many requests for this client; retry after {retry_after} seconds.",
        429,
    )
    error.headers["Retry-After"] = str(retry_after)
    return error


def invalid_access_token(*, strict: bool = False) -> WireError:
    """Canvas's answer to a bad token. The strict profile names the error in the challenge,
    as RFC 6750 section 3.1 says; the body stays Canvas's, which canvasapi reads."""
    challenge = STRICT_API_CHALLENGE if strict else API_CHALLENGE
    return WireError(
        401,
        {"errors": [{"message": "Invalid access token."}]},
        dict(challenge),
        failure=("canvas", "invalid_access_token"),
    )


def basic_client_challenge(error: WireError) -> WireError:
    """RFC 6749 section 5.2, in the strict profile: a client that failed HTTP Basic
    authentication gets the ``Basic`` challenge of the scheme it used, not Canvas's."""
    return WireError(error.status, error.body, {**error.headers, **BASIC_CHALLENGE}, failure=error.failure)


def insufficient_scopes() -> WireError:
    # No WWW-Authenticate: canvasapi must raise Unauthorized here, not InvalidAccessToken.
    return WireError(
        401,
        {"errors": [{"message": "Insufficient scopes on access token."}]},
        failure=("canvas", "insufficient_scopes"),
    )


def unauthenticated() -> WireError:
    return WireError(
        401,
        {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]},
        dict(API_CHALLENGE),
        failure=("canvas", "unauthenticated"),
    )


def unauthorized() -> WireError:
    return WireError(
        401,
        {
            "status": "unauthorized",
            "errors": [{"message": "user not authorized to perform that action"}],
        },
        failure=("canvas", "unauthorized"),
    )


def not_found() -> WireError:
    return WireError(404, {"errors": [{"message": "The specified resource does not exist."}]})


def bad_request(message: str) -> WireError:
    return WireError(400, {"errors": [{"message": message}]})


def quota_headers(decision: Decision, cost: float) -> list[tuple[bytes, bytes]]:
    """Canvas's throttle headers (spec 7.3), floats as Canvas sends them: what the request cost,
    and what is left of the token's quota. None when rate limits are off, as on a Canvas whose
    throttling is disabled. Raw pairs, for ``add_quota_headers``."""
    if decision.remaining is None:
        return []
    return [(b"x-request-cost", _as_float(cost)), (b"x-rate-limit-remaining", _as_float(decision.remaining))]


def _as_float(value: float) -> bytes:
    """``699.99``, ``700.0``: always a float, as Ruby's ``Float#to_s`` writes it."""
    return repr(round(value, 6)).encode()


def add_quota_headers(response: Response, decision: Decision, cost: float) -> None:
    """Appended to the raw headers: this runs on every API call, and ``MutableHeaders`` would
    scan the response's headers once per name."""
    response.raw_headers.extend(quota_headers(decision, cost))


def rate_limit_exceeded(status: int, decision: Decision, cost: float) -> Response:
    """Canvas's throttled answer (``RequestThrottle#rate_limit_exceeded``): plain text, ``403
    Forbidden (Rate Limit Exceeded)``, or with 429 as Canvas answers since October 2025
    (``LMSAUTH_RATE_LIMIT_API_STATUS``). ``Retry-After`` is ours: Canvas sends none."""
    body = f"{status} {HTTPStatus(status).phrase} (Rate Limit Exceeded)\n"
    response = PlainTextResponse(body, status_code=status, headers={"Retry-After": str(decision.retry_after)})
    add_quota_headers(response, decision, cost)
    return response


# The status symbols Rails names statuses by, as the LTI Advantage services' errors carry them.
_STATUS_SYMBOLS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    412: "precondition_failed",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_server_error",
    503: "service_unavailable",
}


def lti_service_error(status: int, message: str) -> WireError:
    """The LTI Advantage services' error (``Lti::IMS::Concerns::AdvantageServices``, spec
    lti13.md 5.3): ``{"errors": {"type": "<status symbol>", "message": ...}}``, an object where
    the REST API has a list."""
    kind = _STATUS_SYMBOLS.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    return WireError(
        status, {"errors": {"type": kind, "message": message}}, failure=("canvas", f"lti_service_{status}")
    )
