"""Hypothesis on the hand-written request parsers (issue 5): whatever a client sends, each
parser either answers or refuses with its own error type, never another exception (which
would be a 500), and what a well-behaved client encodes comes back out unchanged.

Covered: ``core.web`` (``Params``, ``read_params``, through a tiny Starlette app), the two
HTTP Basic parsers (Canvas's token endpoint, the Identity Service), where Commons finds a
session id, and Commons' LTI launch parsing (form, timestamp, OAuth 1.0a signature).
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oauthlib.oauth1 import SIGNATURE_TYPE_BODY, Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lmsauth.canvas.client_auth import basic_credentials as canvas_basic_credentials
from lmsauth.commons import launch, sessions
from lmsauth.commons.settings import CommonsSettings
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import MAX_PARAM_LENGTH, MAX_PARAMS, Params, read_params
from lmsauth.identity.login import basic_credentials

# Derandomized as in test_fuzz.py: the same examples on every run, in CI too, and no example
# database carried from one run to the next.
DETERMINISTIC = {"derandomize": True, "database": None}
FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], **DETERMINISTIC
)
CONTENT_TYPES = [
    "",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/json",
    "application/vnd.api+json",
    "text/plain",
    "multipart/form-data; boundary=x",
]
# What uvicorn (httptools) lets through in a request target: visible ASCII. Raw bytes above
# 0x7e are refused with 400 before the app runs, so no parser ever sees them in a query.
TARGET_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=200)
# Header values reach the app as latin-1 text (RFC 9110 5.5: obs-text is allowed).
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=120
)
content_types = st.one_of(st.sampled_from(CONTENT_TYPES), HEADER_TEXT)
# JSON nested deeper than the interpreter's stack: ``json.loads`` raises RecursionError, which
# is not a ValueError (found here: it was a 500 on every JSON body).
deeply_nested = st.builds(
    lambda depth, opener, tail: opener * depth + tail,
    st.integers(min_value=900, max_value=60_000),
    st.sampled_from([b"[", b'{"a":', b'{"sessionId":[']),
    st.sampled_from([b"", b"1", b"]"]),
)
bodies = st.one_of(st.binary(max_size=300), deeply_nested)


# ---------------------------------------------------------------------------- a tiny app


async def echo(request: Request) -> Response:
    """Every parameter ``read_params`` found, or its refusal."""
    try:
        params = await read_params(request)
        return JSONResponse({name: params.get_all(name) for name in sorted(params.names())})
    except BadParameters as exc:
        return JSONResponse({"refused": exc.message}, status_code=400)


ECHO = Starlette(routes=[Route("/", echo, methods=["GET", "POST"])])


def call(
    app: Any,
    *,
    method: str = "POST",
    query: bytes = b"",
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, Any]:
    """Drive ``app`` through ASGI directly, so any bytes can be sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": query,
        "headers": [*(headers or []), (b"content-length", str(len(body)).encode())],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    payload = b"".join(message.get("body", b"") for message in sent[1:])
    return status, json.loads(payload)


def content_type(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", value.encode("latin-1"))] if value else []


pairs = st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=MAX_PARAMS)


def grouped(items: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in items:
        out.setdefault(key, []).append(value)
    return dict(sorted(out.items()))


@FAST
@given(query=st.binary(max_size=300), body=bodies, kind=content_types)
def test_read_params_answers_or_refuses_any_bytes(query: bytes, body: bytes, kind: str) -> None:
    status, payload = call(ECHO, query=query, body=body, headers=content_type(kind))
    assert status in (200, 400), payload


@FAST
@given(query=pairs, body=pairs)
def test_read_params_round_trips_query_and_form(
    query: list[tuple[str, str]], body: list[tuple[str, str]]
) -> None:
    status, payload = call(
        ECHO,
        query=urlencode(query).encode(),
        body=urlencode(body).encode(),
        headers=content_type("application/x-www-form-urlencoded"),
    )
    assert status == 200, payload
    assert payload == grouped(query + body)


@FAST
@given(
    data=st.dictionaries(
        st.text(max_size=20),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=40)),
        max_size=MAX_PARAMS,
    )
)
def test_read_params_round_trips_a_json_object(data: dict[str, Any]) -> None:
    status, payload = call(ECHO, body=json.dumps(data).encode(), headers=content_type("application/json"))
    assert status == 200, payload
    expected = {
        key: ["true" if value is True else "false" if value is False else str(value)]
        for key, value in data.items()
        if value is not None
    }
    assert payload == dict(sorted(expected.items()))


@FAST
@given(query=TARGET_TEXT)
def test_get_ignores_the_body(query: str) -> None:
    status, payload = call(ECHO, method="GET", query=query.encode(), body=b"\xff{not read")
    assert status in (200, 400)
    if status == 200:
        assert all(isinstance(values, list) for values in payload.values())


@FAST
@given(items=st.lists(st.tuples(st.text(max_size=5), st.text(max_size=MAX_PARAM_LENGTH + 10)), max_size=80))
def test_params_get_returns_the_single_value_or_refuses(items: list[tuple[str, str]]) -> None:
    try:
        params = Params(items)
    except BadParameters:
        assert len({key for key, _ in items}) > MAX_PARAMS
        return
    for key, values in grouped(items).items():
        try:
            value = params.get(key)
        except BadParameters:
            assert len(values) > 1 or len(values[0]) > MAX_PARAM_LENGTH or "\x00" in values[0]
        else:
            assert len(values) == 1 and value == values[0]


@given(body=deeply_nested)
@settings(max_examples=20, deadline=None, **DETERMINISTIC)
def test_deeply_nested_json_is_refused(body: bytes) -> None:
    status, payload = call(ECHO, body=body, headers=content_type("application/json"))
    assert (status, payload) == (400, {"refused": "the request body is not valid JSON"})


# ---------------------------------------------------------------------------- HTTP Basic


def _request_with_authorization(raw: bytes) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": [(b"authorization", raw)]})


credential_id = st.text(min_size=1, max_size=60).filter(lambda text: ":" not in text)
credential_secret = st.text(min_size=1, max_size=60)


def encode_basic(client_id: str, secret: str, scheme: str = "Basic") -> str:
    return f"{scheme} " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@FAST
@given(raw=st.binary(max_size=200))
def test_canvas_basic_parser_never_raises(raw: bytes) -> None:
    found = canvas_basic_credentials(_request_with_authorization(raw))
    assert found is None or (isinstance(found, tuple) and len(found) == 2)


@FAST
@given(
    client_id=credential_id,
    secret=st.text(max_size=60),
    scheme=st.sampled_from(["Basic", "basic", "BASIC"]),
)
def test_canvas_basic_parser_round_trips(client_id: str, secret: str, scheme: str) -> None:
    header = encode_basic(client_id, secret, scheme).encode("latin-1")
    assert canvas_basic_credentials(_request_with_authorization(header)) == (client_id, secret)


@FAST
@given(header=st.one_of(st.none(), HEADER_TEXT, st.text(max_size=200)))
def test_identity_basic_parser_answers_or_refuses(header: str | None) -> None:
    try:
        client_id, secret = basic_credentials(header)
    except BadParameters:
        return
    assert client_id and secret and ":" not in client_id


@FAST
@given(client_id=credential_id, secret=credential_secret, padding=st.sampled_from(["", " ", "  "]))
def test_identity_basic_parser_round_trips(client_id: str, secret: str, padding: str) -> None:
    assert basic_credentials(padding + encode_basic(client_id, secret) + padding) == (client_id, secret)


# ---------------------------------------------------------------------------- Commons session id


def commons_request(
    *, header: str | None = None, query: str = "", cookie: str | None = None, kind: str = ""
) -> Request:
    headers = content_type(kind)
    if header is not None:
        headers.append((b"x-session-id", header.encode("latin-1")))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode("latin-1")))
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("testserver", 80),
            "path": "/api/sessions/logout",
            "root_path": "",
            "query_string": query.encode(),
            "headers": headers,
        }
    )


@FAST
@given(
    header=st.one_of(st.none(), HEADER_TEXT),
    query=TARGET_TEXT,
    cookie=st.one_of(st.none(), HEADER_TEXT),
    body=bodies,
    kind=content_types,
)
def test_session_id_extraction_never_raises(
    header: str | None, query: str, cookie: str | None, body: bytes, kind: str
) -> None:
    found = sessions.presented_id(commons_request(header=header, query=query, cookie=cookie, kind=kind), body)
    assert found is None or (found.value and found.source in sessions.PRECEDENCE)


session_ids = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"\\'), min_size=1, max_size=64
)


@FAST
@given(
    values=st.fixed_dictionaries(
        {},
        optional={source: session_ids for source in sessions.PRECEDENCE},
    ),
    json_body=st.booleans(),
)
def test_session_id_first_place_that_holds_one_wins(values: dict[str, str], json_body: bool) -> None:
    query = urlencode([(name, values[name]) for name in (sessions.QUERY, sessions.STATE) if name in values])
    body = b""
    kind = ""
    if sessions.BODY in values:
        kind = "application/json" if json_body else "application/x-www-form-urlencoded"
        body = (
            json.dumps({sessions.BODY: values[sessions.BODY]}).encode()
            if json_body
            else urlencode({sessions.BODY: values[sessions.BODY]}).encode()
        )
    cookie = f"{sessions.COOKIE}={values[sessions.COOKIE]}" if sessions.COOKIE in values else None
    request = commons_request(header=values.get(sessions.HEADER), query=query, cookie=cookie, kind=kind)
    found = sessions.presented_id(request, body)
    expected = next((source for source in sessions.PRECEDENCE if source in values), None)
    if expected is None:
        assert found is None
    else:
        assert found == sessions.PresentedId(values[expected], expected)


# ---------------------------------------------------------------------------- LTI launches


@FAST
@given(body=st.binary(max_size=400))
def test_launch_form_is_read_or_refused(body: bytes) -> None:
    try:
        form = launch.parse_form(body)
    except launch.LaunchRefused as exc:
        assert exc.status == 400
        return
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in form.items())


@FAST
@given(
    form=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=launch.MAX_FIELDS)
)
def test_launch_form_round_trips(form: dict[str, str]) -> None:
    assert launch.parse_form(urlencode(form).encode()) == form


@FAST
@given(key=st.text(min_size=1, max_size=10), first=st.text(max_size=10), second=st.text(max_size=10))
def test_launch_parameter_sent_twice_is_refused(key: str, first: str, second: str) -> None:
    with pytest.raises(launch.LaunchRefused):
        launch.parse_form(urlencode([(key, first), (key, second)]).encode())


@FAST
@given(raw=st.one_of(st.text(max_size=30), st.integers(min_value=0, max_value=10**12).map(str)))
def test_launch_timestamp_is_checked_or_refused(raw: str) -> None:
    try:
        stamp = launch.check_timestamp(raw, CommonsSettings())
    except launch.LaunchRefused as exc:
        assert exc.status in (400, 401)
        return
    assert isinstance(stamp, datetime)


LTI_URL = "http://testserver/commons/api/lti"
lti_params = st.dictionaries(
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12).filter(
        lambda key: not key.startswith("oauth_")
    ),
    st.text(max_size=30),
    max_size=10,
)


@settings(max_examples=60, deadline=None, **DETERMINISTIC)
@given(params=lti_params, secret=st.text(min_size=1, max_size=30), other=st.text(min_size=1, max_size=30))
def test_launch_signature_round_trips(params: dict[str, str], secret: str, other: str) -> None:
    client = Client("consumer", client_secret=secret, signature_type=SIGNATURE_TYPE_BODY)
    _uri, _headers, body = client.sign(
        LTI_URL,
        http_method="POST",
        body=params,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    raw = str(body).encode()
    kind = "application/x-www-form-urlencoded"
    assert launch.signature_valid(LTI_URL, raw, kind, "consumer", secret)
    assert launch.signature_valid(LTI_URL, raw, kind, "consumer", other) == (other == secret)
    assert not launch.signature_valid(LTI_URL, raw, kind, "consumer", None)


@FAST
@given(
    form=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=20),
    secret=st.one_of(st.none(), st.text(max_size=20)),
)
def test_launch_signature_check_answers_any_form(form: dict[str, str], secret: str | None) -> None:
    body = urlencode(form).encode()
    assert launch.signature_valid(LTI_URL, body, "application/x-www-form-urlencoded", "consumer", secret) in (
        True,
        False,
    )
