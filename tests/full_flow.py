"""Every flow of every service through one client, remembering each secret it handled and
each request id the server announced: for the tests that read the server's logs and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.canvas.support import exchange, refresh
from tests.commons.support import SHARED_SECRET, Lti, launch_and_accept
from tests.flows import code_for
from tests.identity.helpers import Credentials, basic, login

WRONG_SECRET = "wrong-secret-that-must-not-be-logged-0123456789"


@dataclass
class Seen:
    """What the client handled: every credential, and every response's ``X-Request-Id``."""

    secrets: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    def keep(self, response: httpx.Response) -> None:
        self.request_ids.append(response.headers["x-request-id"])


def every_flow(browser: Any, lti: Lti, identity: Credentials) -> Seen:
    """Canvas (log in, consent, code, token, refresh, API with header and query token, a refused
    code sent in the query string, jwt_token, revoke), Commons (launch, terms, session by JWT,
    read by header and by query, logout), the Identity Service (a login, a refused one) and DAP.
    ``browser`` is an httpx client (or Starlette's TestClient) that does not follow redirects."""
    seen = Seen(secrets=[lti.user.password, lti.key.client_secret, SHARED_SECRET, identity.client_secret])
    browser.event_hooks = {"request": [], "response": [seen.keep]}
    key, redirect = lti.key, lti.key.redirect_uris[0]
    commons = lti.settings.commons_path

    code = code_for(browser, key.client_id, redirect, lti.user.login, lti.user.password, state="state-xyz")
    refused_code = "f" * 128
    refused = browser.post(
        "/login/oauth2/token?"
        + urlencode(
            {
                "grant_type": "authorization_code",
                "client_id": key.client_id,
                "client_secret": key.client_secret,
                "code": refused_code,
                "redirect_uri": redirect,
            }
        )
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    issued = exchange(browser, key, code, redirect_uri=redirect)
    assert issued.status_code == 200, issued.text
    access, refresh_token = issued.json()["access_token"], issued.json()["refresh_token"]
    refreshed = refresh(browser, key, refresh_token)
    assert refreshed.status_code == 200, refreshed.text
    token = refreshed.json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert browser.get("/api/v1/users/self", headers=bearer).status_code == 200
    assert browser.get("/api/v1/users/self", params={"access_token": token}).status_code == 200
    assert browser.get("/api/v1/users/self", headers={"Authorization": f"Bearer {access}"}).status_code == 401
    answered = browser.get(
        "/api/lti/accounts/self/jwt_token", params={"tool_launch_url": lti.launch_url}, headers=bearer
    )
    assert answered.status_code == 200, answered.text
    canvas_jwt = answered.json()["jwt_token"]

    launch_and_accept(browser, lti)
    created = browser.post(f"{commons}/api/sessions", json={"jwt_token": canvas_jwt})
    assert created.status_code == 201, created.text
    sid = created.json()["sessionId"]
    cookies = [cookie.value for cookie in browser.cookies.jar]
    assert browser.get(f"{commons}/api/sessions/{sid}", headers={"X-Session-ID": sid}).status_code == 200
    assert browser.get(f"{commons}/api/sessions/{sid}", params={"session-id": sid}).status_code == 200
    assert browser.get(f"{commons}/api/sessions/logout", headers={"X-Session-ID": sid}).status_code == 204

    ids = login(browser, identity)
    assert ids.status_code == 200, ids.text
    ids_jwt = ids.json()["access_token"]
    tables = browser.get("/dap/query/canvas/table", headers={"Authorization": f"Bearer {ids_jwt}"})
    assert tables.status_code == 200, tables.text
    wrong = browser.post(
        "/ids/auth/login",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(identity.client_id, WRONG_SECRET)},
    )
    assert wrong.status_code == 401, wrong.text

    assert browser.delete("/login/oauth2/token", headers=bearer).status_code == 200
    browser.event_hooks = {"request": [], "response": []}
    seen.secrets += [code, refused_code, access, refresh_token, token, canvas_jwt, sid, ids_jwt, WRONG_SECRET]
    seen.secrets += [value for value in cookies if len(value) >= 16]
    return seen
