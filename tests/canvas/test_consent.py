"""The consent page and its answers (spec 4.1 to 4.4): /login/oauth2/confirm, accept, deny."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from lmsauth.canvas.models import AccessToken, AuthorizationCode, local_id
from tests.canvas.support import AUTH, auth_params, count, exchange, sign_in
from tests.conftest import Directory
from tests.flows import CSRF_CONSENT, authorize, form_token, query_of

CALLBACK = "https://app.example.com/callback"


def open_consent(client, directory: Directory, **params: str):
    """Signed in, with a pending request: returns (key, confirm page)."""
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    response = client.get(AUTH, params=auth_params(key, **params))
    assert response.headers["location"] == "/login/oauth2/confirm"
    page = client.get("/login/oauth2/confirm")
    assert page.status_code == 200
    return key, page


def test_confirm_page_names_the_app_the_user_and_the_scopes(client, directory: Directory) -> None:
    key = directory.key(name="Grade Helper", icon_url="https://cdn.example.com/icon.png")
    user = directory.user(name="Sam Q Student")
    sign_in(client, user)
    client.get(AUTH, params=auth_params(key, scope="url:GET|/api/v1/courses url:GET|/api/v1/users/:id"))
    page = client.get("/login/oauth2/confirm")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Grade Helper is requesting access to your account." in page.text
    assert "You are authorizing this app as" in page.text
    assert "Sam Q Student" in page.text
    assert "<code>url:GET|/api/v1/courses</code>" in page.text
    assert "<code>url:GET|/api/v1/users/:id</code>" in page.text
    assert 'src="https://cdn.example.com/icon.png"' in page.text
    assert re.search(r'name="custom_csrf_token" value="[^"]{20,}"', page.text)
    assert 'action="/login/oauth2/accept"' in page.text
    assert 'action="/login/oauth2/deny"' in page.text


def test_confirm_page_escapes_the_app_name(client, directory: Directory) -> None:
    key = directory.key(name="<b>Evil</b>")
    sign_in(client, directory.user())
    client.get(AUTH, params=auth_params(key))
    page = client.get("/login/oauth2/confirm")
    assert "<b>Evil</b>" not in page.text
    assert "&lt;b&gt;Evil&lt;/b&gt;" in page.text


def test_confirm_without_pending_request_goes_to_login(client, directory: Directory) -> None:
    sign_in(client, directory.user())
    response = client.get("/login/oauth2/confirm")
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login")


def test_accept_issues_a_code_with_state(client, directory: Directory) -> None:
    key, page = open_consent(client, directory, state="st")
    response = client.post(
        "/login/oauth2/accept", data={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )
    assert response.status_code == 302
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=[0-9a-f]{128}&state=st", response.headers["location"])
    assert exchange(client, key, query_of(response.headers["location"])["code"]).status_code == 200


def test_accept_without_pending_request(client, directory: Directory) -> None:
    sign_in(client, directory.user())
    response = client.post("/login/oauth2/accept", data={"custom_csrf_token": "x"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Invalid or missing session for oauth"


def test_accept_without_any_session(client) -> None:
    response = client.post("/login/oauth2/accept", data={"custom_csrf_token": "x"})
    assert response.status_code == 400
    assert response.text == "Invalid or missing session for oauth"


def test_accept_before_the_confirm_page_is_missing_the_csrf_token(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    client.get(AUTH, params=auth_params(key))
    response = client.post("/login/oauth2/accept", data={"custom_csrf_token": "anything"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Missing custom CSRF token"


@pytest.mark.parametrize("action", ["accept", "deny"])
def test_wrong_custom_csrf_token_is_refused(client, directory: Directory, action: str) -> None:
    _, page = open_consent(client, directory)
    right = form_token(page.text, CSRF_CONSENT)
    for data in [
        {},
        {"custom_csrf_token": ""},
        {"custom_csrf_token": "wrong"},
        {"custom_csrf_token": right[:-1]},
    ]:
        response = client.post(f"/login/oauth2/{action}", data=data)
        assert response.status_code == 400, data
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == "Invalid custom CSRF token"
    # The request is still pending: the right token still works.
    retry = client.post(
        "/login/oauth2/accept", data={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )
    assert "code" in query_of(retry.headers["location"])


def test_custom_csrf_token_is_fresh_hex_for_every_consent_page(client, directory: Directory) -> None:
    _, first = open_consent(client, directory)
    first_token = form_token(first.text, CSRF_CONSENT)
    assert re.fullmatch(r"[0-9a-f]{48}", first_token)
    second = client.get("/login/oauth2/confirm")
    second_token = form_token(second.text, CSRF_CONSENT)
    assert re.fullmatch(r"[0-9a-f]{48}", second_token)
    assert second_token != first_token
    # Only the newest page's token answers it.
    stale = client.post("/login/oauth2/accept", data={"custom_csrf_token": first_token})
    assert stale.text == "Invalid custom CSRF token"
    # Nor does the session's other CSRF token (the one in the log-out form) stand in for it.
    logout_token = form_token(client.get("/").text)
    assert client.post("/login/oauth2/accept", data={"custom_csrf_token": logout_token}).status_code == 400
    assert "code" in query_of(
        client.post("/login/oauth2/accept", data={"custom_csrf_token": second_token}).headers["location"]
    )


def test_custom_csrf_token_in_the_query_string_does_not_count(client, directory: Directory) -> None:
    _, page = open_consent(client, directory)
    token = form_token(page.text, CSRF_CONSENT)
    response = client.post(f"/login/oauth2/accept?custom_csrf_token={token}")
    assert response.status_code == 400
    assert response.text == "Invalid custom CSRF token"


def test_accept_is_single_use(client, directory: Directory) -> None:
    _, page = open_consent(client, directory)
    data = {"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    assert client.post("/login/oauth2/accept", data=data).status_code == 302
    again = client.post("/login/oauth2/accept", data=data)
    assert again.status_code == 400
    assert again.text == "Invalid or missing session for oauth"


def test_deny_redirects_with_access_denied_and_state_only(client, directory: Directory) -> None:
    _, page = open_consent(client, directory, state="st")
    response = client.post(
        "/login/oauth2/deny", data={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )
    assert response.status_code == 302
    assert response.headers["location"] == CALLBACK + "?error=access_denied&state=st"
    # The pending request is gone.
    again = client.post(
        "/login/oauth2/accept", data={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )
    assert again.text == "Invalid or missing session for oauth"


def test_deny_without_state(client, directory: Directory) -> None:
    _, page = open_consent(client, directory)
    response = client.post(
        "/login/oauth2/deny", data={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )
    assert response.headers["location"] == CALLBACK + "?error=access_denied"


def test_deny_by_get_is_405(client, directory: Directory) -> None:
    _, page = open_consent(client, directory)
    response = client.get(
        "/login/oauth2/deny", params={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "This endpoint requires a POST request"
    # Nothing was answered.
    retry = client.post(
        "/login/oauth2/accept", data={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )
    assert "code" in query_of(retry.headers["location"])


def test_deny_without_pending_request(client, directory: Directory) -> None:
    sign_in(client, directory.user())
    response = client.post("/login/oauth2/deny", data={"custom_csrf_token": "x"})
    assert response.status_code == 400
    assert response.text == "Invalid or missing session for oauth"


def test_trusted_key_skips_consent(client, directory: Directory) -> None:
    key, user = directory.key(trusted=True), directory.user()
    response = authorize(client, key.client_id, CALLBACK, user.login, user.password, state="s")
    # Straight from the login form to the client: no consent page in between.
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=[0-9a-f]{128}&state=s", response.headers["location"])


def test_untrusted_key_asks_every_time(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    code = query_of(
        authorize(client, key.client_id, CALLBACK, user.login, user.password).headers["location"]
    )["code"]
    assert exchange(client, key, code).status_code == 200
    assert client.get(AUTH, params=auth_params(key)).headers["location"] == "/login/oauth2/confirm"


@pytest.mark.parametrize(
    ("scope", "checkbox"),
    [
        ("/auth/userinfo", True),
        ("url:GET|/api/v1/courses", False),
        ("/auth/userinfo url:GET|/api/v1/courses", False),
        (None, False),
    ],
)
def test_remember_checkbox_only_for_userinfo(
    client, directory: Directory, scope: str | None, checkbox: bool
) -> None:
    params = {"scope": scope} if scope else {}
    _, page = open_consent(client, directory, **params)
    assert ('name="remember_access"' in page.text) is checkbox
    if checkbox:
        assert "Remember my authorization for this service" in page.text


def userinfo_round(client, key, remember: bool) -> str:
    """One userinfo authorization from a signed-in browser; returns where it ended."""
    response = client.get(AUTH, params=auth_params(key, scope="/auth/userinfo"))
    if response.headers["location"] != "/login/oauth2/confirm":
        return response.headers["location"]
    page = client.get("/login/oauth2/confirm")
    data = {"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    if remember:
        data["remember_access"] = "1"
    answer = client.post("/login/oauth2/accept", data=data)
    code = query_of(answer.headers["location"])["code"]
    token = exchange(client, key, code)
    assert token.status_code == 200, token.text
    return "/login/oauth2/confirm"


def test_remembered_userinfo_grant_is_approved_without_asking(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    assert userinfo_round(client, key, remember=True) == "/login/oauth2/confirm"
    location = userinfo_round(client, key, remember=False)
    assert re.fullmatch(re.escape(CALLBACK) + r"\?code=[0-9a-f]{128}", location)
    assert exchange(client, key, query_of(location)["code"]).status_code == 200
    # prompt=none works too now.
    silent = client.get(AUTH, params=auth_params(key, scope="/auth/userinfo", prompt="none"))
    assert "code" in query_of(silent.headers["location"])


def test_userinfo_grant_not_remembered_asks_again(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    userinfo_round(client, key, remember=False)
    assert client.get(AUTH, params=auth_params(key, scope="/auth/userinfo")).headers["location"] == (
        "/login/oauth2/confirm"
    )


def test_remembered_userinfo_grant_does_not_cover_other_scopes(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    userinfo_round(client, key, remember=True)
    assert client.get(AUTH, params=auth_params(key)).headers["location"] == "/login/oauth2/confirm"
    assert client.get(AUTH, params=auth_params(key, scope="url:GET|/api/v1/courses")).headers["location"] == (
        "/login/oauth2/confirm"
    )


def test_remembered_userinfo_grant_is_per_user(client, directory: Directory) -> None:
    from starlette.testclient import TestClient

    key = directory.key()
    sign_in(client, directory.user())
    userinfo_round(client, key, remember=True)
    other = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    sign_in(other, directory.user(login="other@example.edu", name="Other Person"))
    assert other.get(AUTH, params=auth_params(key, scope="/auth/userinfo")).headers["location"] == (
        "/login/oauth2/confirm"
    )


def test_consent_for_a_key_deactivated_meanwhile(client, directory: Directory) -> None:
    key, page = open_consent(client, directory)
    directory.set_key_state(key.client_id, "inactive")
    response = client.post(
        "/login/oauth2/accept", data={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )
    assert response.status_code == 400
    assert response.text == "Invalid or missing session for oauth"


def test_a_remembered_userinfo_grant_reuses_its_token(client, directory: Directory) -> None:
    """Spec 5.3 step 5: Canvas answers a remembered userinfo grant with the token it has
    (``find_reusable_access_token``); tokens do not pile up under Approved Integrations."""
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    userinfo_round(client, key, remember=True)
    for _ in range(2):
        location = userinfo_round(client, key, remember=False)
        body = exchange(client, key, query_of(location)["code"]).json()
        assert body["access_token"] is None and "refresh_token" not in body
    assert len(directory.query(select(AccessToken.id).where(AccessToken.workflow_state == "active"))) == 1
    # Not remembered: every exchange is a token of its own, as in Canvas.
    other, second = directory.key(name="Other"), directory.user(login="other@example.edu")
    client.cookies.clear()
    sign_in(client, second)
    userinfo_round(client, other, remember=False)
    userinfo_round(client, other, remember=False)
    rows = directory.query(
        select(AccessToken.id).where(AccessToken.developer_key_id == local_id(int(other.client_id)))
    )
    assert len(rows) == 2


# ---------------------------------------------------------------- the consent page answers what it showed


def accept_with(client, page):
    return client.post(
        "/login/oauth2/accept", data={"custom_csrf_token": form_token(page.text, CSRF_CONSENT)}
    )


@pytest.mark.parametrize("how", ["force_login", "plain"])
def test_a_new_request_voids_the_consent_page_already_shown(client, directory: Directory, how: str) -> None:
    """The consent swap: a second /auth for another client replaces the pending request; the
    click on the page the person already sees must not authorize the other client."""
    _, shown = open_consent(client, directory, state="mine")
    other = directory.key(name="Other App", redirect_uris=["https://evil.example.net/cb"])
    extra = {"force_login": "1"} if how == "force_login" else {}
    swapped = client.get(AUTH, params=auth_params(other, state="theirs", **extra))
    assert swapped.status_code == 302
    for action in ("accept", "deny"):
        response = client.post(
            f"/login/oauth2/{action}", data={"custom_csrf_token": form_token(shown.text, CSRF_CONSENT)}
        )
        assert response.status_code == 400, action
        # force_login: the new request waits for the sign-in (in the login cookie), and the
        # signed-in session keeps none; otherwise the new request is pending, without a token.
        expected = (
            "Invalid or missing session for oauth" if how == "force_login" else "Missing custom CSRF token"
        )
        assert response.text == expected
    assert count_codes(directory) == 0


def test_the_old_page_cannot_answer_the_new_page(client, directory: Directory) -> None:
    _, shown = open_consent(client, directory, state="mine")
    other = directory.key(name="Other App", redirect_uris=["https://evil.example.net/cb"])
    assert (
        client.get(AUTH, params=auth_params(other, state="theirs")).headers["location"]
        == "/login/oauth2/confirm"
    )
    new_page = client.get("/login/oauth2/confirm")
    assert "Other App" in new_page.text
    stale = accept_with(client, shown)
    assert stale.status_code == 400
    assert stale.text == "Invalid custom CSRF token"
    assert count_codes(directory) == 0
    answered = accept_with(client, new_page)
    assert answered.headers["location"].startswith("https://evil.example.net/cb?code=")
    assert query_of(answered.headers["location"])["state"] == "theirs"


def test_a_new_request_of_the_same_client_voids_the_page_too(client, directory: Directory) -> None:
    """Same client, another state: the state the page was shown for is the one answered."""
    key, shown = open_consent(client, directory, state="first")
    client.get(AUTH, params=auth_params(key, state="second"))
    assert accept_with(client, shown).text == "Missing custom CSRF token"
    page = client.get("/login/oauth2/confirm")
    answered = accept_with(client, page)
    assert query_of(answered.headers["location"])["state"] == "second"


def count_codes(directory: Directory) -> int:
    return count(directory, AuthorizationCode)
