"""Request parameters (``core.web.Params`` and ``read_params``), and the body bound and
security headers of the shared layer (``core.edge.Edge``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from lmsauth.app import create_app
from lmsauth.commons.app import create_commons_app
from lmsauth.core.edge import Edge
from lmsauth.core.errors import BadParameters
from lmsauth.core.web import MAX_PARAM_LENGTH, MAX_PARAMS, ORJSONResponse, Params, read_params
from lmsauth.settings import Settings

# ---------------------------------------------------------------- Params


def test_get_single_absent_and_blank() -> None:
    params = Params([("a", "1"), ("blank", "")])
    assert params.get("a") == "1"
    assert params.get("blank") == ""
    assert params.get("missing") is None
    assert "blank" in params
    assert "missing" not in params
    assert params.names() == {"a", "blank"}


def test_repeated_parameter_is_refused_when_read() -> None:
    params = Params([("code", "x"), ("code", "y"), ("other", "z")])
    assert params.get("other") == "z"  # reading another name is fine
    with pytest.raises(BadParameters) as caught:
        params.get("code")
    assert caught.value.message == "the code parameter was given more than once"


def test_repeated_with_the_same_value_is_still_repeated() -> None:
    with pytest.raises(BadParameters):
        Params([("a", "1"), ("a", "1")]).get("a")


def test_oversized_parameter() -> None:
    assert Params([("a", "x" * MAX_PARAM_LENGTH)]).get("a") == "x" * MAX_PARAM_LENGTH
    with pytest.raises(BadParameters) as caught:
        Params([("a", "x" * (MAX_PARAM_LENGTH + 1))]).get("a")
    assert caught.value.message == "the a parameter is too long"


def test_nul_character_is_malformed() -> None:
    with pytest.raises(BadParameters) as caught:
        Params([("state", "a\x00b")]).get("state")
    assert caught.value.message == "the state parameter is malformed"


def test_get_all_for_array_parameters() -> None:
    params = Params([("include[]", "uuid"), ("include[]", "email")])
    assert params.get_all("include[]") == ["uuid", "email"]
    assert params.get_all("missing[]") == []
    with pytest.raises(BadParameters):
        Params([("include[]", "ok"), ("include[]", "x" * (MAX_PARAM_LENGTH + 1))]).get_all("include[]")


def test_too_many_distinct_names() -> None:
    Params([(f"p{i}", "v") for i in range(MAX_PARAMS)])
    with pytest.raises(BadParameters) as caught:
        Params([(f"p{i}", "v") for i in range(MAX_PARAMS + 1)])
    assert caught.value.message == "too many parameters"


# ---------------------------------------------------------------- read_params


def make_request(
    method: str = "GET", query: bytes = b"", body: bytes = b"", content_type: str | None = None
) -> Request:
    headers = [(b"content-type", content_type.encode())] if content_type else []
    scope = {"type": "http", "method": method, "path": "/", "query_string": query, "headers": headers}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def read(request: Request, **options: bool) -> Params:
    result: Params = asyncio.run(read_params(request, **options))
    return result


FORM = "application/x-www-form-urlencoded"


def test_query_string_is_decoded_like_a_form() -> None:
    params = read(make_request(query=b"a=x+y&b=%2F%3A&c=&d"))
    assert params.get("a") == "x y"
    assert params.get("b") == "/:"
    assert params.get("c") == ""
    assert params.get("d") == ""


def test_get_ignores_a_body() -> None:
    params = read(make_request("GET", query=b"a=1", body=b"b=2", content_type=FORM))
    assert params.names() == {"a"}


def test_form_body_and_query_together() -> None:
    params = read(make_request("POST", query=b"a=1", body=b"b=2&c=%E2%82%AC", content_type=FORM))
    assert (params.get("a"), params.get("b"), params.get("c")) == ("1", "2", "€")


def test_name_in_query_and_body_is_repeated() -> None:
    params = read(make_request("POST", query=b"code=1", body=b"code=1", content_type=FORM))
    with pytest.raises(BadParameters):
        params.get("code")


def test_query_or_body_can_be_left_out() -> None:
    request = make_request("POST", query=b"a=1", body=b"b=2", content_type=FORM)
    assert read(request, query=False).names() == {"b"}
    request = make_request("POST", query=b"a=1", body=b"b=2", content_type=FORM)
    assert read(request, body=False).names() == {"a"}


def test_form_content_type_with_parameters_and_missing_content_type() -> None:
    assert read(make_request("POST", body=b"a=1", content_type=FORM + "; charset=UTF-8")).get("a") == "1"
    assert read(make_request("POST", body=b"a=1")).get("a") == "1"


def test_json_body() -> None:
    body = json.dumps({"s": "x", "i": 12, "f": 1.5, "t": True, "no": False, "n": None}).encode()
    params = read(make_request("POST", body=body, content_type="application/json"))
    assert params.get("s") == "x"
    assert params.get("i") == "12"
    assert params.get("f") == "1.5"
    assert params.get("t") == "true"
    assert params.get("no") == "false"
    assert "n" not in params
    vendor = read(make_request("POST", body=b'{"a":"1"}', content_type="application/vnd.api+json"))
    assert vendor.get("a") == "1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the request body is not valid JSON"),
        (b"[1, 2]", "the request body must be a JSON object"),
        (b'"text"', "the request body must be a JSON object"),
        (b'{"a": {"b": 1}}', "the a parameter must be a string"),
        (b'{"a": [1]}', "the a parameter must be a string"),
        (b"\xff\xfe", "the request body is not valid JSON"),
    ],
)
def test_bad_json_body(body: bytes, message: str) -> None:
    with pytest.raises(BadParameters) as caught:
        read(make_request("POST", body=body, content_type="application/json"))
    assert caught.value.message == message


def test_unsupported_content_type() -> None:
    with pytest.raises(BadParameters) as caught:
        read(make_request("POST", body=b"<x/>", content_type="application/xml"))
    assert caught.value.message == "unsupported content type application/xml"


def test_empty_body_with_any_content_type_is_no_parameters() -> None:
    assert read(make_request("POST", content_type="application/xml")).names() == set()


@pytest.mark.parametrize("raw", [b"a=%FF", b"a=%C3"])
def test_parameters_that_are_not_utf8(raw: bytes) -> None:
    with pytest.raises(BadParameters):
        read(make_request("POST", body=raw, content_type=FORM))
    with pytest.raises(BadParameters):
        read(make_request(query=raw))


def test_too_many_form_fields() -> None:
    body = "&".join(f"p{i}=v" for i in range(MAX_PARAMS + 1)).encode()
    with pytest.raises(BadParameters) as caught:
        read(make_request("POST", body=body, content_type=FORM))
    assert caught.value.message == "too many parameters"


# ---------------------------------------------------------------- ORJSONResponse


@pytest.mark.parametrize(
    "body",
    [
        {  # a token endpoint's answer, the user's name not ASCII
            "access_token": "1~" + "a" * 64,
            "token_type": "Bearer",
            "user": {"id": 1, "name": "Zoë 李 \u2028", "global_id": "10000000000001", "locale": "en"},
            "canvas_region": "unknown",
            "refresh_token": None,
            "expires_in": 3600,
        },
        {"tables": ["accounts", "users"], "empty": {}, "flags": [True, False, None], "big": 2**62},
        [{"quote": '"\\/\n\t\x00', "emoji": "\U0001f600"}],
    ],
)
def test_orjson_answers_the_bytes_starlette_would(body: Any) -> None:
    """The hot paths answer with ``ORJSONResponse``: the same bytes as ``JSONResponse``."""
    assert ORJSONResponse(body).body == JSONResponse(body).body


# ---------------------------------------------------------------- middleware


def middleware_app(max_bytes: int = 100) -> TestClient:
    async def echo(request: Request) -> Response:
        return PlainTextResponse(str(len(await request.body())))

    async def page(request: Request) -> Response:
        return HTMLResponse("<p>hi</p>")

    async def data(request: Request) -> Response:
        return JSONResponse({})

    async def too_large(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("too large", status_code=413)

    app = Starlette(
        routes=[Route("/echo", echo, methods=["POST"]), Route("/page", page), Route("/data", data)]
    )
    wrapped = Edge(app, max_bytes=max_bytes, count=False, respond=None)
    return TestClient(wrapped)  # type: ignore[arg-type]


def test_body_limit() -> None:
    client = middleware_app()
    assert client.post("/echo", content=b"x" * 100).text == "100"
    response = client.post("/echo", content=b"x" * 101)
    assert response.status_code == 413
    assert response.text == "Request body too large"


def test_body_limit_refuses_a_bad_content_length() -> None:
    client = middleware_app()
    response = client.post("/echo", content=b"x", headers={"Content-Length": "abc"})
    assert response.status_code == 413


def test_body_limit_counts_streamed_bytes() -> None:
    client = middleware_app()

    def chunks() -> Any:
        yield b"x" * 60
        yield b"x" * 60

    with pytest.raises(BadParameters):
        client.post("/echo", content=chunks())


def test_security_headers() -> None:
    client = middleware_app()
    page = client.get("/page")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    data = client.get("/data")
    assert data.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in data.headers
    assert "x-frame-options" not in data.headers


def test_refusals_of_the_body_bound_carry_the_shared_headers() -> None:
    response = middleware_app().post("/echo", content=b"x" * 101)
    assert response.status_code == 413
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.headers["x-request-id"]) == 32


def test_security_headers_the_app_set_itself_are_kept() -> None:
    async def own(request: Request) -> Response:
        return HTMLResponse(
            "<p>embed me</p>",
            headers={
                "Content-Security-Policy": "frame-ancestors https://lms.example",
                "Cache-Control": "max-age=5",
            },
        )

    client = TestClient(Edge(Starlette(routes=[Route("/own", own)]), max_bytes=10, count=False))  # type: ignore[arg-type]
    response = client.get("/own")
    assert response.headers.get_list("content-security-policy") == ["frame-ancestors https://lms.example"]
    assert response.headers.get_list("cache-control") == ["max-age=5"]
    assert response.headers["x-frame-options"] == "DENY"  # what it did not set is still added


@pytest.mark.parametrize(
    ("public_url", "hsts"), [("https://lms.example", True), ("http://127.0.0.1:8000", False)]
)
def test_hsts_on_every_response_only_when_the_public_url_is_https(
    settings: Settings, public_url: str, hsts: bool
) -> None:
    https = settings.model_copy(update={"public_url": public_url})
    for app in (create_app(https), create_commons_app(https)):
        with TestClient(app, base_url=public_url) as client:
            answers = [
                client.get("/healthz"),
                client.get("/no/such/page"),  # an error page
                client.post("/login/oauth2/token", content=b"x" * 10, headers={"Content-Length": "99999999"}),
            ]
        for response in answers:
            if hsts:
                assert response.headers["strict-transport-security"] == "max-age=31536000", response.url
            else:
                assert "strict-transport-security" not in response.headers, response.url


@pytest.mark.parametrize("path", ["/login/oauth2/jwks/", "/commons/api/sessions/", "/commons"])
def test_a_trailing_slash_redirect_stays_on_the_public_url(
    client: TestClient, settings: Settings, path: str
) -> None:
    response = client.get(path + "?a=1", headers={"Host": "evil.example"})
    assert response.status_code == 307
    location = response.headers["location"]
    assert location.startswith(settings.public_url + "/"), location
    assert "evil.example" not in location
    assert location.endswith("?a=1")


def test_commons_alone_redirects_on_the_public_url_too(settings: Settings) -> None:
    with TestClient(create_commons_app(settings)) as client:
        response = client.get(
            "/commons/api/sessions/", headers={"Host": "evil.example"}, follow_redirects=False
        )
    assert response.status_code == 307
    assert response.headers["location"] == settings.public_url + "/commons/api/sessions"
