"""Canvas's login form: failures that say nothing about which part was wrong, CSRF, a new
session id at every sign-in, cookie attributes, and force_login."""

from __future__ import annotations

import re

from sqlalchemy import select
from starlette.testclient import TestClient

from lmsauth.canvas.models import BrowserSession
from lmsauth.canvas.sessions import COOKIE, LOGIN_COOKIE
from tests.canvas.support import AUTH, auth_params, count, sign_in, signed_in
from tests.conftest import Directory
from tests.flows import form_token, log_in

LOGIN_FAILED = "Please verify your username or password and try again."


def submit(client, login: str, password: str, token: str | None) -> object:
    data = {"pseudonym_session[unique_id]": login, "pseudonym_session[password]": password}
    if token is not None:
        data["authenticity_token"] = token
    return client.post("/login/canvas", data=data)


def test_unknown_login_and_wrong_password_give_the_same_page(client, directory: Directory) -> None:
    token = form_token(client.get("/login/canvas").text)
    unknown = submit(client, "sam@example.edu", "correct horse battery", token)
    directory.user(login="sam@example.edu", password="correct horse battery")
    wrong = submit(client, "sam@example.edu", "incorrect horse", token)
    assert unknown.status_code == wrong.status_code == 400
    assert LOGIN_FAILED in unknown.text
    assert unknown.text == wrong.text
    assert not signed_in(client)
    right = submit(client, "sam@example.edu", "correct horse battery", token)
    assert right.status_code == 302


def test_failed_login_keeps_what_was_typed_escaped(client, directory: Directory) -> None:
    token = form_token(client.get("/login/canvas").text)
    page = submit(client, '"><script>x</script>', "pw", token)
    assert page.status_code == 400
    assert "<script>x</script>" not in page.text
    assert "&#34;&gt;&lt;script&gt;" in page.text or "&quot;&gt;&lt;script&gt;" in page.text


def test_login_name_is_case_insensitive(client, directory: Directory) -> None:
    user = directory.user(login="Sam@Example.edu")
    response = log_in(client, "sAM@example.EDU", user.password)
    assert response.status_code == 302
    assert signed_in(client)


def test_login_without_the_right_csrf_token_is_refused(client, directory: Directory) -> None:
    user = directory.user()
    right = form_token(client.get("/login/canvas").text)
    for token in [None, "", "forged-token", right[:-1]]:
        response = submit(client, user.login, user.password, token)
        assert response.status_code == 422, token
        assert "set-cookie" not in response.headers
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 0
    assert not signed_in(client)


def test_login_without_any_session_is_refused(client, directory: Directory) -> None:
    user = directory.user()
    response = submit(client, user.login, user.password, "made-up")
    assert response.status_code == 422
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 0


def test_csrf_token_of_another_browser_is_refused(client, directory: Directory) -> None:
    user = directory.user()
    other = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
    their_token = form_token(other.get("/login/canvas").text)
    client.get("/login/canvas")
    assert submit(client, user.login, user.password, their_token).status_code == 422
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 0


def test_session_id_changes_at_login(client, directory: Directory) -> None:
    user = directory.user()
    client.get("/login/canvas")
    pre_login = client.cookies[LOGIN_COOKIE]
    assert COOKIE not in client.cookies
    response = log_in(client, user.login, user.password)
    assert response.status_code == 302
    after = client.cookies[COOKIE]
    assert after != pre_login
    assert LOGIN_COOKIE not in client.cookies  # the pre-login state is cleared at sign-in
    # Whoever planted (or saw) the pre-login state is not signed in with it.
    for planted_cookies in ({LOGIN_COOKIE: pre_login}, {COOKIE: pre_login}):
        planted = TestClient(
            client.app, base_url="http://testserver", follow_redirects=False, cookies=planted_cookies
        )
        assert not signed_in(planted), planted_cookies
        assert planted.get("/login/oauth2/confirm").headers["location"] == "/login/canvas"
    carried = TestClient(
        client.app, base_url="http://testserver", follow_redirects=False, cookies={COOKIE: after}
    )
    assert signed_in(carried)
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 1


def test_pending_oauth_request_survives_the_new_session_id(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    client.get(AUTH, params=auth_params(key, state="s"))
    response = log_in(client, user.login, user.password)
    assert response.status_code == 302
    assert response.headers["location"] == "/login/oauth2/confirm"
    assert client.get("/login/oauth2/confirm").status_code == 200


def test_login_without_pending_request_goes_home(client, directory: Directory) -> None:
    user = directory.user()
    response = log_in(client, user.login, user.password)
    assert response.headers["location"] == "/"
    assert "Signed in as Sam Student" in client.get("/").text


def cookie_header(response, name: str = COOKIE) -> str:
    headers = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(name + "=")]
    assert len(headers) == 1, headers
    return headers[0]


def test_cookie_attributes_over_http(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    for response, name in (
        (client.get(AUTH, params=auth_params(key)), LOGIN_COOKIE),
        (log_in(client, user.login, user.password), COOKIE),
    ):
        header = cookie_header(response, name)
        attributes = {part.strip().lower() for part in header.split(";")[1:]}
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert "path=/" in attributes
        assert "secure" not in attributes


def test_cookie_is_secure_when_the_public_url_is_https(app_client, directory: Directory) -> None:
    browser = app_client(base_url="https://testserver", public_url="https://testserver")
    key, user = directory.key(), directory.user()
    for response, name in (
        (browser.get(AUTH, params=auth_params(key)), LOGIN_COOKIE),
        (log_in(browser, user.login, user.password), COOKIE),
    ):
        attributes = {part.strip().lower() for part in cookie_header(response, name).split(";")[1:]}
        assert {"secure", "httponly", "samesite=lax"} <= attributes
    assert signed_in(browser)


def test_session_token_is_random_and_stored_only_as_a_digest(client, directory: Directory) -> None:
    user = directory.user()
    sign_in(client, user)
    token = client.cookies[COOKIE]
    assert len(token) >= 32
    digests = [row[0] for row in directory.query(select(BrowserSession.token_digest))]
    assert token not in digests
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)


def test_signed_in_user_visiting_the_form_is_sent_home(client, directory: Directory) -> None:
    sign_in(client, directory.user())
    response = client.get("/login/canvas")
    assert response.status_code == 302
    assert response.headers["location"] == "/"


def test_force_login_shows_the_form_even_when_signed_in(client, directory: Directory) -> None:
    user = directory.user()
    sign_in(client, user)
    page = client.get("/login/canvas", params={"force_login": "1"})
    assert page.status_code == 200
    assert 'id="login_form"' in page.text
    assert 'name="force_login"' in page.text
    # Signing in again (as someone else, say) replaces the session.
    before = client.cookies[COOKIE]
    other = directory.user(login="other@example.edu", name="Other Person")
    answer = submit(client, other.login, other.password, form_token(page.text))
    assert answer.status_code == 302
    assert client.cookies[COOKIE] != before
    assert "Signed in as Other Person" in client.get("/").text


def test_force_login_then_consent(client, directory: Directory) -> None:
    key, user = directory.key(), directory.user()
    sign_in(client, user)
    response = client.get(AUTH, params=auth_params(key, force_login="1"))
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    answer = client.post(
        "/login/canvas",
        data={
            "authenticity_token": form_token(page.text),
            "pseudonym_session[unique_id]": user.login,
            "pseudonym_session[password]": user.password,
            "force_login": "1",
        },
    )
    assert answer.headers["location"] == "/login/oauth2/confirm"


def test_login_form_does_not_approve_for_a_key_deactivated_meanwhile(client, directory: Directory) -> None:
    key, user = directory.key(trusted=True), directory.user()
    sign_in(client, user)
    # A pending request for a trusted key, left at the login form by force_login.
    client.get(AUTH, params=auth_params(key, force_login="1"))
    directory.set_key_state(key.client_id, "inactive")
    response = client.get("/login/canvas")
    assert response.status_code == 302
    assert not response.headers["location"].startswith(key.redirect_uris[0])


def test_logout_ends_the_session(client, directory: Directory) -> None:
    user = directory.user()
    sign_in(client, user)
    home = client.get("/")
    token = form_token(home.text)
    response = client.post("/logout", data={"authenticity_token": token})
    assert response.status_code == 302
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 0
    assert not signed_in(client)


def test_logout_without_csrf_token_does_nothing(client, directory: Directory) -> None:
    user = directory.user()
    sign_in(client, user)
    session_cookie = client.cookies[COOKIE]
    client.post("/logout", data={})
    assert count(directory, BrowserSession, BrowserSession.user_id == user.id) == 1
    again = TestClient(
        client.app, base_url="http://testserver", follow_redirects=False, cookies={COOKIE: session_cookie}
    )
    assert signed_in(again)


def test_login_redirect_keeps_the_query(client) -> None:
    response = client.get("/login", params={"force_login": "1"})
    assert response.status_code == 302
    assert response.headers["location"] == "/login/canvas?force_login=1"
