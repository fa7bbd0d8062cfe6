"""Rate limits on the Canvas service (``core.ratelimit``): the leaky bucket per access token on
the API, with Canvas's ``403 Forbidden (Rate Limit Exceeded)`` and its quota headers (spec 7.3);
per client at the token endpoint, where only requests that authenticated as the client count
against its budget and failures are counted per address and per client; and the login form's
delays and lock, which must say nothing about whether an account exists.

Every test runs under small limits (``THROTTLE``), so each rule is reached in a few requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from canvasapi import Canvas
from canvasapi.exceptions import Forbidden, RateLimitExceeded
from starlette.testclient import TestClient

from lmsauth.canvas.models import global_id, local_id
from lmsauth.core import clock
from lmsauth.settings import Settings
from tests.canvas.support import TOKEN, exchange, get_code, issue_tokens, me, pkce_pair, signed_in
from tests.conftest import TEST_REDIS_URL, Directory, Key, LiveServer, Person
from tests.contract.conftest import conforms
from tests.flows import code_for, form_token, log_in

THROTTLE: dict[str, Any] = {
    # The API bucket: each request costs 100, the bucket is full at 250, it hardly leaks.
    "rate_limit_api_request_cost": 100.0,
    "rate_limit_api_high_water_mark": 250.0,
    "rate_limit_api_maximum": 300.0,
    "rate_limit_api_outflow": 1.0,
    "rate_limit_client_requests": 4,
    "rate_limit_client_failures_per_address": 3,
    "rate_limit_client_failures_per_client": 5,
    # The login form: delays from the second attempt on, a lock after the third.
    "rate_limit_login_delay_after": 1,
    "rate_limit_login_delay_seconds": 0.3,
    "rate_limit_login_max_delay_seconds": 0.6,
    "rate_limit_login_lock_after": 3,
    "rate_limit_login_ip_delay_after": 50,
    "rate_limit_login_ip_lock_after": 50,
    "rate_limit_login_lock_seconds": 3.0,
}
CANVAS_403 = b"403 Forbidden (Rate Limit Exceeded)\n"
CANVAS_429 = b"429 Too Many Requests (Rate Limit Exceeded)\n"
LOCKED = "Too many failed login attempts."


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The shared test settings under ``THROTTLE``, and a test's own changes (indirect param)."""
    return settings.model_copy(update={**THROTTLE, **getattr(request, "param", {})})


@pytest.fixture
def token(client: TestClient, key: Key, user: Person) -> str:
    access: str = issue_tokens(client, key, user)["access_token"]
    return access


def _quota(response: httpx.Response) -> float:
    return float(response.headers["x-rate-limit-remaining"])


# ---------------------------------------------------------------------------- the API bucket


def test_api_reports_the_quota_then_refuses_as_canvas_does(client: TestClient, token: str) -> None:
    first, second, third = (me(client, token) for _ in range(3))
    assert first.status_code == second.status_code == 200
    assert first.headers["x-request-cost"] == second.headers["x-request-cost"] == "100.0"
    assert _quota(first) == pytest.approx(150, abs=0.5)
    assert _quota(second) == pytest.approx(50, abs=0.5)  # it goes down with every request
    assert third.status_code == 403
    assert third.content == CANVAS_403
    assert third.headers["content-type"] == "text/plain; charset=utf-8"
    assert _quota(third) == pytest.approx(-50, abs=0.5)
    # Until one more request fits: (level 300 + cost 100 - mark 250) / outflow 1.
    assert third.headers["retry-after"] == "150"
    assert "www-authenticate" not in third.headers
    for answer in (first, third):
        conforms(answer, "GET", "/api/v1/users/{user_id}")


def test_each_token_has_its_own_bucket(
    client: TestClient, key: Key, token: str, directory: Directory
) -> None:
    for _ in range(3):
        me(client, token)
    assert me(client, token).status_code == 403
    other = directory.user(login="kim@example.edu", name="Kim Student")
    client.cookies.clear()
    fresh = issue_tokens(client, key, other)["access_token"]
    answer = me(client, fresh)
    assert answer.status_code == 200 and _quota(answer) == pytest.approx(150, abs=0.5)


def test_a_refused_scope_is_counted_and_carries_the_quota(client: TestClient, directory: Directory) -> None:
    scoped = directory.key(scopes=["url:GET|/api/v1/courses"], require_scopes=True)
    person = directory.user()
    access = issue_tokens(client, scoped, person, scope="url:GET|/api/v1/courses")["access_token"]
    refused = me(client, access)
    assert refused.status_code == 401 and _quota(refused) == pytest.approx(150, abs=0.5)
    me(client, access)
    assert me(client, access).content == CANVAS_403


@pytest.mark.parametrize("settings", [{"rate_limit_api_status": 429}], indirect=True)
def test_the_status_can_be_canvas_429(client: TestClient, token: str) -> None:
    for _ in range(2):
        me(client, token)
    refused = me(client, token)
    assert refused.status_code == 429
    assert refused.content == CANVAS_429
    assert refused.headers["retry-after"] == "150"
    conforms(refused, "GET", "/api/v1/users/{user_id}")


@pytest.mark.parametrize("settings", [{"rate_limits": False}], indirect=True)
def test_limits_off_neither_refuse_nor_report(client: TestClient, token: str) -> None:
    for _ in range(6):
        answer = me(client, token)
        assert answer.status_code == 200
        assert "x-rate-limit-remaining" not in answer.headers
        assert "x-request-cost" not in answer.headers


def _live_token(live_server: LiveServer, directory: Directory) -> str:
    key, person = directory.key(), directory.user()
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as browser:
        code = code_for(browser, key.client_id, key.redirect_uris[0], person.login, person.password)
        response = exchange(browser, key, code)
    assert response.status_code == 200, response.text
    access: str = response.json()["access_token"]
    return access


@pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning")
def test_canvasapi_sees_canvas_403_as_forbidden_rate_limit(
    live_server: LiveServer, directory: Directory
) -> None:
    """canvasapi 3.3 to 3.5 raise ``RateLimitExceeded`` for this 403; 3.6 (Canvas answers 429
    since October 2025) raises its parent, ``Forbidden``, with Canvas's text."""
    canvas = Canvas(live_server.url, _live_token(live_server, directory))
    canvas.get_current_user()
    canvas.get_current_user()
    with pytest.raises(Forbidden, match=r"403 Forbidden \(Rate Limit Exceeded\)"):
        canvas.get_current_user()


@pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning")
@pytest.mark.parametrize("settings", [{"rate_limit_api_status": 429}], indirect=True)
def test_canvasapi_raises_rate_limit_exceeded_on_429(live_server: LiveServer, directory: Directory) -> None:
    canvas = Canvas(live_server.url, _live_token(live_server, directory))
    canvas.get_current_user()
    canvas.get_current_user()
    # -50, less what leaked (1 a second) while the three requests ran.
    with pytest.raises(RateLimitExceeded, match=r"X-Rate-Limit-Remaining: -(4[89]\.\d+|50\.0)"):
        canvas.get_current_user()


# ---------------------------------------------------------------------------- the token endpoint


def _token_request(
    client: TestClient, key: Key, secret: str | None, client_id: str | None = None
) -> httpx.Response:
    """A refresh with a made-up token: 401 for a bad client, 400 once the client is proven."""
    data = {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": client_id or key.client_id}
    if secret is not None:
        data["client_secret"] = secret
    response: httpx.Response = client.post(TOKEN, data=data)
    return response


def _from(client: TestClient, address: str) -> TestClient:
    """Requests into the same running app from another client address (the ASGI client tuple)."""
    return TestClient(
        client.app, base_url="http://testserver", follow_redirects=False, client=(address, 50000)
    )


def test_an_authenticated_client_past_its_budget_gets_429(
    client: TestClient, key: Key, directory: Directory
) -> None:
    answers = [_token_request(client, key, key.client_secret) for _ in range(4)]
    assert [a.status_code for a in answers] == [400] * 4  # refresh_token not found: but authenticated
    refused = _token_request(client, key, key.client_secret)
    assert refused.status_code == 429
    retry_after = refused.headers["retry-after"]
    assert 1 <= int(retry_after) <= 60
    assert refused.json() == {
        "error": "temporarily_unavailable",
        "error_description": f"Too many requests for this client; retry after {retry_after} seconds.",
    }
    assert refused.headers["cache-control"] == "no-store"
    conforms(refused, "POST", TOKEN)
    # HTTP Basic names the same client.
    basic = client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(key.client_id, key.client_secret),
    )
    assert basic.status_code == 429
    other = directory.key(name="Another Integration")
    assert _token_request(client, other, other.client_secret).status_code == 400  # refresh_token not found


def test_outsiders_failures_do_not_spend_the_real_clients_budget(
    client: TestClient, key: Key, user: Person
) -> None:
    """Client ids are public: wrong, unknown and missing secrets posted for the real client's
    id, from two addresses, past every limit, leave its own requests alone."""
    answers = []
    for address in ("198.51.100.1", "198.51.100.2"):
        outsider = _from(client, address)
        for secret in ("wrong secret", "x" * 64, None, "wrong secret"):
            answers.append(_token_request(outsider, key, secret).status_code)
    # Each address: three failures, then refused; the client's failure count (5) is passed too.
    assert answers == [401, 401, 401, 429, 401, 429, 429, 429]
    code = get_code(client, key, user)
    assert exchange(client, key, code).status_code == 200
    for _ in range(3):  # and the rest of its budget of 4
        assert _token_request(client, key, key.client_secret).status_code == 400
    assert _token_request(client, key, key.client_secret).status_code == 429


def test_a_public_clients_bad_grants_are_failures_not_its_requests(
    client: TestClient, directory: Directory, user: Person
) -> None:
    """A public client proves itself by its grant: bad grants sent with its id (no secret)
    are counted as failures of their address, not against the client's budget."""
    key = directory.key(client_type="public")
    outsider = _from(client, "198.51.100.3")
    assert [_token_request(outsider, key, None).status_code for _ in range(4)] == [400, 400, 400, 429]
    verifier, challenge = pkce_pair()
    code = get_code(client, key, user, code_challenge=challenge, code_challenge_method="S256")
    answer = exchange(client, Key(key.client_id, "", key.redirect_uris), code, code_verifier=verifier)
    assert answer.status_code == 200, answer.text


def test_the_spellings_of_one_client_id_share_one_budget(client: TestClient, key: Key) -> None:
    """``1``, ``01``, ``0001`` and the global id name one developer key: one count."""
    local = local_id(int(key.client_id))
    spellings = [str(local), f"0{local}", f"000{local}", str(global_id(local))]
    for spelling in spellings:
        assert _token_request(client, key, key.client_secret, client_id=spelling).status_code == 400
    for spelling in spellings:
        assert _token_request(client, key, key.client_secret, client_id=spelling).status_code == 429


def test_the_spellings_of_one_client_id_share_one_failure_count(client: TestClient, key: Key) -> None:
    local = local_id(int(key.client_id))
    spellings = [str(local), f"0{local}", f"000{local}", str(global_id(local)), f"00{local}"]
    for n, spelling in enumerate(spellings):  # each from its own address: only the client counts
        assert (
            _token_request(_from(client, f"192.0.2.{n}"), key, "wrong", client_id=spelling).status_code == 401
        )
    assert _token_request(_from(client, "192.0.2.9"), key, "wrong", client_id=f"0{local}").status_code == 429
    assert _token_request(client, key, key.client_secret, client_id=f"00{local}").status_code == 400


def test_failures_from_one_address_are_refused_and_not_from_another(client: TestClient, key: Key) -> None:
    """Unknown client ids, unparseable ones and wrong secrets all count for their address;
    past the limit even the right secret is refused there (no guess is checked), not elsewhere."""
    guesser = _from(client, "203.0.113.5")
    assert _token_request(guesser, key, "s", client_id="99999999").status_code == 401
    assert _token_request(guesser, key, "s", client_id="not-a-number").status_code == 401
    assert _token_request(guesser, key, "wrong").status_code == 401
    refused = _token_request(guesser, key, "wrong")
    assert refused.status_code == 429
    assert refused.json()["error"] == "temporarily_unavailable"
    conforms(refused, "POST", TOKEN)
    assert _token_request(guesser, key, key.client_secret).status_code == 429
    assert _token_request(_from(client, "203.0.113.6"), key, key.client_secret).status_code == 400
    assert _token_request(client, key, key.client_secret).status_code == 400


def test_a_limited_client_is_let_through_once_the_clock_passes_the_window(
    client: TestClient, key: Key, settings: Settings
) -> None:
    for _ in range(4):  # its budget of 4 authenticated requests (refresh_token not found)
        assert _token_request(client, key, key.client_secret).status_code == 400
    assert _token_request(client, key, key.client_secret).status_code == 429
    clock.advance(settings.rate_limit_client_window_seconds + 1)
    assert _token_request(client, key, key.client_secret).status_code == 400


def test_counts_are_shared_by_instances_only_through_redis(
    client: TestClient, app_client: Callable[..., TestClient], key: Key
) -> None:
    """Two servers over one store namespace (two instances behind a load balancer)."""
    second = app_client()
    for instance in (client, second, client):
        assert _token_request(instance, key, key.client_secret).status_code == 400
    fourth = _token_request(second, key, key.client_secret)
    fifth = _token_request(second, key, key.client_secret)
    if TEST_REDIS_URL:
        assert (fourth.status_code, fifth.status_code) == (400, 429)
    else:  # each process counts alone
        assert (fourth.status_code, fifth.status_code) == (400, 400)


# ---------------------------------------------------------------------------- the login form


def _attempt(client: TestClient, login: str, password: str) -> httpx.Response:
    response: httpx.Response = log_in(client, login, password)
    return response


def _headers(response: httpx.Response) -> dict[str, str]:
    """Every header but the per-request id that tells log lines apart."""
    return {name: value for name, value in response.headers.items() if name != "x-request-id"}


def _locked_out(client: TestClient, login: str, right_password: str) -> httpx.Response:
    """Three wrong passwords, then the right one."""
    for _ in range(3):
        assert _attempt(client, login, "wrong password").status_code == 400
    return _attempt(client, login, right_password)


def test_a_lock_looks_the_same_for_existing_and_unknown_accounts(
    client: TestClient, user: Person, directory: Directory
) -> None:
    existing = _locked_out(client, user.login, user.password)
    unknown = _locked_out(client, "nobody@example.edu", user.password)
    assert existing.status_code == unknown.status_code == 429
    assert existing.content == unknown.content
    assert _headers(existing) == _headers(unknown)
    assert existing.headers["retry-after"] == "3"
    assert LOCKED in existing.text
    conforms(existing, "POST", "/login/canvas")
    assert not signed_in(client)
    # Still locked: the right password is refused, the same way.
    again = _attempt(client, user.login, user.password)
    assert again.status_code == 429 and again.content == existing.content


def test_the_lock_ends(client: TestClient, user: Person) -> None:
    assert _locked_out(client, user.login, user.password).status_code == 429
    time.sleep(THROTTLE["rate_limit_login_lock_seconds"] + 0.2)
    assert _attempt(client, user.login, user.password).status_code == 302


def test_the_lock_ends_when_the_clock_passes_it(client: TestClient, user: Person) -> None:
    """The emulator's moved clock (``POST /_emulator/clock``) ends it as real time does."""
    assert _locked_out(client, user.login, user.password).status_code == 429
    clock.advance(THROTTLE["rate_limit_login_lock_seconds"] + 1)
    assert _attempt(client, user.login, user.password).status_code == 302


def test_failed_attempts_are_delayed_more_and_more(client: TestClient, user: Person) -> None:
    elapsed = []
    for _ in range(3):
        started = time.monotonic()
        assert _attempt(client, user.login, "wrong password").status_code == 400
        elapsed.append(time.monotonic() - started)
    assert elapsed[1] >= 0.3
    assert elapsed[2] >= 0.6


def test_a_success_clears_the_account(client: TestClient, user: Person) -> None:
    for _ in range(2):
        assert _attempt(client, user.login, "wrong password").status_code == 400
    assert _attempt(client, user.login, user.password).status_code == 302
    client.cookies.clear()
    assert _locked_out(client, user.login, user.password).status_code == 429  # three more, not one


def test_forms_refused_for_their_csrf_token_are_not_counted(client: TestClient, user: Person) -> None:
    page = client.get("/login/canvas")
    form_token(page.text)
    for _ in range(5):
        refused = client.post(
            "/login/canvas",
            data={
                "authenticity_token": "not the token",
                "pseudonym_session[unique_id]": user.login,
                "pseudonym_session[password]": "a guess",
            },
        )
        assert refused.status_code == 422
    assert _attempt(client, user.login, user.password).status_code == 302


@pytest.mark.parametrize("settings", [{"rate_limit_login_ip_lock_after": 3}], indirect=True)
def test_one_address_is_locked_across_accounts(client: TestClient, user: Person) -> None:
    for n in range(3):
        # A forwarded-for header is not the client address unless LMSAUTH_TRUST_PROXY_HEADERS.
        client.headers["x-forwarded-for"] = f"192.0.2.{n}"
        assert _attempt(client, f"guess-{n}@example.edu", "wrong password").status_code == 400
    assert _attempt(client, "guess-3@example.edu", "wrong password").status_code == 429
    assert _attempt(client, user.login, user.password).status_code == 429
    elsewhere = TestClient(
        client.app, base_url="http://testserver", follow_redirects=False, client=("198.51.100.7", 50000)
    )
    assert _attempt(elsewhere, user.login, user.password).status_code == 302
