"""Logs (``core.logs``, ``core.observe``): one JSON object per line, the request id on every
line of a request and in the response, an access line per request with the route template
only, and no secret anywhere, even when something tries to log one."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from lmsauth.core import logs
from lmsauth.core.observe import incoming_id
from lmsauth.settings import Settings
from tests.commons.support import Lti
from tests.conftest import Directory
from tests.full_flow import every_flow
from tests.identity.helpers import make_client


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("lmsauth.test", logging.INFO, __file__, 1, message, args or None, None)
    record.__dict__.update(extra)
    return record


def _cleaned(record: logging.LogRecord) -> logging.LogRecord:
    logs.RequestIdFilter().filter(record)
    logs.RedactSecrets().filter(record)
    return record


# ---------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POST /login/oauth2/token?code=abc123&state=s1", "POST /login/oauth2/token?code=***&state=***"),
        ("refresh_token=r1&client_secret=s2&password=p3", "refresh_token=***&client_secret=***&password=***"),
        ("access_token=a1 jwt_token=j2 code_verifier=v3", "access_token=*** jwt_token=*** code_verifier=***"),
        ("pseudonym_session[password]=hunter2", "pseudonym_session[password]=***"),
        ("pseudonym_session%5Bpassword%5D=hunter2&x=1", "pseudonym_session%5Bpassword%5D=***&x=1"),
        ("Authorization: Bearer 1~abcdefghijklmnopqrstuvwxyz", "Authorization: *** ***"),
        ("header Basic dXNlcjpwYXNzd29yZHBhc3N3b3Jk", "header Basic ***"),
        ('{"access_token": "a1", "token_type": "Bearer"}', '{"access_token": "***", "token_type": "Bearer"}'),
        ("{'client_secret': 's2'}", "{'client_secret': '***'}"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt ***"),
        ("X-Session-ID: 0123456789abcdef", "X-Session-ID: ***"),
        ("cookie: canvas_session=abc; theme=dark", "cookie: ***; theme=dark"),
        ("GET /commons/api/sessions?session-id=abc", "GET /commons/api/sessions?session-id=***"),
    ],
)
def test_redaction_masks_what_looks_like_a_credential(text: str, expected: str) -> None:
    assert logs.redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "status_code=200 workflow_state=active token_type=bearer",
        "The Basic credentials are missing or too long.",
        "GET /login/oauth2/auth 302 3.1ms",
        "identity error 401 AuthenticationError 5b0f: Invalid client ID or secret.",
    ],
)
def test_redaction_leaves_ordinary_text_alone(text: str) -> None:
    assert logs.redact(text) == text


def test_the_filter_masks_arguments_exceptions_and_extra_fields() -> None:
    try:
        raise ValueError("refused refresh_token=leaked-refresh-value")
    except ValueError:
        record = logging.LogRecord(
            "lmsauth", logging.ERROR, __file__, 1, "token %s", ("code=leaked-code",), sys.exc_info()
        )
    record.detail = "client_secret=leaked-secret"
    line = logs.JsonFormatter().format(_cleaned(record))
    assert "leaked" not in line
    data = json.loads(line)
    assert data["message"] == "token code=***"
    assert "refresh_token=***" in data["exception"]
    assert data["detail"] == "client_secret=***"


# ---------------------------------------------------------------------------- formats


def test_json_lines_are_one_object_each_with_the_request_id() -> None:
    reset = logs.REQUEST_ID.set("req-1")
    try:
        record = _cleaned(_record("two\nlines \u2028 and a %s", "value", route="/x"))
    finally:
        logs.REQUEST_ID.reset(reset)
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line and "\u2028" not in line and line.isascii()
    data = json.loads(line)
    assert data["message"] == "two\nlines \u2028 and a value"
    assert data["request_id"] == "req-1"
    assert data["route"] == "/x"
    assert data["level"] == "info" and data["logger"] == "lmsauth.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["time"])


@pytest.mark.parametrize("client_ip", ["203.0.113.9", None, 'forged"\n\u2028address'])
def test_the_access_line_is_written_straight_with_the_same_fields(client_ip: str | None) -> None:
    fields = {"method": "GET", "route": "/x/{id}", "status": 200, "duration_ms": 1.25, "request_id": "r-1"}
    record = _record("%s %s %s %.1fms", "GET", "/x/{id}", 200, 1.25, client_ip=client_ip, **fields)
    record.name = "lmsauth.access"
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line and line.isascii()
    record.name = "lmsauth.other"  # the generic path
    assert json.loads(line) == {**json.loads(logs.JsonFormatter().format(record)), "logger": "lmsauth.access"}


def test_outside_a_request_the_request_id_is_null() -> None:
    data = json.loads(logs.JsonFormatter().format(_cleaned(_record("started"))))
    assert data["request_id"] is None


def test_text_lines_show_the_request_id() -> None:
    reset = logs.REQUEST_ID.set("req-2")
    try:
        line = logs.TextFormatter().format(_cleaned(_record("hello")))
    finally:
        logs.REQUEST_ID.reset(reset)
    assert line.endswith(" INFO    lmsauth.test [req-2] hello")


def test_auto_is_text_on_a_terminal_and_json_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert logs.resolve_format("auto") == "json"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert logs.resolve_format("auto") == "text"
    assert logs.resolve_format("json") == "json"
    assert logs.resolve_format("text") == "text"
    with pytest.raises(ValueError, match="unknown log format"):
        logs.resolve_format("xml")


def test_the_config_replaces_uvicorns_access_log(monkeypatch: pytest.MonkeyPatch) -> None:
    config = logs.config("warning", "json")
    assert config["root"]["level"] == "WARNING"
    assert config["loggers"]["uvicorn.access"]["propagate"] is False
    assert config["loggers"]["uvicorn.access"]["handlers"] == []
    assert config["formatters"]["main"]["()"] == "lmsauth.core.logs.JsonFormatter"
    assert logs.config("info", "text")["formatters"]["main"]["()"] == "lmsauth.core.logs.TextFormatter"


# ---------------------------------------------------------------------------- request ids


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (b"abc-123", True),
        (b"0f" * 32, True),
        (b"a" * 65, False),
        (b"has space", False),
        (b"new\nline", False),
        (b"", False),
        (b'{"json": 1}', False),
    ],
)
def test_an_incoming_request_id_is_kept_only_if_short_and_safe(header: bytes, kept: bool) -> None:
    scope = {"headers": [(b"host", b"x"), (b"x-request-id", header)]}
    assert incoming_id(scope) == (header.decode() if kept else None)


def test_every_response_announces_its_request_id(client: TestClient) -> None:
    chosen = client.get("/healthz", headers={"X-Request-Id": "lb-7f3a"})
    assert chosen.headers["x-request-id"] == "lb-7f3a"
    generated = [client.get(path).headers["x-request-id"] for path in ("/healthz", "/nowhere", "/api/v1/x")]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in generated)
    assert len(set(generated)) == 3
    unsafe = client.get("/healthz", headers={"X-Request-Id": "x" * 100})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])


# ---------------------------------------------------------------------------- a whole flow, captured


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at INFO and above, stamped with its request id but *not* redacted: the
    test proves that nothing logs a secret in the first place."""
    caplog.set_level(logging.INFO)
    request_ids = logs.RequestIdFilter()
    caplog.handler.addFilter(request_ids)
    try:
        yield caplog
    finally:
        caplog.handler.removeFilter(request_ids)


def test_a_whole_flow_logs_no_secret_and_every_line_carries_its_request_id(
    client: TestClient, directory: Directory, settings: Settings, captured: pytest.LogCaptureFixture
) -> None:
    lti = Lti.install(directory, settings)
    seen = every_flow(client, lti, make_client(settings))

    # The test's own HTTP client logs every URL it asks for: that is the client's log, not ours.
    records = [record for record in captured.records if not record.name.startswith(("httpx", "httpcore"))]
    lines = [logs.JsonFormatter().format(record) for record in records]
    text = "\n".join(lines) + "\n".join(record.getMessage() for record in records)
    for secret in seen.secrets:
        assert secret not in text, f"a secret was logged: {secret[:6]}..."
    assert "?" not in "".join(str(getattr(record, "route", "")) for record in records)

    announced = set(seen.request_ids)
    access = [record for record in records if record.name == "lmsauth.access"]
    assert sorted(record.request_id for record in access) == sorted(seen.request_ids)  # type: ignore[attr-defined]
    for record, line in zip(records, lines, strict=True):
        data = json.loads(line)
        if record.name.startswith(("lmsauth.access", "lmsauth.identity", "lmsauth.dap", "lmsauth.commons")):
            assert data["request_id"] in announced, line
    routes = {record.route for record in access}  # type: ignore[attr-defined]
    assert "/commons/api/sessions/{session_id}" in routes
    assert "/login/oauth2/token" in routes
    assert any(json.loads(line)["logger"] == "lmsauth.identity" for line in lines)


def test_an_unhandled_error_keeps_its_request_id_and_logs_no_raw_path(
    settings: Settings, captured: pytest.LogCaptureFixture
) -> None:
    from lmsauth.app import create_app

    async def boom(request: object) -> None:
        raise RuntimeError("failed with refresh_token=leaked-refresh-value")

    app = create_app(settings)
    app.add_route("/api/v1/boom/{secret_id}", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/boom/s3cret-path-id", headers={"X-Request-Id": "req-boom"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-boom"
    ours = [record for record in captured.records if record.request_id == "req-boom"]  # type: ignore[attr-defined]
    assert {record.name for record in ours} == {"lmsauth", "lmsauth.access"}
    failure = next(record for record in ours if record.name == "lmsauth")
    assert failure.getMessage() == "unhandled error on GET /api/v1/boom/{secret_id}"
    line = logs.JsonFormatter().format(_cleaned(failure))
    assert "s3cret-path-id" not in line and "leaked-refresh-value" not in line
    assert "refresh_token=***" in json.loads(line)["exception"]
    access = next(record for record in ours if record.name == "lmsauth.access")
    assert access.status == 500  # type: ignore[attr-defined]
