"""The DAP Query API's endpoints (spec B2) and the bearer check in front of them.

Every call is authenticated before its path is looked at, so a caller without a token cannot
probe which namespaces or tables exist. Tokens come from ``/ids/auth/login`` and are checked
by the Identity Service's interface: signature, ``exp``, ``aud`` and the client still active.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from lmsauth.canvas.export import ExportedTable
from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.core.errors import WireError
from lmsauth.core.keys import KeyRing
from lmsauth.core.web import ORJSONResponse
from lmsauth.dap import jobs, tables
from lmsauth.dap.errors import (
    forbidden_url,
    method_not_allowed,
    not_found,
    out_of_range,
    snapshot_required,
    unauthenticated,
    validation_error,
)
from lmsauth.dap.formats import FORMATS, MODES
from lmsauth.dap.models import DapJob, DapObject
from lmsauth.dap.objects import signature_valid, signed_url
from lmsauth.identity.clients import Grant, TokenRefused, authenticate
from lmsauth.settings import Settings

SERVICE = "dap"
TABLES_PATH = "/dap/query/{namespace}/table"
SCHEMA_PATH = "/dap/query/{namespace}/table/{table}/schema"
DATA_PATH = "/dap/query/{namespace}/table/{table}/data"
JOB_PATH = "/dap/job/{job_id}"
OBJECT_URL_PATH = "/dap/object/url"
FILES_PATH = "/dap/files/{job_id}/{name}"
QUERY_MEMBERS = ("format", "mode", "since", "until")
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

    def __init__(self, settings: Settings, db: Database, keyring: KeyRing, runner: jobs.JobRunner) -> None:
        self.public_url = settings.public_url
        self.secret_key = settings.resolved_secret_key
        self.url_lifetime = timedelta(seconds=settings.dap_url_seconds)
        self.db = db
        self.keyring = keyring
        self.runner = runner
        self.answer_wait = settings.dap_answer_wait_seconds

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

    def _table(self, request: Request) -> tuple[str, ExportedTable]:
        namespace, name = request.path_params["namespace"], request.path_params["table"]
        if tables.table_names(namespace) is None:
            raise not_found("namespace", namespace)
        table = tables.find_table(namespace, name)
        if table is None:
            raise not_found("table", name)
        return namespace, table

    async def query_data(self, request: Request) -> Response:
        """``POST .../table/{table}/data`` with a query (spec B4) → the job that answers it (B5)."""
        try:
            grant = await self._grant(request)
            namespace, table = self._table(request)
            query = parse_query((await request.body()).decode("utf-8", "replace"))
            async with self.db.session(write=True) as session:
                if query.incremental:
                    await check_window(session, query)
                job = await jobs.submit(session, grant.client_id, namespace, table, query)
                body = jobs.job_document(job, await jobs.job_objects(session, job.id))
        except WireError as exc:
            return exc.response()
        self.runner.wake.set()
        if self.answer_wait > 0 and body["status"] in jobs.LIVE:
            body = await self._after_a_while(job.id, body)
        return _job_response(body)

    async def _after_a_while(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The job once it ended, or as it is when ``dap_answer_wait_seconds`` ran out."""
        deadline = asyncio.get_running_loop().time() + self.answer_wait
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            async with self.db.session() as session:
                job = await session.get(DapJob, job_id)
                if job is None:
                    break
                body = jobs.job_document(job, await jobs.job_objects(session, job.id))
            if body["status"] not in jobs.LIVE:
                break
        return body

    async def get_job(self, request: Request) -> Response:
        """``GET /dap/job/{id}``: 202 while waiting or running, 200 once complete or failed."""
        try:
            grant = await self._grant(request)
            job_id = request.path_params["job_id"]
            async with self.db.session() as session:
                job = await jobs.find_job(session, job_id, grant.client_id)
                if job is None:
                    raise not_found("job", job_id)
                body = jobs.job_document(job, await jobs.job_objects(session, job.id))
        except WireError as exc:
            return exc.response()
        return _job_response(body)

    async def object_urls(self, request: Request) -> Response:
        """``POST /dap/object/url`` with ``[{"id"}, ...]`` → ``{"urls": {id: {"url"}}}``."""
        try:
            grant = await self._grant(request)
            ids = parse_object_ids((await request.body()).decode("utf-8", "replace"))
            now = clock.now()
            urls: dict[str, dict[str, str]] = {}
            async with self.db.session() as session:
                for object_id in ids:
                    found = (
                        await session.execute(
                            select(DapObject.id, DapJob.expires_at)
                            .join(DapJob, DapJob.id == DapObject.job_id)
                            .where(DapObject.id == object_id, DapJob.client_id == grant.client_id)
                        )
                    ).first()
                    if found is None or found[1] <= now:
                        raise not_found("object", object_id)
                    expires = int(min(now + self.url_lifetime, found[1]).timestamp())
                    urls[object_id] = {
                        "url": signed_url(self.public_url, self.secret_key, object_id, expires)
                    }
        except WireError as exc:
            return exc.response()
        return ORJSONResponse({"urls": urls})

    async def download(self, request: Request) -> Response:
        """``GET /dap/files/{job}/{name}?expires&signature``: the object's gzip bytes, streamed.
        No bearer: the signature is the permission (spec B1, pre-signed downloads)."""
        object_id = f"{request.path_params['job_id']}/{request.path_params['name']}"
        try:
            try:
                expires = int(request.query_params.get("expires", ""))
            except ValueError:
                raise forbidden_url("The URL has no valid expiry.") from None
            if not signature_valid(
                self.secret_key, object_id, expires, request.query_params.get("signature", "")
            ):
                raise forbidden_url("The URL's signature does not match.")
            if expires <= clock.timestamp():
                raise forbidden_url("The URL has expired.")
            async with self.db.session() as session:
                known = await session.scalar(select(DapObject.id).where(DapObject.id == object_id))
            if known is None:
                raise not_found("object", object_id)
            pieces = self.runner.store.read(object_id)
            try:
                first = await anext(pieces)
            except (FileNotFoundError, StopAsyncIteration):
                raise not_found("object", object_id) from None
        except WireError as exc:
            return exc.response()

        async def body() -> AsyncIterator[bytes]:
            yield first
            async for piece in pieces:
                yield piece

        headers = {
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{request.path_params["name"]}"',
        }
        return StreamingResponse(body(), media_type="application/gzip", headers=headers)


def _job_response(body: dict[str, Any]) -> Response:
    status = 202 if body["status"] in jobs.LIVE else 200
    return ORJSONResponse(body, status_code=status)


def _position(text: str, member: str) -> int:
    found = text.find(f'"{member}"')
    return found if found >= 0 else 0


def _timestamp(text: str, data: dict[str, Any], member: str) -> datetime | None:
    value = data.get(member)
    if value is None:
        return None
    if not isinstance(value, str):
        raise validation_error(f"{member} must be an ISO 8601 date and time.", text, _position(text, member))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in value.upper():
        raise validation_error(
            f"{member} must be an ISO 8601 date and time with a zone (Z or an offset), not {value!r}.",
            text,
            _position(text, member),
        )
    return moment.astimezone(clock.now().tzinfo)


def parse_query(text: str) -> jobs.Query:
    """The body of ``POST .../data`` (spec B4): a JSON object of ``format`` (required), ``mode``,
    and for an incremental ``since`` (inclusive) and ``until`` (exclusive, optional). ``null``
    members count as absent, as the client omits them."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise validation_error(f"The body is not JSON: {exc.msg}.", text, exc.pos) from None
    if not isinstance(data, dict):
        raise validation_error("The body must be a JSON object (a query).", text, 0)
    for member in data:
        if member not in QUERY_MEMBERS:
            raise validation_error(f"Unknown query member {member!r}.", text, _position(text, member))
    file_format = data.get("format")
    if file_format not in FORMATS:
        raise validation_error(
            f"format must be one of {', '.join(FORMATS)}.", text, _position(text, "format")
        )
    mode = data.get("mode")
    if mode is not None and mode not in MODES:
        raise validation_error(f"mode must be one of {', '.join(MODES)}.", text, _position(text, "mode"))
    since = _timestamp(text, data, "since")
    until = _timestamp(text, data, "until")
    if until is not None and since is None:
        raise validation_error("until needs since: a snapshot has no window.", text, _position(text, "until"))
    if since is not None and until is not None and until <= since:
        raise validation_error("until must be later than since.", text, _position(text, "until"))
    return jobs.Query(format=file_format, mode=mode, since=since, until=until)


def parse_object_ids(text: str) -> list[str]:
    """The body of ``POST /dap/object/url``: a non-empty JSON array of ``{"id": "<object id>"}``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise validation_error(f"The body is not JSON: {exc.msg}.", text, exc.pos) from None
    if not isinstance(data, list) or not data:
        raise validation_error('The body must be a non-empty JSON array of {"id": ...}.', text, 0)
    ids: list[str] = []
    for item in data:
        if not isinstance(item, dict) or set(item) != {"id"} or not isinstance(item["id"], str):
            raise validation_error('Each item must be exactly {"id": "<object id>"}.', text, 0)
        ids.append(item["id"])
    return ids


async def check_window(session: Any, query: jobs.Query) -> None:
    """An incremental's ``since`` must be within the change log, its ``until`` not in the future."""
    assert query.since is not None
    kept_since, _ = await jobs.incremental_window(session)
    now = clock.now()
    if kept_since is None or query.since < kept_since:
        raise snapshot_required(
            "Changes that long ago are not kept: take a snapshot, then query incrementals from its at.",
            kept_since or now,
        )
    if query.until is not None and query.until > now:
        raise out_of_range("until is in the future.", kept_since, now)
    if query.since > now:
        raise out_of_range("since is in the future.", kept_since, now)


def dap_routes(settings: Settings, db: Database, keyring: KeyRing, runner: jobs.JobRunner) -> list[BaseRoute]:
    api = DapApi(settings, db, keyring, runner)

    async def post_only(request: Request) -> Response:
        return method_not_allowed("POST").response()

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
        Route(DATA_PATH, api.query_data, methods=["POST"]),
        Route(DATA_PATH, post_only, methods=ANY_METHOD),
        Route(JOB_PATH, api.get_job, methods=["GET"]),
        Route(JOB_PATH, get_only, methods=ANY_METHOD),
        Route(OBJECT_URL_PATH, api.object_urls, methods=["POST"]),
        Route(OBJECT_URL_PATH, post_only, methods=ANY_METHOD),
        Route(FILES_PATH, api.download, methods=["GET"]),
        Route(FILES_PATH, get_only, methods=ANY_METHOD),
        Route("/dap/{path:path}", unknown, methods=ANY_METHOD),
    ]
