"""The control API in-process: clock, faults in each service's format, traffic, state."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import select

from lmsauth.canvas.models import User
from lmsauth.core import clock
from lmsauth.settings import Settings
from tests.emulator.conftest import emulator_client
from tests.flows import code_for, log_in
from tests.identity.helpers import access_token, make_client

DEMO_ID = "10000000000001"
DEMO_SECRET = "demo-client-secret-0123456789abcdef"
DEMO_REDIRECT = "http://localhost:5000/callback"
STUDENT = ("student@example.edu", "student-password")


def fault(emulator, **spec) -> dict:
    response = emulator.post("/_emulator/faults", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def tokens_for(emulator) -> dict:
    code = code_for(emulator, DEMO_ID, DEMO_REDIRECT, *STUDENT)
    response = emulator.post(
        "/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": DEMO_ID,
            "client_secret": DEMO_SECRET,
            "code": code,
            "redirect_uri": DEMO_REDIRECT,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------------- clock


def test_clock_advance_set_and_back_to_real_time(emulator) -> None:
    start = emulator.get("/_emulator/clock").json()
    assert start["real_time"] is True and abs(start["timestamp"] - time.time()) < 5
    moved = emulator.post("/_emulator/clock", json={"advance": 3601}).json()
    assert moved["offset_seconds"] == 3601 and not moved["real_time"]
    assert abs(moved["timestamp"] - (time.time() + 3601)) < 5
    jumped = emulator.post("/_emulator/clock", json={"set": "2030-01-02T03:04:05Z"}).json()
    assert jumped["now"].startswith("2030-01-02T03:04:0")
    assert clock.now().year == 2030  # the one clock every expiry reads
    back = emulator.delete("/_emulator/clock").json()
    assert back["real_time"] and abs(back["timestamp"] - time.time()) < 5


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"advance": "soon"},
        {"advance": True},
        {"set": "yesterday"},
        {"advance": 1, "set": "2030-01-01T00:00:00Z"},
    ],
)
def test_clock_refuses_what_it_cannot_read(emulator, body) -> None:
    response = emulator.post("/_emulator/clock", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "bad_request"
    assert emulator.get("/_emulator/clock").json()["real_time"]


def test_control_writes_need_json(emulator) -> None:
    form = emulator.post("/_emulator/clock", data={"advance": "10"})
    assert form.status_code == 415


def test_identity_jwts_are_written_in_emulator_time(emulator, settings) -> None:
    credentials = make_client(settings, principal="inst-1")
    moment = (datetime.now(UTC) + timedelta(days=100)).replace(microsecond=0)  # the client lives a year
    emulator.post("/_emulator/clock", json={"set": moment.isoformat()})
    claims = jwt.decode(access_token(emulator, credentials), options={"verify_signature": False})
    issued = moment.timestamp()
    assert issued <= claims["iat"] < issued + 5
    assert claims["exp"] == claims["iat"] + 3599
    token = access_token(emulator, credentials)
    ok = emulator.get("/dap/query/canvas/table", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    emulator.post("/_emulator/clock", json={"advance": 3600})
    expired = emulator.get("/dap/query/canvas/table", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "Access token has expired."


def test_codes_expire_with_the_clock(emulator) -> None:
    code = code_for(emulator, DEMO_ID, DEMO_REDIRECT, *STUDENT)
    emulator.post("/_emulator/clock", json={"advance": 601})
    response = emulator.post(
        "/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": DEMO_ID,
            "client_secret": DEMO_SECRET,
            "code": code,
            "redirect_uri": DEMO_REDIRECT,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_the_commons_iat_window_follows_the_clock(emulator) -> None:
    def canvas_jwt() -> str:
        claims = {
            "consumer_key": "demo-commons-consumer-key",
            "custom_canvas_user_id": "1",
            "custom_canvas_api_domain": "testserver",
            "iat": clock.timestamp(),
        }
        return jwt.encode(claims, "demo-commons-shared-secret-0123456789", algorithm="HS256")

    old = canvas_jwt()
    emulator.post("/_emulator/clock", json={"advance": 301})
    refused = emulator.post("/commons/api/sessions", json={"jwt_token": old})
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "jwt_expired"
    # Issued at emulator time, five minutes ahead of the wall clock: inside the window.
    fresh = emulator.post("/commons/api/sessions", json={"jwt_token": canvas_jwt()})
    assert fresh.status_code == 403 and fresh.json()["error"]["type"] == "never_launched"


# ---------------------------------------------------------------------------- faults


def test_dap_and_identity_faults_wear_the_dap_envelope(emulator) -> None:
    fault(emulator, path="/dap/query/*/table", method="GET", status=429, retry_after=1)
    response = emulator.get("/dap/query/canvas/table")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert set(error) == {"type", "uuid", "message"}
    assert "injected by the lmsauth emulator" in error["message"]
    fault(emulator, path="/ids/auth/login", status=503)
    login = emulator.post("/ids/auth/login")
    assert login.status_code == 503
    assert set(login.json()["error"]) == {"type", "uuid", "message"}


def test_canvas_faults_answer_as_canvas_does(emulator) -> None:
    fault(emulator, path="/api/v1/*", status=403, count=1)
    throttled = emulator.get("/api/v1/users/self")
    assert throttled.status_code == 403
    assert throttled.text == "403 Forbidden (Rate Limit Exceeded)\n"
    assert throttled.headers["x-rate-limit-remaining"] == "0.0"
    fault(emulator, path="/api/v1/*", status=503, count=1)
    assert emulator.get("/api/v1/users/self").json() == {
        "errors": [{"message": "Service Unavailable (injected by the lmsauth emulator, fault 2)."}]
    }
    fault(emulator, path="/login/oauth2/token", method="POST", status=503, message="Down for a moment.")
    oauth = emulator.post("/login/oauth2/token", data={"grant_type": "refresh_token"})
    assert oauth.status_code == 503
    assert oauth.json() == {"error": "temporarily_unavailable", "error_description": "Down for a moment."}


def test_commons_faults_wear_the_commons_envelope(emulator) -> None:
    fault(emulator, path="/commons/api/*", status=429, retry_after=7)
    response = emulator.get("/commons/api/sessions/logout")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.json()["error"]["type"] == "rate_limited"


def test_a_faulted_request_changes_nothing(emulator) -> None:
    """The code survives a faulted exchange and still works once the fault is spent."""
    code = code_for(emulator, DEMO_ID, DEMO_REDIRECT, *STUDENT)
    fault(emulator, path="/login/oauth2/token", method="POST", status=503, count=1)
    exchange = {
        "grant_type": "authorization_code",
        "client_id": DEMO_ID,
        "client_secret": DEMO_SECRET,
        "code": code,
        "redirect_uri": DEMO_REDIRECT,
    }
    assert emulator.post("/login/oauth2/token", data=exchange).status_code == 503
    assert emulator.get("/_emulator/tokens").json()["access_tokens"] == []
    assert emulator.post("/login/oauth2/token", data=exchange).status_code == 200


def test_faults_end_after_their_count_or_duration(emulator) -> None:
    counted = fault(emulator, path="/login/canvas", method="GET", status=503, count=2)
    timed = fault(emulator, path="/api/*", status=503, duration=60)
    other_method = emulator.post("/login/canvas", data={})
    assert other_method.status_code == 422  # the login form's own answer: no CSRF token
    assert "The form expired" in other_method.text
    assert [emulator.get("/login/canvas").status_code for _ in range(3)] == [503, 503, 200]
    assert emulator.get("/api/v1/users/self").status_code == 503
    listed = emulator.get("/_emulator/faults").json()["faults"]
    assert [f["id"] for f in listed] == [timed["id"]] and counted["id"] not in [f["id"] for f in listed]
    emulator.post("/_emulator/clock", json={"advance": 61})  # durations run on emulator time
    assert emulator.get("/api/v1/users/self").status_code == 401
    assert emulator.get("/_emulator/faults").json()["faults"] == []


def test_a_delay_fault_delays_and_then_answers_normally(emulator) -> None:
    fault(emulator, path="/login/oauth2/jwks", delay=0.3, count=1)
    started = time.monotonic()
    assert emulator.get("/login/oauth2/jwks").status_code == 200
    assert time.monotonic() - started >= 0.3
    entry = emulator.get("/_emulator/requests?limit=1").json()["requests"][0]
    assert entry["latency_ms"] >= 300 and entry["status"] == 200 and entry["fault"] == 1


def test_faults_are_listed_removed_and_cleared(emulator) -> None:
    first = fault(emulator, path="/a", status=500)
    fault(emulator, path="/b", status=500)
    assert emulator.delete(f"/_emulator/faults/{first['id']}").status_code == 204
    assert emulator.delete(f"/_emulator/faults/{first['id']}").status_code == 404
    assert [f["path"] for f in emulator.get("/_emulator/faults").json()["faults"]] == ["/b"]
    assert emulator.delete("/_emulator/faults").status_code == 204
    assert emulator.get("/_emulator/faults").json()["faults"] == []


@pytest.mark.parametrize(
    "spec",
    [
        {"path": "api", "status": 500},
        {"path": "/api"},
        {"path": "/api", "status": 200},
        {"path": "/api", "status": 500, "count": 0},
        {"path": "/api", "status": 500, "method": "BREW"},
        {"path": "/api", "delay": 1000},
        {"path": "/api", "status": 500, "colour": "red"},
    ],
)
def test_faults_that_cannot_work_are_refused(emulator, spec) -> None:
    response = emulator.post("/_emulator/faults", json=spec)
    assert response.status_code == 400, spec
    assert emulator.get("/_emulator/faults").json()["faults"] == []


def test_faults_never_touch_the_control_api(emulator) -> None:
    fault(emulator, path="/*", status=503)
    assert emulator.get("/_emulator/clock").status_code == 200
    assert emulator.get("/login/canvas").status_code == 503


# ---------------------------------------------------------------------------- traffic


def test_the_traffic_log_masks_every_secret(emulator) -> None:
    token = tokens_for(emulator)
    emulator.get("/api/v1/users/self", headers={"Authorization": f"Bearer {token['access_token']}"})
    emulator.get(f"/api/v1/users/self?access_token={token['access_token']}")
    emulator.post(
        "/login/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": DEMO_ID,
            "client_secret": DEMO_SECRET,
            "refresh_token": token["refresh_token"],
        },
    )
    emulator.get("/commons/api/sessions/" + "s" * 43, headers={"X-Session-ID": "s" * 43})
    emulator.get("/login/oauth2/auth?client_id=1&code_verifier=verifier-secret-value&code=abc123")
    log = emulator.get("/_emulator/requests?limit=100").json()["requests"]
    text = json.dumps(log)
    cookies = [c for c in emulator.cookies.values()]
    for secret in (token["access_token"], token["refresh_token"], DEMO_SECRET, "student-password", *cookies):
        assert secret not in text
    assert "verifier-secret-value" not in text and "abc123" not in text and "s" * 43 not in text
    api = [e for e in log if e["path"] == "/api/v1/users/self"]
    assert api and all(e["client_id"] == DEMO_ID and e["user"] == "student@example.edu" for e in api)
    assert any(e["query"] == "access_token=***" for e in api)
    refresh = log[2]
    assert refresh["path"] == "/login/oauth2/token" and refresh["client_id"] == DEMO_ID
    assert set(log[0]) == {
        "id",
        "time",
        "method",
        "path",
        "query",
        "status",
        "latency_ms",
        "client_id",
        "user",
        "fault",
        "remote",
    }


def test_requests_are_newest_first_limited_and_cleared(emulator) -> None:
    for n in range(3):
        emulator.get(f"/login/canvas?n={n}")
    last = emulator.get("/_emulator/requests?limit=2").json()["requests"]
    assert [e["query"] for e in last] == ["n=2", "n=1"]
    assert all(e["status"] == 200 and e["remote"] == "127.0.0.1" for e in last)
    assert emulator.get("/_emulator/requests?limit=0").status_code == 400
    assert emulator.delete("/_emulator/requests").status_code == 204
    assert emulator.get("/_emulator/requests").json()["requests"] == []


# ---------------------------------------------------------------------------- state


def test_tokens_lists_owners_and_expiries_never_secrets(emulator) -> None:
    token = tokens_for(emulator)
    listed = emulator.get("/_emulator/tokens").json()
    text = json.dumps(listed)
    assert token["access_token"] not in text and token["refresh_token"] not in text
    assert "digest" not in text
    [row] = listed["access_tokens"]
    assert row["user"] == "student@example.edu" and row["client_id"] == DEMO_ID
    assert row["access_token_expired"] is False
    assert listed["browser_sessions"][0]["signed_in"] is True
    emulator.post("/_emulator/clock", json={"advance": 3601})
    assert emulator.get("/_emulator/tokens").json()["access_tokens"][0]["access_token_expired"] is True


def test_seed_at_run_time_and_reset_to_the_seeded_state(emulator, directory) -> None:
    seed = """
[[users]]
login = "late@example.edu"
password = "late-password"
name = "Lee Late"
"""
    loaded = emulator.post("/_emulator/seed", content=seed, headers={"Content-Type": "application/toml"})
    assert loaded.status_code == 200, loaded.text
    assert [u["login"] for u in loaded.json()["users"]] == ["late@example.edu"]
    bad = emulator.post("/_emulator/seed", json={"toml": "[[users]]\nlogin = 'x'"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_seed"

    tokens_for(emulator)
    directory.user(login="stranger@example.edu")  # made after seeding: a reset removes it
    keys_before = emulator.get("/login/oauth2/jwks").json()
    emulator.post("/_emulator/clock", json={"advance": 50})
    fault(emulator, path="/nowhere", status=500)

    assert emulator.post("/_emulator/reset").status_code == 200
    state = emulator.get("/_emulator/tokens").json()
    assert all(state[kind] == [] for kind in ("access_tokens", "authorization_codes", "browser_sessions"))
    page = emulator.get("/_emulator/").text
    assert "late@example.edu" in page and "student@example.edu" in page and "stranger@example.edu" not in page
    assert emulator.get("/_emulator/clock").json()["real_time"]
    assert emulator.get("/_emulator/faults").json()["faults"] == []
    assert emulator.get("/login/oauth2/jwks").json() == keys_before
    tokens_for(emulator)  # the seeded key and user work again
    users_before = directory.query(select(User.id, User.name).order_by(User.id))

    # A second reset copies the seeded rows back rather than seeding (and hashing) again.
    directory.user(login="another@example.edu")
    assert emulator.post("/_emulator/reset").status_code == 200
    assert emulator.get("/_emulator/tokens").json()["access_tokens"] == []
    assert directory.query(select(User.id, User.name).order_by(User.id)) == users_before
    tokens_for(emulator)
    later = emulator.post(
        "/_emulator/seed", json={"toml": '[[users]]\nlogin = "z@example.edu"\npassword = "zz"\nname = "Z"\n'}
    )
    assert later.status_code == 200
    emulator.post("/_emulator/reset")
    assert len(directory.query(select(User.id))) == len(users_before) + 1


def test_the_page_shows_clock_keys_clients_users_and_requests(emulator) -> None:
    emulator.get("/login/canvas")
    page = emulator.get("/_emulator/")
    assert page.status_code == 200
    assert "<script" not in page.text  # the CSP allows no inline script; the page needs none
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for shown in (
        'id="clock-now"',
        "Signing keys",
        DEMO_ID,
        "Demo Integration",
        "Sam Student",
        "/login/canvas",
    ):
        assert shown in page.text
    assert 'action="/_emulator/flow"' in page.text


def test_reset_forgets_rate_limit_counters(emulator_settings: Settings) -> None:
    """A login lock provoked by one test must not outlive a reset into the next one."""
    throttled = emulator_settings.model_copy(
        update={
            "rate_limit_login_delay_after": 100,
            "rate_limit_login_lock_after": 2,
            "rate_limit_client_failures_per_address": 1,
        }
    )
    bad_client = {
        "grant_type": "refresh_token",
        "refresh_token": "x",
        "client_id": "1",
        "client_secret": "no",
    }
    with emulator_client(throttled) as emulator:
        for _ in range(2):
            assert log_in(emulator, "student@example.edu", "wrong password").status_code == 400
        assert log_in(emulator, "student@example.edu", "student-password").status_code == 429
        # The token endpoint refuses this address from memory, which the reset empties too.
        assert [emulator.post("/login/oauth2/token", data=bad_client).status_code for _ in range(2)] == [
            401,
            429,
        ]
        assert emulator.post("/_emulator/reset").status_code == 200
        assert log_in(emulator, "student@example.edu", "student-password").status_code in (302, 303)
        assert emulator.post("/login/oauth2/token", data=bad_client).status_code == 401
