"""Canvas's two error formats: OAuth2 (``{"error","error_description"}``, spec 3.5 and 5.8)
and the REST API's (``{"errors":[{"message"}]}``, spec 7.3)."""

from __future__ import annotations

from lmsauth.core.errors import WireError

OAUTH_CHALLENGE = {"WWW-Authenticate": "Canvas OAuth 2.0"}
API_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}


def oauth_error(error: str, description: str, status: int = 400) -> WireError:
    """A JSON OAuth2 error; 401s carry Canvas's ``WWW-Authenticate`` header."""
    headers = dict(OAUTH_CHALLENGE) if status == 401 else {}
    headers["Cache-Control"] = "no-store"
    return WireError(status, {"error": error, "error_description": description}, headers)


def unknown_client() -> WireError:
    return oauth_error("invalid_client", "unknown client", 401)


def invalid_client() -> WireError:
    return oauth_error("invalid_client", "invalid client", 401)


def invalid_access_token() -> WireError:
    return WireError(401, {"errors": [{"message": "Invalid access token."}]}, dict(API_CHALLENGE))


def insufficient_scopes() -> WireError:
    # No WWW-Authenticate: canvasapi must raise Unauthorized here, not InvalidAccessToken.
    return WireError(401, {"errors": [{"message": "Insufficient scopes on access token."}]})


def unauthenticated() -> WireError:
    return WireError(
        401,
        {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]},
        dict(API_CHALLENGE),
    )


def unauthorized() -> WireError:
    return WireError(
        401,
        {
            "status": "unauthorized",
            "errors": [{"message": "user not authorized to perform that action"}],
        },
    )


def not_found() -> WireError:
    return WireError(404, {"errors": [{"message": "The specified resource does not exist."}]})


def bad_request(message: str) -> WireError:
    return WireError(400, {"errors": [{"message": message}]})
