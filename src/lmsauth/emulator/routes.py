"""The control API under ``/_emulator/`` and its page.

JSON in, JSON out; errors are ``{"error": {"type", "message"}}``. Writes need a JSON (or, for
seeds, TOML) body, so a plain HTML form on another site cannot send one; the middleware has
already refused callers that are not on this machine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from lmsauth import seed
from lmsauth.core import clock
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import read_params, templates
from lmsauth.emulator import flow, records
from lmsauth.emulator.faults import FaultError
from lmsauth.emulator.state import EmulatorState

PAGES = Path(__file__).parent / "pages"
STATIC = Path(__file__).parent / "static"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
PAGE_REQUESTS = 20


class ControlError(Exception):
    def __init__(self, status: int, message: str, kind: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind

    def response(self) -> Response:
        return JSONResponse({"error": {"type": self.kind, "message": self.message}}, status_code=self.status)


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _json_object(request: Request) -> dict[str, Any]:
    if _content_type(request) != "application/json":
        raise ControlError(
            415, "Send a JSON object (Content-Type: application/json).", "unsupported_media_type"
        )
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(400, "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise ControlError(400, "The body must be a JSON object.")
    return data


def clock_view() -> dict[str, Any]:
    now = clock.now()
    offset = clock.offset_seconds()
    return {
        "now": now.isoformat(),
        "timestamp": int(now.timestamp()),
        "offset_seconds": offset,
        "real_time": offset == 0,
    }


def _moment(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ControlError(400, 'set must be an ISO 8601 time, e.g. "2030-01-01T00:00:00Z".')
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ControlError(400, f"set is not an ISO 8601 time: {value!r}.") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class ControlApi:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.pages = templates(PAGES)

    async def get_clock(self, request: Request) -> Response:
        return JSONResponse(clock_view())

    async def move_clock(self, request: Request) -> Response:
        data = await _json_object(request)
        if set(data) == {"advance"}:
            seconds = data["advance"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise ControlError(400, "advance must be a number of seconds.")
            clock.advance(float(seconds))
        elif set(data) == {"set"}:
            clock.set_time(_moment(data["set"]))
        else:
            raise ControlError(400, 'Send {"advance": seconds} or {"set": "<ISO 8601>"}.')
        return JSONResponse(clock_view())

    async def real_clock(self, request: Request) -> Response:
        clock.reset()
        return JSONResponse(clock_view())

    async def list_faults(self, request: Request) -> Response:
        return JSONResponse({"faults": [fault.public() for fault in self.state.faults.live()]})

    async def add_fault(self, request: Request) -> Response:
        data = await _json_object(request)
        try:
            fault = self.state.faults.add(data)
        except FaultError as exc:
            raise ControlError(400, str(exc)) from exc
        return JSONResponse(fault.public(), status_code=201)

    async def clear_faults(self, request: Request) -> Response:
        self.state.faults.clear()
        return Response(status_code=204)

    async def remove_fault(self, request: Request) -> Response:
        raw = request.path_params["fault_id"]
        if not raw.isdigit() or not self.state.faults.remove(int(raw)):
            raise ControlError(404, f"No fault {raw}.", "not_found")
        return Response(status_code=204)

    async def list_requests(self, request: Request) -> Response:
        raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise ControlError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}.")
        return JSONResponse({"requests": self.state.traffic.last(int(raw))})

    async def clear_requests(self, request: Request) -> Response:
        self.state.traffic.clear()
        return Response(status_code=204)

    async def load_seed(self, request: Request) -> Response:
        """A seed's TOML, raw (``application/toml``) or as ``{"toml": "..."}``."""
        if _content_type(request) in ("application/toml", "text/x-toml"):
            try:
                text = (await request.body()).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ControlError(400, "The seed is not UTF-8.") from exc
        else:
            given = (await _json_object(request)).get("toml")
            if not isinstance(given, str):
                raise ControlError(400, 'Send {"toml": "..."} or the TOML itself as application/toml.')
            text = given
        try:
            result = await self.state.load_seed(text)
        except seed.SeedError as exc:
            raise ControlError(400, f"The seed was not loaded: {exc}", "invalid_seed") from exc
        return JSONResponse(
            {
                "users": result.users,
                "developer_keys": result.developer_keys,
                "commons_consumers": result.commons_consumers,
                "external_tools": result.external_tools,
            }
        )

    async def reset(self, request: Request) -> Response:
        await self.state.reset()
        return JSONResponse({"seeds": len(self.state.seeds), "clock": clock_view()})

    async def tokens(self, request: Request) -> Response:
        async with self.state.db.session() as session:
            data: dict[str, Any] = {**await records.live_tokens(session)}
            data["identity_clients"] = await records.identity_clients(session)
        data["identity_tokens"] = "not stored: they are signed JWTs; see /_emulator/requests for their use"
        return JSONResponse(data)

    async def run_flow(self, request: Request) -> Response:
        """The one-click flow: JSON in and out for scripts, a form and a page for people."""
        wants_json = _content_type(request) == "application/json"
        try:
            if wants_json:
                data = await _json_object(request)
                client_id, login = data.get("client_id"), data.get("login")
            else:
                params = await read_params(request, query=False)
                client_id, login = params.get("client_id"), params.get("login")
        except BadParameters as exc:
            raise ControlError(400, exc.message) from exc
        keys, people = self.state.seeded_keys(), self.state.seeded_users()
        key = next((k for k in keys if client_id in (None, "", k.client_id)), None)
        user = next((u for u in people if login in (None, "", u.login)), None)
        if key is None or user is None or not key.redirect_uris:
            raise ControlError(
                400, "Name a developer key and a user from a loaded seed (with client_id and client_secret)."
            )

        async def lookup(kind: str, value: str) -> dict[str, Any] | None:
            async with self.state.db.session() as session:
                return await records.credential_record(session, kind, value)

        try:
            result = await flow.run_in_thread(self.state.settings.public_url, key, user, lookup)
        except flow.FlowFailed as exc:
            if wants_json:
                return JSONResponse(
                    {"error": {"type": "flow_failed", "message": exc.message}, "steps": exc.steps},
                    status_code=502,
                )
            return self._render(
                request, "flow.html", 502, error=exc.message, steps=exc.steps, key=key, user=user
            )
        if wants_json:
            return JSONResponse(result)
        return self._render(request, "flow.html", 200, error=None, key=key, user=user, **result)

    async def page(self, request: Request) -> Response:
        async with self.state.db.session() as session:
            tokens = await records.live_tokens(session)
            users = await records.users(session)
            keys = await records.developer_keys(session)
            identity = await records.identity_clients(session)
        return self._render(
            request,
            "index.html",
            200,
            clock=clock_view(),
            signing_keys=self.state.keyring.jwks()["keys"],
            developer_keys=keys,
            identity_clients=identity,
            users=users,
            tokens=tokens,
            faults=[fault.public() for fault in self.state.faults.live()],
            requests=self.state.traffic.last(PAGE_REQUESTS),
            seeded_keys=self.state.seeded_keys(),
            seeded_users=self.state.seeded_users(),
            public_url=self.state.settings.public_url,
        )

    def _render(self, request: Request, name: str, status: int, **values: Any) -> HTMLResponse:
        html = self.pages.get_template(name).render(request=request, pretty=_pretty, **values)
        return HTMLResponse(html, status_code=status)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def emulator_routes(state: EmulatorState) -> list[BaseRoute]:
    api = ControlApi(state)

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except ControlError as exc:
                return exc.response()
            response.headers.setdefault("cache-control", "no-store")
            return response

        return endpoint

    async def unknown(request: Request) -> Response:
        return ControlError(404, "No such emulator endpoint.", "not_found").response()

    prefix = "/_emulator"
    return [
        Route(f"{prefix}/", guarded(api.page), methods=["GET"]),
        Route(f"{prefix}/clock", guarded(api.get_clock), methods=["GET"]),
        Route(f"{prefix}/clock", guarded(api.move_clock), methods=["POST"]),
        Route(f"{prefix}/clock", guarded(api.real_clock), methods=["DELETE"]),
        Route(f"{prefix}/faults", guarded(api.list_faults), methods=["GET"]),
        Route(f"{prefix}/faults", guarded(api.add_fault), methods=["POST"]),
        Route(f"{prefix}/faults", guarded(api.clear_faults), methods=["DELETE"]),
        Route(f"{prefix}/faults/{{fault_id}}", guarded(api.remove_fault), methods=["DELETE"]),
        Route(f"{prefix}/requests", guarded(api.list_requests), methods=["GET"]),
        Route(f"{prefix}/requests", guarded(api.clear_requests), methods=["DELETE"]),
        Route(f"{prefix}/seed", guarded(api.load_seed), methods=["POST"]),
        Route(f"{prefix}/reset", guarded(api.reset), methods=["POST"]),
        Route(f"{prefix}/tokens", guarded(api.tokens), methods=["GET"]),
        Route(f"{prefix}/flow", guarded(api.run_flow), methods=["POST"]),
        Mount(f"{prefix}/static", StaticFiles(directory=STATIC), name="emulator-static"),
        Route(prefix + "/{path:path}", unknown, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
    ]
