"""No open redirect anywhere: every ``Location`` lmsauth sends points at this server (a path,
never a scheme-relative ``//host``) or at a redirect URI the developer key registered, whatever
the request carries in the parameters that redirectors elsewhere honour."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import Key, Person
from tests.flows import code_for, form_token, log_in

EVIL = "https://evil.example/steal"
# The names other services follow after a login or a logout, each set to an outside address.
EVIL_PARAMS = {
    name: value
    for name in ("return_to", "next", "redirect", "redirect_to", "url", "continue", "target")
    for value in (EVIL,)
}
EVIL_PATHS = ("//evil.example/", "/\\evil.example/", "/%2F%2Fevil.example/")


def _safe(location: str, key: Key) -> bool:
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location.startswith("/") and not location.startswith(("//", "/\\"))
    return any(location.startswith(uri) for uri in key.redirect_uris)


def _check(response: httpx.Response, key: Key, status: int) -> None:
    """The answer is ``status``; a redirect names a safe ``Location``, anything else none."""
    location = response.headers.get("location")
    assert response.status_code == status, (response.request.url, response.status_code, location)
    if 300 <= status < 400:
        assert location is not None and _safe(location, key), (response.request.url, location)
    else:
        assert location is None, (response.request.url, location)


@pytest.fixture
def signed_in(client: TestClient, user: Person) -> TestClient:
    assert log_in(client, user.login, user.password).status_code == 302
    return client


def test_pages_and_login_never_send_a_browser_off_site(client: TestClient, key: Key, user: Person) -> None:
    for path, status in (
        ("/", 200),
        ("/login", 302),
        ("/login/canvas", 200),
        ("/login/oauth2/confirm", 302),
        ("/accounts/1/external_tools", 302),
    ):
        _check(client.get(path, params=EVIL_PARAMS), key, status)
    page = client.get("/login/canvas")
    answer = client.post(
        "/login/canvas",
        params=EVIL_PARAMS,
        data={
            "authenticity_token": form_token(page.text),
            "pseudonym_session[unique_id]": user.login,
            "pseudonym_session[password]": user.password,
            **EVIL_PARAMS,
        },
    )
    _check(answer, key, 302)
    assert answer.headers["location"] == "/"
    for path, status in (("/", 200), ("/login", 302), ("/accounts/1/external_tools", 200)):
        _check(client.get(path, params=EVIL_PARAMS), key, status)
    _check(client.post("/logout", data=EVIL_PARAMS), key, 302)


@pytest.mark.parametrize("path", EVIL_PATHS)
def test_paths_that_look_like_other_hosts_stay_here(client: TestClient, key: Key, path: str) -> None:
    # An absolute URL, so that the client sends the path as it is ("//host/" alone would be
    # read as another host).
    for sent in (path, path + "login"):
        response = client.get("http://testserver" + sent)
        assert response.request.url.raw_path.decode().startswith(path), response.request.url
        _check(response, key, 404)


def test_the_oauth_flow_redirects_only_to_the_registered_uri(
    signed_in: TestClient, key: Key, user: Person
) -> None:
    """Extra parameters on every step of the flow do not change where it ends."""
    params = {
        "client_id": key.client_id,
        "response_type": "code",
        "redirect_uri": key.redirect_uris[0],
        **EVIL_PARAMS,
    }
    _check(signed_in.get("/login/oauth2/auth", params=params), key, 302)
    for evil_uri in (EVIL, "//evil.example/cb", key.redirect_uris[0].replace("app.", "app.evil.")):
        refused = signed_in.get("/login/oauth2/auth", params={**params, "redirect_uri": evil_uri})
        assert refused.status_code == 400 and "location" not in refused.headers
    _check(signed_in.get("/login/oauth2/deny", params=EVIL_PARAMS), key, 405)
    code = code_for(signed_in, key.client_id, key.redirect_uris[0], user.login, user.password, **EVIL_PARAMS)
    assert code
