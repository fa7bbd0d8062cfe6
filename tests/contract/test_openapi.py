"""The published OpenAPI document (``src/lmsauth/openapi.yaml``, served at ``/openapi.json``):
it is valid OpenAPI 3.1, it describes exactly the routes the composed app serves, and real
responses of every service, successes and errors, match it (DESIGN.md, "Web stack")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import jwt
import yaml
from openapi_spec_validator import validate
from starlette.routing import BaseRoute, Mount, Route

from lmsauth.app import OPENAPI, create_app
from lmsauth.core.routing import PrefixGroup
from lmsauth.settings import Settings
from tests.canvas.lti.support import auth_request, enroll, form, lti_key, make_course
from tests.canvas.lti.tool import Tool, rsa_key_pair
from tests.commons.support import FORM, Lti, launch_and_accept
from tests.contract.conftest import DOCUMENT, conforms
from tests.flows import CSRF_CONSENT, code_for, form_token, log_in
from tests.identity.helpers import access_token, basic, make_client

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Routes the document leaves out on purpose, by path and endpoint name, each with why.
NOT_DESCRIBED = {
    # Static files (CSS) for the pages: not an API.
    ("/static", "StaticFiles"),
    # The Identity Service's answer to any method but POST on its login path: a 405 in its
    # error format, described in the operation's description.
    ("/ids/auth/login", "wrong_method"),
    # Catch-alls that answer 404 in each service's error format for paths that do not exist.
    ("/ids/{path:path}", "unknown"),
    ("/dap/{path:path}", "unknown"),
    # The DAP API's 405 for any method but GET on its two paths (see their descriptions).
    ("/dap/query/{namespace}/table", "get_only"),
    ("/dap/query/{namespace}/table/{table}/schema", "get_only"),
    ("/dap/job/{job_id}", "get_only"),
    ("/dap/files/{job_id}/{name}", "get_only"),
    # ... and for any method but POST on its two POST paths.
    ("/dap/query/{namespace}/table/{table}/data", "post_only"),
    ("/dap/object/url", "post_only"),
}


def _endpoint_name(route: BaseRoute) -> str:
    target = route.app if isinstance(route, Mount) else getattr(route, "endpoint", route)
    return getattr(target, "__name__", type(target).__name__)


def served(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(METHOD, path)`` for every route, Mounts walked; HEAD is implied by GET."""
    for route in routes:
        if isinstance(route, PrefixGroup):  # a group of routes, each with its own full path
            yield from served(route.routes, prefix)
            continue
        path = prefix + getattr(route, "path", "")
        if (path, _endpoint_name(route)) in NOT_DESCRIBED:
            continue
        if isinstance(route, Mount):
            yield from served(route.routes, path)
        elif isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield method, path
        else:
            raise AssertionError(f"a route of an unexpected kind: {route!r}")


def described() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT)


class _UniqueKeys(yaml.SafeLoader):
    """YAML keeps the last of two equal keys without a word; two merged branches that each add
    ``components.responses.X`` would silently lose one of them."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [key.value for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge"]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        assert not repeated, f"line {node.start_mark.line + 1}: {repeated} given twice"
        return super().construct_mapping(node, deep)


def test_document_has_no_key_given_twice() -> None:
    yaml.load(OPENAPI.read_text(encoding="utf-8"), Loader=_UniqueKeys)


def test_served_document_is_the_yaml_as_json(client) -> None:
    response = client.get("/openapi.json")
    conforms(response, "GET", "/openapi.json")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == DOCUMENT
    # libyaml's loader (app.openapi_json) and the pure-Python safe loader read the same document
    assert yaml.safe_load(OPENAPI.read_text(encoding="utf-8")) == DOCUMENT


def test_health_checks(client) -> None:
    conforms(client.get("/healthz"), "GET", "/healthz")
    ready = client.get("/readyz")
    assert ready.status_code == 200
    conforms(ready, "GET", "/readyz")


def test_every_route_is_described_and_every_description_is_a_route(settings: Settings) -> None:
    routes = list(served(create_app(settings).routes))
    assert len(routes) == len(set(routes)), "a route is registered twice"
    assert set(routes) == described()


def test_only_the_emulators_control_api_is_left_out(settings: Settings) -> None:
    """Emulator mode (off by default) adds its control API, which the document leaves out."""
    routes = set(served(create_app(settings.model_copy(update={"emulator": True})).routes))
    extra = routes - described()
    assert extra and all(path.startswith("/_emulator") for _method, path in extra), extra


def test_every_route_of_each_service_alone_is_described(settings: Settings) -> None:
    for service in ("canvas", "identity", "dap", "commons"):
        assert set(served(create_app(settings, services=[service]).routes)) <= described()


def test_every_operation_documents_its_responses() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                assert operation.get("responses"), (method, path)
                assert operation.get("operationId"), (method, path)


# ---------------------------------------------------------------------------- Canvas


def _tokens(client, lti: Lti) -> dict[str, Any]:
    code = code_for(
        client, lti.key.client_id, lti.key.redirect_uris[0], lti.user.login, lti.user.password, state="s"
    )
    response = client.post(
        "/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": lti.key.client_id,
            "client_secret": lti.key.client_secret,
            "code": code,
            "redirect_uri": lti.key.redirect_uris[0],
        },
    )
    conforms(response, "POST", "/login/oauth2/token")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_canvas_pages_and_authorization_flow(client, lti: Lti) -> None:
    key = lti.key
    conforms(client.get("/"), "GET", "/")
    conforms(client.get("/login?x=1"), "GET", "/login")
    conforms(client.get("/login/canvas"), "GET", "/login/canvas")
    conforms(client.post("/login/canvas", data={"authenticity_token": "nope"}), "POST", "/login/canvas")
    conforms(client.get("/login/oauth2/confirm"), "GET", "/login/oauth2/confirm")
    conforms(client.post("/login/oauth2/accept", data={}), "POST", "/login/oauth2/accept")
    conforms(client.get("/login/oauth2/deny"), "GET", "/login/oauth2/deny")
    conforms(client.post("/login/oauth2/deny", data={}), "POST", "/login/oauth2/deny")
    conforms(client.get("/accounts/self/external_tools"), "GET", "/accounts/{account_id}/external_tools")
    auth = {"client_id": key.client_id, "response_type": "code", "redirect_uri": key.redirect_uris[0]}
    conforms(client.get("/login/oauth2/auth", params=auth), "GET", "/login/oauth2/auth")
    unknown = client.get("/login/oauth2/auth", params={**auth, "client_id": "999"})
    assert unknown.status_code == 401
    conforms(unknown, "GET", "/login/oauth2/auth")
    wrong_uri = client.get("/login/oauth2/auth", params={**auth, "redirect_uri": "https://evil.example/"})
    assert wrong_uri.status_code == 400
    conforms(wrong_uri, "GET", "/login/oauth2/auth")
    oob = client.get("/login/oauth2/auth", params={"code": "abc"})
    assert oob.status_code == 200
    conforms(oob, "GET", "/login/oauth2/auth")

    signed_in = log_in(client, lti.user.login, lti.user.password)
    conforms(signed_in, "POST", "/login/canvas")
    conforms(client.get("/login/canvas"), "GET", "/login/canvas")
    conforms(client.get("/"), "GET", "/")
    tools = client.get("/accounts/self/external_tools")
    assert tools.status_code == 200
    conforms(tools, "GET", "/accounts/{account_id}/external_tools")
    launch = client.get(f"/accounts/self/external_tools/{lti.tool_id}")
    assert launch.status_code == 200
    conforms(launch, "GET", "/accounts/{account_id}/external_tools/{tool_id}")
    missing = client.get("/accounts/self/external_tools/999999")
    assert missing.status_code == 404
    conforms(missing, "GET", "/accounts/{account_id}/external_tools/{tool_id}")

    to_consent = client.get("/login/oauth2/auth", params=auth)
    conforms(to_consent, "GET", "/login/oauth2/auth")
    consent = client.get("/login/oauth2/confirm")
    assert consent.status_code == 200
    conforms(consent, "GET", "/login/oauth2/confirm")
    bad_csrf = client.post("/login/oauth2/deny", data={"custom_csrf_token": "wrong"})
    assert bad_csrf.status_code == 400
    conforms(bad_csrf, "POST", "/login/oauth2/deny")
    denied = client.post(
        "/login/oauth2/deny", data={"custom_csrf_token": form_token(consent.text, CSRF_CONSENT)}
    )
    assert denied.status_code == 302
    conforms(denied, "POST", "/login/oauth2/deny")
    client.get("/login/oauth2/auth", params=auth)
    consent = client.get("/login/oauth2/confirm")
    accepted = client.post(
        "/login/oauth2/accept", data={"custom_csrf_token": form_token(consent.text, CSRF_CONSENT)}
    )
    assert accepted.status_code == 302
    conforms(accepted, "POST", "/login/oauth2/accept")
    logout_page = client.get("/")
    conforms(client.post("/logout", data={"authenticity_token": "x"}), "POST", "/logout")
    assert logout_page.status_code == 200


def test_token_endpoint_success_and_errors(client, lti: Lti) -> None:
    tokens = _tokens(client, lti)
    key = lti.key
    refresh = {
        "grant_type": "refresh_token",
        "client_id": key.client_id,
        "client_secret": key.client_secret,
        "refresh_token": tokens["refresh_token"],
    }
    refreshed = client.post("/login/oauth2/token", data=refresh)
    assert refreshed.status_code == 200
    conforms(refreshed, "POST", "/login/oauth2/token")
    for data, status in (
        ({}, 400),
        ({"grant_type": "password"}, 400),
        ({**refresh, "client_id": "123456789"}, 401),
        ({**refresh, "client_secret": "wrong"}, 401),
        ({**refresh, "refresh_token": "unknown"}, 400),
        (
            {
                "grant_type": "authorization_code",
                "client_id": key.client_id,
                "client_secret": key.client_secret,
            },
            400,
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": key.client_id,
                "client_secret": key.client_secret,
            },
            400,
        ),
    ):
        response = client.post("/login/oauth2/token", data=data)
        assert response.status_code == status, (data, response.text)
        conforms(response, "POST", "/login/oauth2/token")
    deep = client.post(
        "/login/oauth2/token", content="[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert deep.status_code == 400
    assert deep.json()["error"] == "invalid_request"
    conforms(deep, "POST", "/login/oauth2/token")
    with_basic = client.post(
        "/login/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers={"Authorization": basic(key.client_id, key.client_secret)},
    )
    assert with_basic.status_code == 200
    conforms(with_basic, "POST", "/login/oauth2/token")


def test_canvas_api_and_revocation(client, lti: Lti) -> None:
    token = _tokens(client, lti)["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    for url, status in (
        ("/api/v1/users/self", 200),
        ("/api/v1/users/self?include[]=uuid", 200),
        (f"/api/v1/users/{lti.user.id}", 200),
        ("/api/v1/users/424242", 404),
    ):
        response = client.get(url, headers=bearer)
        assert response.status_code == status, (url, response.text)
        conforms(response, "GET", "/api/v1/users/{user_id}")
    repeated = client.get("/api/v1/users/self?access_token=a&access_token=b")
    assert repeated.status_code == 400
    conforms(repeated, "GET", "/api/v1/users/{user_id}")
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = client.get("/api/v1/users/self", headers=headers)
        assert response.status_code == 401
        conforms(response, "GET", "/api/v1/users/{user_id}")
    jwt_path = "/api/lti/accounts/{account_id}/jwt_token"
    for query, status in ((f"tool_launch_url={lti.launch_url}", 200), ("tool_id=999", 404), ("", 404)):
        response = client.get(f"/api/lti/accounts/self/jwt_token?{query}", headers=bearer)
        assert response.status_code == status, (query, response.text)
        conforms(response, "GET", jwt_path)
    conforms(client.get("/api/lti/accounts/self/jwt_token"), "GET", jwt_path)

    conforms(client.get("/login/oauth2/jwks"), "GET", "/login/oauth2/jwks")
    conforms(
        client.get("/.well-known/oauth-authorization-server"),
        "GET",
        "/.well-known/oauth-authorization-server",
    )
    for headers, status in (({}, 400), ({"Authorization": "Bearer wrong"}, 401), (bearer, 200)):
        response = client.delete("/login/oauth2/token?expire_sessions=1", headers=headers)
        assert response.status_code == status, response.text
        conforms(response, "DELETE", "/login/oauth2/token")


# ---------------------------------------------------------------------------- Identity and DAP


def test_identity_and_dap(client, settings: Settings) -> None:
    credentials = make_client(settings)
    conforms(client.get("/ids/.well-known/jwks.json"), "GET", "/ids/.well-known/jwks.json")
    token = access_token(client, credentials)
    for headers, data, status in (
        (
            {"Authorization": basic(credentials.client_id, credentials.client_secret)},
            {"grant_type": "client_credentials"},
            200,
        ),
        ({"Authorization": basic(credentials.client_id, "wrong")}, {"grant_type": "client_credentials"}, 401),
        ({"Authorization": "Basic !!!"}, {"grant_type": "client_credentials"}, 400),
        ({}, {"grant_type": "client_credentials"}, 400),
        ({"Authorization": basic(credentials.client_id, credentials.client_secret)}, {}, 400),
    ):
        response = client.post("/ids/auth/login", data=data, headers=headers)
        assert response.status_code == status, response.text
        conforms(response, "POST", "/ids/auth/login")
    bearer = {"Authorization": f"Bearer {token}"}
    tables = "/dap/query/{namespace}/table"
    schema = "/dap/query/{namespace}/table/{table}/schema"
    for url, path, headers, status in (
        ("/dap/query/canvas/table", tables, bearer, 200),
        ("/dap/query/canvas/table", tables, {"x-instauth": token}, 200),
        ("/dap/query/canvas/table", tables, {}, 401),
        ("/dap/query/nope/table", tables, bearer, 404),
        ("/dap/query/canvas/table/users/schema", schema, bearer, 200),
        ("/dap/query/canvas/table/nope/schema", schema, bearer, 404),
        ("/dap/query/nope/table/users/schema", schema, bearer, 404),
        ("/dap/query/canvas/table/users/schema", schema, {"Authorization": "Bearer x.y.z"}, 401),
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == status, (url, response.text)
        conforms(response, "GET", path)


def test_dap_jobs_objects_and_their_errors(client, settings: Settings, monkeypatch) -> None:
    from urllib.parse import urlsplit

    from lmsauth.dap import jobs
    from tests.dap.jobs_helpers import run_query

    token = access_token(client, make_client(settings))
    bearer = {"Authorization": f"Bearer {token}"}
    data = "/dap/query/{namespace}/table/{table}/data"
    url = "/dap/query/canvas/table/users/data"
    snapshot = run_query(client, token, "users", format="jsonl")
    for body, headers, status in (
        ({"format": "csv"}, bearer, None),
        ({"format": "tsv", "mode": "condensed", "since": snapshot["at"]}, bearer, None),
        ({"format": "xml"}, bearer, 400),
        ({"format": "jsonl", "since": "2001-01-01T00:00:00Z"}, bearer, 400),
        ({"format": "jsonl"}, {}, 401),
    ):
        response = client.post(url, json=body, headers=headers)
        assert status is None or response.status_code == status, response.text
        conforms(response, "POST", data)
    conforms(
        client.post("/dap/query/canvas/table/nope/data", json={"format": "jsonl"}, headers=bearer),
        "POST",
        data,
    )
    for job in (snapshot, run_query(client, token, "users", format="jsonl", since=snapshot["at"])):
        conforms(client.get(f"/dap/job/{job['id']}", headers=bearer), "GET", "/dap/job/{job_id}")
    conforms(client.get("/dap/job/nope", headers=bearer), "GET", "/dap/job/{job_id}")
    object_id = snapshot["objects"][0]["id"]
    for body, status in (([{"id": object_id}], 200), ([{"id": "x/y"}], 404), ({"id": object_id}, 400)):
        response = client.post("/dap/object/url", json=body, headers=bearer)
        assert response.status_code == status, response.text
        conforms(response, "POST", "/dap/object/url")
        if status == 200:
            parts = urlsplit(response.json()["urls"][object_id]["url"])
    files = "/dap/files/{job_id}/{name}"
    conforms(client.get(f"{parts.path}?{parts.query}"), "GET", files)
    conforms(client.get(f"{parts.path}?expires=1&signature=x"), "GET", files)

    async def idle(self) -> bool:
        return False

    monkeypatch.setattr(jobs.JobRunner, "run_one", idle)
    waiting = client.post(url, json={"format": "jsonl", "mode": "expanded"}, headers=bearer)
    assert waiting.status_code == 202
    conforms(waiting, "POST", data)


# ---------------------------------------------------------------------------- Commons


def test_commons_launch_terms_and_sessions(client, lti: Lti) -> None:
    base = lti.settings.commons_path
    conforms(client.get(f"{base}/"), "GET", "/commons/")
    conforms(client.get(f"{base}/terms"), "GET", "/commons/terms")
    conforms(client.post(f"{base}/terms", data={"csrf_token": "x"}), "POST", "/commons/terms")
    for body, headers, status in (
        ("", {}, 400),
        ("a=1", FORM, 400),
        (lti.signed(key="unknown-key"), FORM, 401),
    ):
        response = client.post(f"{base}/api/lti", content=body, headers=headers)
        assert response.status_code == status, response.text
        conforms(response, "POST", "/commons/api/lti")
    launched = client.post(f"{base}/api/lti", content=lti.signed(), headers=FORM)
    assert launched.status_code == 303
    conforms(launched, "POST", "/commons/api/lti")
    conforms(client.get(f"{base}/"), "GET", "/commons/")
    terms = client.get(f"{base}/terms")
    assert terms.status_code == 200
    conforms(terms, "GET", "/commons/terms")
    conforms(client.post(f"{base}/terms", data={"csrf_token": "wrong"}), "POST", "/commons/terms")
    client.cookies.clear()
    launch_and_accept(client, lti)
    conforms(client.get(f"{base}/"), "GET", "/commons/")
    conforms(client.get(f"{base}/terms"), "GET", "/commons/terms")
    client.cookies.clear()

    sessions = "/commons/api/sessions"
    for kwargs, status in (
        ({"json": {"jwt_token": lti.jwt()}}, 201),
        ({"json": {}}, 400),
        ({"content": "{", "headers": {"Content-Type": "application/json"}}, 400),
        ({"content": "x", "headers": {"Content-Type": "text/plain"}}, 400),
        ({"content": "[" * 100_000, "headers": {"Content-Type": "application/json"}}, 400),
        ({"json": {"jwt_token": "not-a-jwt"}}, 401),
        ({"json": {"jwt_token": lti.jwt(secret="another-shared-secret-0123456789abcdef")}}, 401),
        ({"json": {"jwt_token": lti.jwt(custom_canvas_user_id="424242")}}, 403),
    ):
        response = client.post(f"{base}/api/sessions", **kwargs)
        assert response.status_code == status, response.text
        conforms(response, "POST", sessions)
    client.cookies.clear()
    created = client.post(
        f"{base}/api/sessions", json={"jwt_token": lti.jwt(resource_link_id="another-link")}
    )
    sid = created.json()["sessionId"]
    client.cookies.clear()
    show = "/commons/api/sessions/{session_id}"
    for url, headers, status in (
        (f"{base}/api/sessions/{sid}", {"X-Session-ID": sid}, 200),
        (f"{base}/api/sessions/{sid}?session-id={sid}", {}, 200),
        (f"{base}/api/sessions/other", {"X-Session-ID": sid}, 403),
        (f"{base}/api/sessions/{sid}", {}, 401),
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == status, response.text
        conforms(response, "GET", show)
    logout = "/commons/api/sessions/logout"
    for headers, status in (({"X-Session-ID": sid}, 204), ({"X-Session-ID": sid}, 401)):
        response = client.get(f"{base}/api/sessions/logout", headers=headers)
        assert response.status_code == status, response.text
        conforms(response, "GET", logout)


# ---------------------------------------------------------------------------- Canvas LTI 1.3


def test_lti_launch_and_deep_linking(client, settings: Settings, directory) -> None:
    tool = Tool(*rsa_key_pair(), base="https://tool.example")
    course_id = make_course(settings)
    teacher = directory.user()
    enroll(settings, course_id, teacher, "TeacherEnrollment")
    platform = lti_key(settings, tool)
    page = f"/courses/{course_id}/external_tools/{platform.tool_id}"
    conforms(client.get(page), "GET", "/courses/{course_id}/external_tools/{tool_id}")
    conforms(client.get(f"/courses/{course_id}/external_tools"), "GET", "/courses/{course_id}/external_tools")
    conforms(client.get("/api/lti/security/jwks"), "GET", "/api/lti/security/jwks")
    log_in(client, teacher.login, teacher.password)
    for path, template in (
        (page, "/courses/{course_id}/external_tools/{tool_id}"),
        (page + "?launch_type=nope", "/courses/{course_id}/external_tools/{tool_id}"),
        (f"/courses/{course_id}/external_tools", "/courses/{course_id}/external_tools"),
        ("/courses/999/external_tools", "/courses/{course_id}/external_tools"),
    ):
        conforms(client.get(path), "GET", template)
    login = form(client.get(page + "?launch_type=link_selection").text, "tool_form").data
    params = auth_request(login, tool.launch_url)
    query = urlencode(params)
    conforms(client.get("/api/lti/authorize_redirect?" + query), "GET", "/api/lti/authorize_redirect")
    conforms(client.post("/api/lti/authorize_redirect", data=params), "POST", "/api/lti/authorize_redirect")
    conforms(client.get("/api/lti/authorize_redirect"), "GET", "/api/lti/authorize_redirect")
    conforms(
        client.get("/api/lti/authorize_redirect?lti_message_hint=x"), "GET", "/api/lti/authorize_redirect"
    )
    granted = client.get("/api/lti/authorize?" + query)
    conforms(granted, "GET", "/api/lti/authorize")
    conforms(client.get("/api/lti/authorize?" + query), "GET", "/api/lti/authorize")  # consumed
    conforms(client.get("/api/lti/authorize?lti_message_hint=x"), "GET", "/api/lti/authorize")
    unknown = client.get("/api/lti/authorize?" + urlencode({**params, "client_id": "999"}))
    assert unknown.status_code == 404
    conforms(unknown, "GET", "/api/lti/authorize")
    token = form(granted.text, "authorization_redirect_form").data["id_token"]
    settings_claim = jwt.decode(token, options={"verify_signature": False})[
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
    ]
    return_path = settings_claim["deep_link_return_url"].removeprefix(settings.public_url)
    template = "/courses/{course_id}/deep_linking_response"
    conforms(client.post(return_path, data={"JWT": "nope"}), "POST", template)
    conforms(client.post(f"/courses/{course_id}/deep_linking_response", data={}), "POST", template)
    now = int(jwt.decode(token, options={"verify_signature": False})["iat"])
    answer = jwt.encode(
        {"iss": platform.client_id, "aud": [platform.issuer], "iat": now, "exp": now + 600, "nonce": "n"},
        tool.private_pem,
        algorithm="RS256",
    )
    accepted = client.post(return_path, data={"JWT": answer})
    assert accepted.status_code == 200
    conforms(accepted, "POST", template)
