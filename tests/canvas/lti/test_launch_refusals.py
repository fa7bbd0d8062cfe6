"""Every refusal of the launch endpoints (spec lti13.md 2.2, 2.3), driven as a tool drives
them: the login initiation from the course page, then the authentication request with the
parameters pylti1p3 sends (``OIDCLogin``, spec 9.1), changed one at a time. The time limits
follow ``core.clock``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
from starlette.testclient import TestClient

from lmsauth.core import clock
from tests.canvas.lti.support import auth_request, enroll, form, lti_key, make_course, set_key
from tests.canvas.lti.tool import Platform, Tool
from tests.conftest import Directory, Person
from tests.flows import log_in

NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}


@dataclass
class Setting:
    client: TestClient
    tool: Tool
    platform: Platform
    course_id: int
    student: Person

    def path(self, query: str = "") -> str:
        base = f"/courses/{self.course_id}/external_tools/{self.platform.tool_id}"
        return f"{base}?{query}" if query else base

    def login(self, query: str = "") -> dict[str, str]:
        """The login initiation fields the course page posts to the tool."""
        page = self.client.get(self.path(query))
        assert page.status_code == 200, page.text
        fields = form(page.text, "tool_form")
        assert fields.action == self.tool.login_url
        return fields.data

    def auth_request(self, login: dict[str, str], **changes: str | None) -> dict[str, str]:
        return auth_request(login, self.tool.launch_url, **changes)

    def authorize(self, params: dict[str, str]) -> Any:
        return self.client.get("/api/lti/authorize?" + urlencode(params))


@pytest.fixture
def setting(
    client: TestClient, directory: Directory, settings: Any, tool_key_pair: tuple[str, str]
) -> Setting:
    tool = Tool(*tool_key_pair, base="https://tool.example")
    course_id = make_course(settings)
    student = directory.user()
    enroll(settings, course_id, student)
    platform = lti_key(settings, tool, redirect_uris=[tool.launch_url, "https://other.example/cb?tool=1"])
    assert log_in(client, student.login, student.password).status_code == 302
    return Setting(client, tool, platform, course_id, student)


def posted(response: Any) -> dict[str, str]:
    """The fields /api/lti/authorize posts to the tool, checking the page's form."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    found = form(response.text, "authorization_redirect_form")
    assert 'id="continue"' in response.text and "/static/auto-submit.js" in response.text
    return found.data


def oidc_error(response: Any) -> tuple[str, str]:
    fields = posted(response)
    assert "id_token" not in fields
    return fields["error"], fields["error_description"]


# ---------------------------------------------------------------------------- authorize_redirect


def test_authorize_redirect_forwards_only_the_oidc_parameters(setting: Setting) -> None:
    login = setting.login()
    params = {**setting.auth_request(login), "extra": "dropped"}
    for method in ("GET", "POST"):
        if method == "GET":
            response = setting.client.get("/api/lti/authorize_redirect?" + urlencode(params))
        else:
            response = setting.client.post("/api/lti/authorize_redirect", data=params)
        assert response.status_code == 302
        target = urlsplit(response.headers["location"])
        assert (target.scheme, target.netloc, target.path) == ("http", "testserver", "/api/lti/authorize")
        forwarded = dict(parse_qsl(target.query))
        assert forwarded == {name: value for name, value in params.items() if name != "extra"}


def test_authorize_redirect_refuses_a_missing_or_bad_hint(setting: Setting) -> None:
    login = setting.login()
    params = setting.auth_request(login, lti_message_hint=None)
    missing = setting.client.get("/api/lti/authorize_redirect?" + urlencode(params))
    assert missing.status_code == 400
    assert missing.json() == {"errors": [{"message": "lti_message_hint is missing"}]}
    forged = jwt.encode(
        {"verifier": "x", "canvas_domain": "evil.example", "exp": clock.timestamp() + 60},
        "a guessed secret, long enough for HS256",
    )
    for hint in ("not-a-jwt", forged, login["lti_message_hint"][:-2]):
        params = setting.auth_request(login, lti_message_hint=hint)
        response = setting.client.get("/api/lti/authorize_redirect?" + urlencode(params))
        assert response.status_code == 400
        assert response.json() == {"status": "bad_request", "message": "Invalid lti_message_hint"}


def test_a_malformed_parameter_is_refused_in_canvas_json_at_both_steps(setting: Setting) -> None:
    """A NUL, an oversized or a repeated value of any parameter the steps read gets Canvas's
    JSON 400 naming it, not the app's plain-text fallback, whichever check would read it."""
    login = setting.login()
    for path in ("/api/lti/authorize_redirect", "/api/lti/authorize"):
        for name, bad, why in (
            ("scope", "openid\x00", "is malformed"),
            ("state", "s" * 5000, "is too long"),
            ("nonce", None, "was given more than once"),
        ):
            pairs = list(setting.auth_request(login).items())
            if bad is None:
                pairs.append((name, "again"))
            else:
                pairs = [(key, bad if key == name else value) for key, value in pairs]
            response = setting.client.get(f"{path}?{urlencode(pairs)}")
            assert response.status_code == 400, (path, name, response.text)
            assert response.headers["content-type"].startswith("application/json"), (path, name)
            assert response.json() == {"errors": [{"message": f"the {name} parameter {why}"}]}


# ---------------------------------------------------------------------------- authorize


def test_a_valid_request_posts_the_id_token_and_state(setting: Setting) -> None:
    login = setting.login()
    fields = posted(setting.authorize(setting.auth_request(login)))
    assert set(fields) == {"id_token", "state", "lti_storage_target"}
    assert fields["state"] == "state-123" and fields["lti_storage_target"] == "post_message_forwarding"
    claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == "nonce-" + login["lti_message_hint"][-12:]
    no_state = setting.login()
    assert "state" not in posted(setting.authorize(setting.auth_request(no_state, state=None)))


def test_missing_parameters_and_a_wrong_scope(setting: Setting) -> None:
    login = setting.login()
    assert oidc_error(setting.authorize(setting.auth_request(login, nonce=None, prompt=None))) == (
        "invalid_request_object",
        "The following parameters are missing: nonce,prompt",
    )
    fields = posted(setting.authorize(setting.auth_request(setting.login(), scope="openid profile")))
    assert (fields["error"], fields["error_description"], fields["state"]) == (
        "invalid_request_object",
        "The 'scope' must be 'openid'",
        "state-123",
    )


def test_login_required_without_a_session_or_for_another_user(setting: Setting, directory: Directory) -> None:
    login = setting.login()
    other = directory.user("other@example.edu", name="Other Person")
    anonymous = TestClient(setting.client.app, base_url="http://testserver", follow_redirects=False)
    expected = ("login_required", "Must have an active user session")
    # The last failing check names the error: a missing nonce is overtaken by the missing session.
    assert oidc_error(
        anonymous.get("/api/lti/authorize?" + urlencode(setting.auth_request(login, nonce=None)))
    ) == (expected)
    assert log_in(anonymous, other.login, other.password).status_code == 302
    assert (
        oidc_error(anonymous.get("/api/lti/authorize?" + urlencode(setting.auth_request(login)))) == expected
    )


def test_the_hint_is_checked_at_authorize_too(setting: Setting) -> None:
    login = setting.login()
    response = setting.authorize(setting.auth_request(login, lti_message_hint="garbage"))
    assert response.status_code == 400
    assert response.json() == {"status": "bad_request", "message": "Invalid lti_message_hint"}
    missing = setting.authorize(setting.auth_request(login, lti_message_hint=None))
    assert missing.status_code == 400
    assert missing.json() == {"status": "bad_request", "message": "Invalid lti_message_hint"}


def test_an_unknown_client_id_is_not_found(setting: Setting) -> None:
    login = setting.login()
    for client_id in ("10000000009999", "abc", "0"):
        response = setting.authorize(setting.auth_request(login, client_id=client_id))
        assert response.status_code == 404
        assert response.json() == NOT_FOUND


def test_a_client_not_authorized_in_the_course(setting: Setting, settings: Any) -> None:
    expected = ("unauthorized_client", "Client not authorized in requested context")
    # Another key, whose tool is installed in another course only.
    elsewhere = make_course(settings, name="Chemistry", code="CHEM")
    other = lti_key(settings, setting.tool, course_id=elsewhere, name="Other Tool")
    login = setting.login()
    assert oidc_error(setting.authorize(setting.auth_request(login, client_id=other.client_id))) == expected
    # The key of the launch, deactivated or turned off after the launch began.
    for change in ({"workflow_state": "inactive"}, {"binding_state": "off"}):
        login = setting.login()
        set_key(settings, setting.platform.client_id, **change)
        assert oidc_error(setting.authorize(setting.auth_request(login))) == expected
        set_key(settings, setting.platform.client_id, workflow_state="active", binding_state="on")


def test_a_launch_of_another_key_installed_in_the_course_is_not_handed_over(
    setting: Setting, settings: Any
) -> None:
    other = lti_key(settings, setting.tool, course_id=setting.course_id, name="Second Tool")
    login = setting.login()
    response = setting.authorize(setting.auth_request(login, client_id=other.client_id))
    assert oidc_error(response) == ("unauthorized_client", "Client not authorized in requested context")


def test_a_launch_is_single_use(setting: Setting) -> None:
    login = setting.login()
    assert "id_token" in posted(setting.authorize(setting.auth_request(login)))
    replay = setting.authorize(setting.auth_request(login, nonce="another-nonce"))
    assert oidc_error(replay) == (
        "launch_no_longer_valid",
        "The launch has either expired or already been consumed",
    )


def test_a_replayed_nonce_is_refused(setting: Setting) -> None:
    first = setting.login()
    assert "id_token" in posted(setting.authorize(setting.auth_request(first, nonce="the-nonce")))
    second = setting.login()
    assert oidc_error(setting.authorize(setting.auth_request(second, nonce="the-nonce"))) == (
        "invalid_request_object",
        "The 'nonce' has already been used",
    )


def test_a_redirect_uri_not_registered(setting: Setting) -> None:
    invalid = {"status": "bad_request", "message": "Invalid redirect_uri"}
    for uri in (
        setting.tool.launch_url + "/",
        "https://TOOL.example/launch",
        setting.tool.launch_url + "x",
        "https://attacker.example/launch",
        "https://other.example/cb?tool=2",
    ):
        response = setting.authorize(setting.auth_request(setting.login(), redirect_uri=uri))
        assert response.status_code == 400, uri
        assert response.json() == invalid
    # Even when an OIDC error is pending, no form goes to an unregistered URI.
    pending = setting.authorize(
        setting.auth_request(setting.login(), scope="email", redirect_uri="https://x.example")
    )
    assert pending.status_code == 400 and pending.json() == invalid
    # A registered URI with a query matches any URI carrying its parameters (Canvas's quirk).
    quirk = "https://elsewhere.example/anything?tool=1&more=2"
    response = setting.authorize(setting.auth_request(setting.login(), redirect_uri=quirk))
    assert form(response.text, "authorization_redirect_form").action == quirk


def test_the_clock_moves_the_launch_expiries(setting: Setting) -> None:
    """The hint and the cached launch live 5 minutes; ``iat``/``exp`` are fixed at step 1."""
    started = clock.timestamp()
    login = setting.login()
    clock.advance(290)  # inside the 5 minutes with 10 s to spare: the clock moves on in real time
    claims = jwt.decode(
        posted(setting.authorize(setting.auth_request(login)))["id_token"],
        options={"verify_signature": False},
    )
    assert started <= claims["iat"] <= started + 10 and claims["exp"] == claims["iat"] + 3600
    late = setting.login()
    clock.advance(301)
    response = setting.authorize(setting.auth_request(late))
    assert response.status_code == 400
    assert response.json() == {"status": "bad_request", "message": "Invalid lti_message_hint"}
    redirect = setting.client.get("/api/lti/authorize_redirect?" + urlencode(setting.auth_request(late)))
    assert redirect.status_code == 400


def test_the_launch_expires_in_the_store_by_the_clock(setting: Setting) -> None:
    """The cached launch outlives no hint: with the hint re-signed past the 5 minutes (as a
    second instance whose clock lags would see it), the launch is gone from the store."""
    from lmsauth.canvas.lti.launch import HINT, read_value, sign_value
    from tests.conftest import TEST_SECRET_KEY

    login = setting.login()
    hint = read_value(TEST_SECRET_KEY, HINT, login["lti_message_hint"])
    assert hint is not None
    clock.advance(301)
    fresh = sign_value(TEST_SECRET_KEY, HINT, {k: v for k, v in hint.items() if k != "exp"}, 300)
    assert oidc_error(setting.authorize(setting.auth_request(login, lti_message_hint=fresh))) == (
        "launch_no_longer_valid",
        "The launch has either expired or already been consumed",
    )


# ---------------------------------------------------------------------------- the course page


def test_who_may_open_a_tool(setting: Setting, directory: Directory, settings: Any) -> None:
    anonymous = TestClient(setting.client.app, base_url="http://testserver", follow_redirects=False)
    for path in (setting.path(), f"/courses/{setting.course_id}/external_tools"):
        assert anonymous.get(path).headers["location"] == "/login/canvas"
        assert setting.client.get(path).status_code == 200
    outsider = directory.user("outsider@example.edu", name="Out Sider")
    admin = directory.user("admin@example.edu", name="Ada Admin", admin=True)
    assert log_in(anonymous, outsider.login, outsider.password).status_code == 302
    assert anonymous.get(setting.path()).status_code == 401
    assert anonymous.get(f"/courses/{setting.course_id}/external_tools").status_code == 401
    as_admin = TestClient(setting.client.app, base_url="http://testserver", follow_redirects=False)
    assert log_in(as_admin, admin.login, admin.password).status_code == 302
    page = as_admin.get(setting.path())
    assert page.status_code == 200
    hint = form(page.text, "tool_form").data["login_hint"]
    assert hint != setting.login()["login_hint"]  # the admin's own, not the student's


def test_what_cannot_be_opened(setting: Setting, settings: Any) -> None:
    elsewhere = make_course(settings, name="Chemistry", code="CHEM")
    other = lti_key(settings, setting.tool, course_id=elsewhere, name="Other Tool")
    for path in (
        f"/courses/{setting.course_id}/external_tools/{other.tool_id}",  # installed in another course
        f"/courses/{setting.course_id}/external_tools/999",
        f"/courses/999/external_tools/{setting.platform.tool_id}",
        setting.path("launch_type=editor_button"),  # a placement the tool does not have
        setting.path("resource_link_id=nope"),
    ):
        assert setting.client.get(path).status_code == 404, path
    set_key(settings, setting.platform.client_id, workflow_state="inactive")
    assert setting.client.get(setting.path()).status_code == 404


def test_the_course_tools_list_links_each_placement(setting: Setting) -> None:
    page = setting.client.get(f"/courses/{setting.course_id}/external_tools")
    assert page.status_code == 200
    base = setting.path()
    assert f'href="{base}"' in page.text
    assert f'href="{base}?launch_type=link_selection"' in page.text
    assert f'href="{base}?launch_type=assignment_selection"' in page.text


def test_the_lti_key_set(setting: Setting) -> None:
    response = setting.client.get("/api/lti/security/jwks")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "max-age=864000"
    keys = response.json()["keys"]
    assert len(keys) >= 2 and all(set(key) == {"kty", "e", "n", "kid", "alg", "use"} for key in keys)
    assert all((key["alg"], key["use"], key["kty"]) == ("RS256", "sig", "RSA") for key in keys)
    token = posted(setting.authorize(setting.auth_request(setting.login())))["id_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    assert kid in [key["kid"] for key in keys[:-1]]  # the present key, not the future one
    public = jwt.PyJWK(next(key for key in keys if key["kid"] == kid)).key
    claims = jwt.decode(token, public, algorithms=["RS256"], audience=setting.platform.client_id)
    assert json.dumps(claims)  # verified with the published key
