"""``core.routing.PrefixGroup``: routes grouped under a prefix behave as they would in the
router's own list, and a path outside the prefix never reaches them."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from lmsauth.core import metrics
from lmsauth.core.routing import PrefixGroup


async def which(request: Request) -> Response:
    route = request.scope["route"]
    return PlainTextResponse(f"{route.path} {dict(request.path_params)}")


def app() -> Starlette:
    return Starlette(
        routes=[
            PrefixGroup(
                "/ids/",
                [
                    Route("/ids/auth/login", which, methods=["POST"], name="login"),
                    # Its pattern matches any path: only the prefix keeps other paths out.
                    Route("/{rest:path}", which, methods=["GET"]),
                ],
            ),
            Route("/{anything:path}", which, methods=["GET", "POST"]),
        ]
    )


def test_a_path_under_the_prefix_reaches_the_inner_route_that_matches() -> None:
    client = TestClient(app())
    assert client.post("/ids/auth/login").text == "/ids/auth/login {}"
    assert client.get("/ids/x/y").text == "/{rest:path} {'rest': 'ids/x/y'}"


def test_a_wrong_method_under_the_prefix_is_405_as_in_a_flat_list() -> None:
    response = TestClient(app()).put("/ids/auth/login")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_a_path_outside_the_prefix_never_tries_the_group() -> None:
    client = TestClient(app())
    assert client.get("/idsx/auth/login").text == "/{anything:path} {'anything': 'idsx/auth/login'}"
    assert client.get("/other").text == "/{anything:path} {'anything': 'other'}"


def test_names_and_templates_see_through_the_group() -> None:
    built = app()
    assert built.url_path_for("login") == "/ids/auth/login"
    templates = metrics.route_templates(built)
    assert "/ids/auth/login" in templates.values()
    assert "/{rest}" in templates.values()
