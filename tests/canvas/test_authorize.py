"""GET /login/oauth2/auth: every row of spec table 3.5, in the order of spec 3.2."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from lmsauth.canvas.models import BrowserSession
from tests.canvas.support import (
    AUTH,
    OAUTH_CHALLENGE,
    OOB,
    auth_params,
    count,
    exchange,
    expected_query,
    login_state,
    sign_in,
)
from tests.conftest import Directory
from tests.flows import CSRF_CONSENT, form_token, query_of

CALLBACK = "https://app.example.com/callback"
INVALID_SCOPE_PREFIX = (
    "A requested scope is invalid, unknown, malformed, or exceeds the scope granted by the "
    "resource owner. The following scopes were requested, but not granted: "
)


# ---------------------------------------------------------------- row 1: invalid_client


UNKNOWN_CLIENT_IDS = [
    "999999",  # no such key
    "abc",  # not an integer
    "12abc",
    "",
    "1.5",
    " 1",
    str(2**63),  # 64 bits
    str(2**64 + 1),  # over 64 bits
    "-1",
]


def test_unknown_client_is_401_json_without_redirect(client, directory: Directory) -> None:
    key = directory.key()
    for client_id in [*UNKNOWN_CLIENT_IDS, key.client_id + "0", key.client_id + "x"]:
        response = client.get(
            AUTH, params={"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK}
        )
        assert response.status_code == 401, client_id
        assert response.headers["WWW-Authenticate"] == OAUTH_CHALLENGE
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": "invalid_client", "error_description": "unknown client"}
        assert "location" not in response.headers


def test_missing_client_id_is_unknown_client(client) -> None:
    response = client.get(AUTH, params={"response_type": "code", "redirect_uri": CALLBACK})
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": "unknown client"}


@pytest.mark.parametrize("state", ["inactive", "deleted"])
def test_deactivated_or_deleted_key_is_unknown_client(client, directory: Directory, state: str) -> None:
    key = directory.key()
    assert client.get(AUTH, params=auth_params(key)).status_code == 302
    directory.set_key_state(key.client_id, state)
    response = client.get(AUTH, params=auth_params(key))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == OAUTH_CHALLENGE
    assert response.json() == {"error": "invalid_client", "error_description": "unknown client"}


def test_global_id_and_local_id_name_the_same_key(client, directory: Directory) -> None:
    key = directory.key()
    local = str(int(key.client_id) - 10_000_000_000_000)
    response = client.get(AUTH, params={**auth_params(key), "client_id": local})
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login/canvas")


# ---------------------------------------------------------------- row 2: redirect_uri


def test_missing_or_mismatched_redirect_uri_is_400_json(client, directory: Directory) -> None:
    key = directory.key()
    for redirect_uri in [
        None,
        "",
        "https://elsewhere.example.net/callback",
        "http://app.example.com/callback",
    ]:
        params = {"client_id": key.client_id, "response_type": "code", "state": "s"}
        if redirect_uri is not None:
            params["redirect_uri"] = redirect_uri
        response = client.get(AUTH, params=params)
        assert response.status_code == 400, redirect_uri
        assert "WWW-Authenticate" not in response.headers
        assert response.json() == {
            "error": "invalid_request",
            "error_description": "redirect_uri does not match client settings",
        }
        assert "location" not in response.headers


def test_client_is_checked_before_redirect_uri(client) -> None:
    response = client.get(AUTH, params={"client_id": "424242", "response_type": "code"})
    assert response.status_code == 401


# ---------------------------------------------------------------- row 3: invalid_scope


def test_invalid_scope_redirect_is_exact(client, directory: Directory) -> None:
    key = directory.key(require_scopes=True, scopes=["url:GET|/api/v1/users/:id"])
    requested = "url:GET|/api/v1/users/:id url:GET|/api/v1/courses url:POST|/api/v1/courses"
    response = client.get(AUTH, params=auth_params(key, scope=requested, state="xyz"))
    assert response.status_code == 302
    # Written out by hand: sorted keys, spaces as "+", everything else CGI-escaped.
    assert response.headers["location"] == (
        "https://app.example.com/callback?error=invalid_scope&error_description=A+requested+scope+is+"
        "invalid%2C+unknown%2C+malformed%2C+or+exceeds+the+scope+granted+by+the+resource+owner.+"
        "The+following+scopes+were+requested%2C+but+not+granted%3A+"
        "url%3AGET%7C%2Fapi%2Fv1%2Fcourses+and+url%3APOST%7C%2Fapi%2Fv1%2Fcourses&state=xyz"
    )


def test_invalid_scope_lists_the_missing_scopes_as_an_english_sentence(client, directory: Directory) -> None:
    key = directory.key(require_scopes=True, scopes=["url:GET|/api/v1/users/:id"])
    allowed = "url:GET|/api/v1/users/:id"
    for requested, listed in [
        ("url:GET|/api/v1/a", "url:GET|/api/v1/a"),
        (f"url:GET|/api/v1/a {allowed} url:GET|/api/v1/b", "url:GET|/api/v1/a and url:GET|/api/v1/b"),
        (
            "url:GET|/api/v1/a url:GET|/api/v1/b url:GET|/api/v1/c",
            "url:GET|/api/v1/a, url:GET|/api/v1/b, and url:GET|/api/v1/c",
        ),
    ]:
        response = client.get(AUTH, params=auth_params(key, scope=requested, state="s"))
        assert response.status_code == 302
        assert response.headers["location"] == CALLBACK + "?" + expected_query(
            error="invalid_scope", error_description=INVALID_SCOPE_PREFIX + listed, state="s"
        )


def test_scoped_key_refuses_a_request_without_scopes(client, directory: Directory) -> None:
    key = directory.key(require_scopes=True, scopes=["url:GET|/api/v1/users/:id"])
    response = client.get(AUTH, params=auth_params(key, state="s"))
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_scope"
    assert query["state"] == "s"


def test_scoped_key_accepts_allowed_scopes(client, directory: Directory) -> None:
    key = directory.key(require_scopes=True, scopes=["url:GET|/api/v1/users/:id", "url:GET|/api/v1/courses"])
    response = client.get(AUTH, params=auth_params(key, scope="url:GET|/api/v1/users/:id"))
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login/canvas")


def test_scopes_parameter_is_used_when_scope_is_absent(client, directory: Directory) -> None:
    key = directory.key(require_scopes=True, scopes=["url:GET|/api/v1/users/:id"])
    good = client.get(AUTH, params=auth_params(key, scopes="url:GET|/api/v1/users/:id"))
    assert good.headers["location"].startswith("/login/canvas")
    # ``scope`` wins over ``scopes`` when both are sent.
    both = client.get(
        AUTH, params=auth_params(key, scope="url:GET|/api/v1/courses", scopes="url:GET|/api/v1/users/:id")
    )
    assert query_of(both.headers["location"])["error"] == "invalid_scope"


def test_unscoped_key_does_not_check_scopes(client, directory: Directory) -> None:
    key = directory.key()
    response = client.get(AUTH, params=auth_params(key, scope="anything at all"))
    assert response.headers["location"].startswith("/login/canvas")


# ---------------------------------------------------------------- rows 4, 5


@pytest.mark.parametrize("binding", ["off", "allow"])
def test_key_not_bound_on_is_unauthorized_client(client, directory: Directory, binding: str) -> None:
    key = directory.key(binding=binding)
    response = client.get(AUTH, params=auth_params(key, state="st"))
    assert response.status_code == 302
    assert response.headers["location"] == CALLBACK + "?" + expected_query(
        error="unauthorized_client",
        error_description="Client does not have access to the specified Canvas account.",
        state="st",
    )


def test_response_type_other_than_code(client, directory: Directory) -> None:
    key = directory.key()
    for response_type in [None, "", "token", "CODE", "code token", "code id_token"]:
        params = auth_params(key, state="st")
        del params["response_type"]
        if response_type is not None:
            params["response_type"] = response_type
        response = client.get(AUTH, params=params)
        assert response.status_code == 302, response_type
        assert response.headers["location"] == CALLBACK + "?" + expected_query(
            error="unsupported_response_type",
            error_description="Only response_type=code is permitted",
            state="st",
        )


def test_scope_is_checked_before_binding_and_response_type(client, directory: Directory) -> None:
    key = directory.key(require_scopes=True, scopes=["url:GET|/api/v1/users/:id"], binding="off")
    response = client.get(AUTH, params=auth_params(key, response_type="token", scope="nope"))
    assert query_of(response.headers["location"])["error"] == "invalid_scope"
    key2 = directory.key(binding="off")
    response = client.get(AUTH, params=auth_params(key2, response_type="token"))
    assert query_of(response.headers["location"])["error"] == "unauthorized_client"


# ---------------------------------------------------------------- rows 6 to 9: prompt


def test_prompt_none_without_session_is_login_required(client, directory: Directory) -> None:
    key = directory.key()
    response = client.get(AUTH, params=auth_params(key, prompt="none", state="st"))
    assert response.status_code == 302
    assert response.headers["location"] == CALLBACK + "?" + expected_query(
        error="login_required", error_description="prompt=none but there is no current session", state="st"
    )
    # An error redirect keeps no state: no anonymous session row was left behind.
    assert count(directory, BrowserSession) == 0
    assert "set-cookie" not in response.headers


def test_prompt_none_signed_in_but_consent_needed_is_interaction_required(
    client, directory: Directory
) -> None:
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    response = client.get(AUTH, params=auth_params(key, prompt="none", state="st"))
    assert response.status_code == 302
    assert response.headers["location"] == CALLBACK + "?" + expected_query(
        error="interaction_required",
        error_description="prompt=none but a token cannot be granted without user interaction",
        state="st",
    )


def test_prompt_none_out_of_band_is_never_auto_approved(client, directory: Directory) -> None:
    key, user = directory.key(trusted=True), directory.user()
    sign_in(client, user)
    response = client.get(AUTH, params={**auth_params(key, prompt="none", state="st"), "redirect_uri": OOB})
    assert response.headers["location"] == AUTH + "?" + expected_query(
        error="interaction_required",
        error_description="prompt=none but a token cannot be granted without user interaction",
        state="st",
    )


def test_other_prompt_values_are_unsupported(client, directory: Directory) -> None:
    key = directory.key()
    for prompt in ["consent", "select_account", "", "NONE", "none login"]:
        response = client.get(AUTH, params=auth_params(key, prompt=prompt, state="st"))
        assert response.status_code == 302, prompt
        assert response.headers["location"] == CALLBACK + "?" + expected_query(
            error="unsupported_prompt_type",
            error_description='prompt must be "none" (or omitted)',
            state="st",
        )
        assert "%22none%22+%28or+omitted%29" in response.headers["location"]


def test_prompt_is_handled_after_response_type(client, directory: Directory) -> None:
    key = directory.key()
    response = client.get(AUTH, params=auth_params(key, prompt="bogus", response_type="token"))
    assert query_of(response.headers["location"])["error"] == "unsupported_response_type"


def test_prompt_none_trusted_key_issues_a_code(client, directory: Directory) -> None:
    key, user = directory.key(trusted=True), directory.user()
    sign_in(client, user)
    response = client.get(AUTH, params=auth_params(key, prompt="none", state="st"))
    assert response.status_code == 302
    location = response.headers["location"]
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=[0-9a-f]{128}&state=st", location)
    assert exchange(client, key, query_of(location)["code"]).status_code == 200


# ---------------------------------------------------------------- rows 9 to 11


def test_not_signed_in_redirects_to_login(client, directory: Directory) -> None:
    key = directory.key()
    response = client.get(AUTH, params=auth_params(key))
    assert response.status_code == 302
    assert response.headers["location"] == "/login/canvas"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("canvas_login=")  # sealed state, no database row


def test_login_redirect_carries_force_login_and_unique_id(client, directory: Directory) -> None:
    key = directory.key()
    response = client.get(AUTH, params=auth_params(key, force_login="1", unique_id="sam@example.edu"))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("/login/canvas?")
    assert query_of(location) == {"force_login": "1", "pseudonym_session[unique_id]": "sam@example.edu"}
    page = client.get(location)
    assert page.status_code == 200
    assert 'value="sam@example.edu"' in page.text


def test_signed_in_user_is_sent_to_consent(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    response = client.get(AUTH, params=auth_params(key))
    assert response.status_code == 302
    assert response.headers["location"] == "/login/oauth2/confirm"


def test_force_login_sends_a_signed_in_user_to_the_login_form(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    for params in [{"force_login": "1"}, {"prompt": "login"}, {"force_login": "true"}]:
        response = client.get(AUTH, params=auth_params(key, **params))
        assert response.status_code == 302
        assert response.headers["location"] == "/login/canvas?force_login=1", params
    for params in [{"force_login": "0"}, {"force_login": "false"}, {"force_login": ""}]:
        response = client.get(AUTH, params=auth_params(key, **params))
        assert response.headers["location"] == "/login/oauth2/confirm", params


def test_trusted_key_signed_in_gets_a_code_at_once(client, directory: Directory) -> None:
    key, user = directory.key(trusted=True), directory.user()
    sign_in(client, user)
    response = client.get(AUTH, params=auth_params(key, state="abc"))
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=[0-9a-f]{128}&state=abc", response.headers["location"])


# ---------------------------------------------------------------- state


@pytest.mark.parametrize(("state", "suffix"), [("", "&state="), ("a b&c=d", "&state=a+b%26c%3Dd")])
def test_state_is_echoed_even_when_empty(client, directory: Directory, state: str, suffix: str) -> None:
    key, user = directory.key(trusted=True), directory.user()
    sign_in(client, user)
    success = client.get(AUTH, params=auth_params(key, state=state))
    assert success.headers["location"].endswith(suffix)
    assert re.fullmatch(
        re.escape(CALLBACK) + r"\?code=[0-9a-f]{128}" + re.escape(suffix), success.headers["location"]
    )
    failure = client.get(AUTH, params=auth_params(key, state=state, response_type="token"))
    assert failure.headers["location"].endswith(suffix)


def test_no_state_parameter_means_no_state_in_redirects(client, directory: Directory) -> None:
    key, user = directory.key(trusted=True), directory.user()
    sign_in(client, user)
    success = client.get(AUTH, params=auth_params(key))
    assert "state" not in query_of(success.headers["location"])
    failure = client.get(AUTH, params=auth_params(key, response_type="token"))
    assert "state" not in query_of(failure.headers["location"])


def test_state_is_echoed_after_login_and_consent(client, directory: Directory) -> None:
    from tests.flows import authorize

    key, user = directory.key(), directory.user()
    response = authorize(client, key.client_id, CALLBACK, user.login, user.password, state="round trip")
    location = response.headers["location"]
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=[0-9a-f]{128}&state=round\+trip", location)


def test_redirect_uri_with_a_query_gets_an_ampersand(client, directory: Directory) -> None:
    key = directory.key(redirect_uris=["https://app.example.com/cb?tenant=7"])
    response = client.get(AUTH, params=auth_params(key, response_type="token", state="s"))
    assert response.headers["location"] == "https://app.example.com/cb?tenant=7&" + expected_query(
        error="unsupported_response_type", error_description="Only response_type=code is permitted", state="s"
    )


# ---------------------------------------------------------------- 3.6 out-of-band


def test_out_of_band_always_asks_for_consent_and_shows_the_code(client, directory: Directory) -> None:
    key, user = directory.key(trusted=True), directory.user()
    sign_in(client, user)
    response = client.get(AUTH, params={**auth_params(key, state="s"), "redirect_uri": OOB})
    assert response.status_code == 302
    assert response.headers["location"] == "/login/oauth2/confirm"
    page = client.get("/login/oauth2/confirm")
    assert page.status_code == 200
    accepted = client.post(
        "/login/oauth2/accept", data={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )
    assert accepted.status_code == 302
    location = accepted.headers["location"]
    match = re.fullmatch(r"/login/oauth2/auth\?code=([0-9a-f]{128})&state=s", location)
    assert match, location
    landing = client.get(location)
    assert landing.status_code == 200
    assert landing.headers["content-type"].startswith("text/html")
    assert "The application has finished the login workflow, and should reactivate shortly." in landing.text
    assert match.group(1) in landing.text
    token = exchange(client, key, match.group(1), redirect_uri=OOB)
    assert token.status_code == 200, token.text


def test_out_of_band_deny_lands_on_the_auth_page(client, directory: Directory) -> None:
    from tests.flows import authorize

    key, user = directory.key(), directory.user()
    response = authorize(client, key.client_id, OOB, user.login, user.password, consent=False, state="s")
    assert response.headers["location"] == "/login/oauth2/auth?error=access_denied&state=s"
    landing = client.get(response.headers["location"])
    assert landing.status_code == 200
    assert "should reactivate shortly" in landing.text
    assert "access_denied" in landing.text


def test_code_or_error_renders_the_landing_page_and_nothing_else(client) -> None:
    for params in [{"code": "abc123"}, {"error": "access_denied"}, {"code": "x", "client_id": "nope"}]:
        response = client.get(AUTH, params=params)
        assert response.status_code == 200, params
        assert response.headers["content-type"].startswith("text/html")
        assert (
            "The application has finished the login workflow, and should reactivate shortly." in response.text
        )
        if "code" in params:
            assert params["code"] in response.text


def test_landing_page_escapes_what_it_shows(client) -> None:
    response = client.get(AUTH, params={"code": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_pending_request_is_kept_in_the_login_cookie(client, directory: Directory) -> None:
    key = directory.key()
    client.get(AUTH, params=auth_params(key, state="s", purpose="My Phone", scope="a b"))
    assert directory.query(select(BrowserSession.data)) == []
    state = login_state(client)
    assert state is not None and state.oauth2 is not None
    pending = state.oauth2
    assert pending["redirect_uri"] == CALLBACK
    assert pending["scopes"] == ["a", "b"]
    assert pending["state"] == "s"
    assert pending["purpose"] == "My Phone"


def test_repeated_parameter_is_refused(client, directory: Directory) -> None:
    key = directory.key()
    response = client.get(
        AUTH
        + f"?client_id={key.client_id}&response_type=code&redirect_uri={CALLBACK}&redirect_uri=https://evil.example"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "location" not in response.headers
