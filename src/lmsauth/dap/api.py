"""The DAP Query API's endpoints (spec B2 rows 1 and 2) and the bearer check in front of them.

Every call is authenticated before its path is looked at, so a caller without a token cannot
probe which namespaces or tables exist. Tokens come from ``/ids/auth/login`` and are checked
by the Identity Service's interface: signature, ``exp``, ``aud`` and the client still active.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from lmsauth.core.db import Database
from lmsauth.core.errors import WireError
from lmsauth.core.keys import KeyRing
from lmsauth.core.web import ORJSONResponse
from lmsauth.dap import tables
from lmsauth.dap.errors import method_not_allowed, not_found, unauthenticated
from lmsauth.identity.clients import Grant, TokenRefused, authenticate
from lmsauth.settings import Settings

SERVICE = "dap"
TABLES_PATH = "/dap/query/{namespace}/table"
SCHEMA_PATH = "/dap/query/{namespace}/table/{table}/schema"
# Starlette routes a function endpoint for GET only unless told otherwise.
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def presented_token(request: Request) -> str | None:
    """``Authorization: Bearer`` (scheme case-insensitive, RFC 9110 11.1), else the deprecated
    ``x-instauth`` header that holds the bare token; ``Authorization`` wins (spec A3)."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None
    legacy = request.headers.get("x-instauth", "").strip()
    return legacy or None


class DapApi:
    """The read endpoints; each checks the bearer before it looks at the path."""

    def __init__(self, settings: Settings, db: Database, keyring: KeyRing) -> None:
        self.public_url = settings.public_url
        self.db = db
        self.keyring = keyring

    async def _grant(self, request: Request) -> Grant:
        token = presented_token(request)
        if token is None:
            raise unauthenticated("Missing access token: send Authorization: Bearer <token>.")
        try:
            return await authenticate(
                self.db, self.keyring, token, public_url=self.public_url, service=SERVICE
            )
        except TokenRefused as exc:
            raise unauthenticated(exc.message) from exc

    async def list_tables(self, request: Request) -> Response:
        """``GET /dap/query/{namespace}/table`` → ``{"tables": [...]}``."""
        try:
            await self._grant(request)
            namespace = request.path_params["namespace"]
            names = tables.table_names(namespace)
            if names is None:
                raise not_found("namespace", namespace)
        except WireError as exc:
            return exc.response()
        return ORJSONResponse({"tables": names})

    async def table_schema(self, request: Request) -> Response:
        """``GET /dap/query/{namespace}/table/{table}/schema`` → ``{"schema", "version"}``."""
        try:
            await self._grant(request)
            namespace, name = request.path_params["namespace"], request.path_params["table"]
            if tables.table_names(namespace) is None:
                raise not_found("namespace", namespace)
            table = tables.find_table(namespace, name)
            if table is None:
                raise not_found("table", name)
        except WireError as exc:
            return exc.response()
        return JSONResponse(tables.versioned_schema(namespace, table))


def dap_routes(settings: Settings, db: Database, keyring: KeyRing) -> list[BaseRoute]:
    api = DapApi(settings, db, keyring)

    async def get_only(request: Request) -> Response:
        # Registered after each GET route: Starlette prefers a full match over its own 405.
        return method_not_allowed("GET").response()

    async def unknown(request: Request) -> Response:
        return not_found("endpoint", request.url.path).response()

    return [
        Route(TABLES_PATH, api.list_tables, methods=["GET"]),
        Route(TABLES_PATH, get_only, methods=ANY_METHOD),
        Route(SCHEMA_PATH, api.table_schema, methods=["GET"]),
        Route(SCHEMA_PATH, get_only, methods=ANY_METHOD),
        Route("/dap/{path:path}", unknown, methods=ANY_METHOD),
    ]
