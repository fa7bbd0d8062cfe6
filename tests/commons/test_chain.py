"""The whole chain over real HTTP, as README "Commons sessions" runs it against a server:
launch from Canvas, accept the terms, get a Canvas token, ask Canvas for a JWT, trade it at
Commons for a session, use the session from each of the five places, log out."""

from __future__ import annotations

import httpx

from tests.commons.support import SESSION_FIELDS, Lti, accept_terms, form_fields
from tests.conftest import LiveServer
from tests.flows import log_in


def test_launch_terms_token_jwt_session_and_logout(live_server: LiveServer, live_lti: Lti) -> None:
    lti = live_lti
    base = live_server.url
    # A person signs in to Canvas and launches Commons from the tool's page; the browser posts
    # the form Canvas signed with oauthlib to Commons, then accepts the terms.
    with httpx.Client(base_url=base, follow_redirects=False) as browser:
        assert log_in(browser, lti.user.login, lti.user.password).status_code == 302
        page = browser.get(f"/accounts/self/external_tools/{lti.tool_id}")
        assert page.status_code == 200
        launched = browser.post(lti.launch_url, data=dict(form_fields(page.text)))
        assert launched.status_code == 303, launched.text
        accept_terms(browser, lti)
        # Later, a script holds an access token from the authorization-code flow ...
        token = lti.access_token(browser)

    with httpx.Client(base_url=base, follow_redirects=False) as script:
        # ... asks Canvas for a JWT for the Commons tool ...
        got = script.get(
            "/api/lti/accounts/self/jwt_token",
            params={"tool_launch_url": lti.launch_url},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert got.status_code == 200, got.text
        # ... and trades it at Commons for a session id.
        created = script.post("/commons/api/sessions", json={"jwt_token": got.json()["jwt_token"]})
        assert created.status_code == 201, created.text
        session = created.json()
        sid = session["sessionId"]
        assert set(session) == SESSION_FIELDS | {"sessionId"}
        assert session["canvasUserId"] == str(lti.user.id)
        assert session["canvasApiDomain"] == base.split("://", 1)[1]
        assert "HttpOnly" in created.headers["set-cookie"]

    path = f"/commons/api/sessions/{sid}"
    places = [
        {"headers": {"X-Session-ID": sid}},
        {"params": {"session-id": sid}},
        {"params": {"state": sid}},
        {"json": {"sessionId": sid}},
        {"cookies": {"session": sid}},
    ]
    for place in places:
        cookies = place.pop("cookies", None)
        with httpx.Client(base_url=base, cookies=cookies) as caller:
            read = caller.request("GET", path, **place)
            assert read.status_code == 200, (place, read.text)
            assert read.json() == {k: v for k, v in session.items() if k != "sessionId"}

    with httpx.Client(base_url=base) as script:
        out = script.get("/commons/api/sessions/logout", headers={"X-Session-ID": sid})
        assert out.status_code == 204
        after = script.get(path, headers={"X-Session-ID": sid})
        assert after.status_code == 401
        assert after.json()["error"]["type"] == "invalid_session"
