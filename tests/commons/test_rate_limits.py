"""Commons' session API under its per-session quota (spec C1 documents 2500 requests an hour
per user; ``LMSAUTH_RATE_LIMIT_SESSION_*``): 429 with ``Retry-After`` in Commons' error format,
in the composed server and in Commons running alone."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from lmsauth.commons.app import create_commons_app
from lmsauth.settings import Settings
from tests.commons.support import Lti, launch_and_accept
from tests.contract.conftest import conforms

LIMIT = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limit_session_requests": LIMIT})


def _session(client: Any, lti: Lti, *, launch: bool = True) -> str:
    """A new API session; the user's first launch (and the terms) first unless done already."""
    if launch:
        launch_and_accept(client, lti)
    token = lti.jwt(jti=uuid.uuid4().hex)  # a fresh JWT each time: Commons refuses a replayed one
    created = client.post(f"{lti.settings.commons_path}/api/sessions", json={"jwt_token": token})
    assert created.status_code == 201, created.text
    client.cookies.clear()
    sid: str = created.json()["sessionId"]
    return sid


def _show(client: Any, lti: Lti, sid: str) -> httpx.Response:
    response: httpx.Response = client.get(
        f"{lti.settings.commons_path}/api/sessions/{sid}", headers={"X-Session-ID": sid}
    )
    return response


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/json"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    assert response.json() == {
        "error": {
            "type": "rate_limited",
            "message": f"This session made more than {LIMIT} requests in its window; "
            f"retry after {retry_after} seconds.",
        }
    }


def test_a_session_past_its_quota_gets_429(client: TestClient, lti: Lti) -> None:
    sid = _session(client, lti)
    for _ in range(LIMIT):
        assert _show(client, lti, sid).status_code == 200
    refused = _show(client, lti, sid)
    _assert_limited(refused)
    conforms(refused, "GET", "/commons/api/sessions/{session_id}")
    # Logging out is a session request too: refused, so the session lives on.
    logout = client.get(f"{lti.settings.commons_path}/api/sessions/logout", headers={"X-Session-ID": sid})
    _assert_limited(logout)
    conforms(logout, "GET", "/commons/api/sessions/logout")


def test_each_session_has_its_own_quota(client: TestClient, lti: Lti) -> None:
    first = _session(client, lti)
    for _ in range(LIMIT + 1):
        _show(client, lti, first)
    second = _session(client, lti, launch=False)
    assert _show(client, lti, second).status_code == 200


def test_unknown_sessions_are_refused_not_counted(client: TestClient, lti: Lti) -> None:
    for _ in range(LIMIT + 2):
        assert _show(client, lti, "not-a-session").status_code == 401


@pytest.mark.parametrize("rate_limits", [True, False])
def test_commons_alone_limits_sessions_too(settings: Settings, lti: Lti, rate_limits: bool) -> None:
    app = create_commons_app(settings.model_copy(update={"rate_limits": rate_limits}))
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as alone:
        sid = _session(alone, lti)
        answers = [_show(alone, lti, sid).status_code for _ in range(LIMIT + 1)]
    assert answers == [200] * LIMIT + ([429] if rate_limits else [200])
