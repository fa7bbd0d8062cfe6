"""PostgreSQL or Redis going away under load: requests fail fast with 503 in their service's
error format (never a 500, never a hang), ``/readyz`` says which backend is missing, and the
server recovers by itself when the backend is back. The backends are reached through a proxy
that this test cuts and restores; the machine's PostgreSQL and Redis are never touched."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from lmsauth.settings import Settings
from tests.conftest import Directory
from tests.flows import code_for
from tests.identity.helpers import basic, make_client
from tests.production.support import Proxy, Serve, target_of, through

pytestmark = pytest.mark.server
TIMEOUT = 2  # LMSAUTH_BACKEND_TIMEOUT_SECONDS for the server under test
BOUND = 3 * TIMEOUT + 2  # the longest any request may take while a backend is away
REDIRECT = "https://app.example.com/callback"


@dataclass
class Rig:
    server: Serve
    database: Proxy
    redis: Proxy
    bearer: dict[str, str]
    ids_login: dict[str, str]


@pytest.fixture
def rig(settings: Settings) -> Iterator[Rig]:
    assert settings.database_url and settings.redis_url
    database = Proxy(target_of(settings.database_url, 5432))
    redis = Proxy(target_of(settings.redis_url, 6379))
    directory = Directory(settings)
    user, key = directory.user(), directory.key([REDIRECT])
    credentials = make_client(settings)
    proxied = settings.model_copy(
        update={
            "database_url": through(database, settings.database_url),
            "redis_url": through(redis, settings.redis_url),
        }
    )
    server = Serve(proxied, LMSAUTH_BACKEND_TIMEOUT_SECONDS=str(TIMEOUT))
    try:
        server.wait_until_up()
        code = code_for(server.http, key.client_id, REDIRECT, user.login, user.password)
        token = server.http.post(
            "/login/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "client_id": key.client_id,
                "client_secret": key.client_secret,
                "code": code,
                "redirect_uri": REDIRECT,
            },
        ).json()["access_token"]
        yield Rig(
            server,
            database,
            redis,
            {"Authorization": f"Bearer {token}"},
            {"Authorization": basic(credentials.client_id, credentials.client_secret)},
        )
    finally:
        server.stop()
        print(server.stderr)  # shown when the test fails
        database.close()
        redis.close()


def api(rig: Rig) -> httpx.Response:
    return rig.server.http.get("/api/v1/users/self", headers=rig.bearer)


def ids(rig: Rig) -> httpx.Response:
    form = {"grant_type": "client_credentials"}
    return rig.server.http.post("/ids/auth/login", data=form, headers=rig.ids_login)


def token_endpoint(rig: Rig) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "1", "client_secret": "x"}
    return rig.server.http.post("/login/oauth2/token", data=form)


def quickly(call: object) -> httpx.Response:
    started = time.monotonic()
    response: httpx.Response = call()  # type: ignore[operator]
    assert time.monotonic() - started < BOUND, f"took {time.monotonic() - started:.1f} s"
    return response


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"


def eventually_ok(call: object, within: float = 10) -> httpx.Response:
    """Recovery needs no restart: a few requests at most (each bounded) until 200."""
    deadline = time.monotonic() + within
    while True:
        response = quickly(call)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        assert response.status_code == 503, response.text
        time.sleep(0.2)  # polling for the backend's return, not waiting out an expiry


def test_database_down_gives_503_in_each_format_and_recovers(rig: Rig) -> None:
    assert api(rig).status_code == 200
    rig.database.down()

    response = quickly(lambda: api(rig))
    assert_unavailable(response)
    assert response.json() == {"errors": [{"message": response.json()["errors"][0]["message"]}]}
    response = quickly(lambda: ids(rig))
    assert_unavailable(response)
    assert response.json()["error"]["type"] == "ServiceUnavailableError"
    response = quickly(lambda: token_endpoint(rig))
    assert_unavailable(response)
    assert response.json()["error"] == "temporarily_unavailable"
    logout = "/commons/api/sessions/logout"
    response = quickly(lambda: rig.server.http.get(logout, headers={"X-Session-ID": "x"}))
    assert_unavailable(response)
    assert response.json()["error"]["type"] == "service_unavailable"
    ready = quickly(lambda: rig.server.http.get("/readyz"))
    assert ready.status_code == 503
    assert ready.json()["database"].startswith("unavailable") and ready.json()["redis"] == "ok"
    assert rig.server.http.get("/healthz").status_code == 200

    rig.database.up()
    assert eventually_ok(lambda: api(rig)).status_code == 200
    assert quickly(lambda: ids(rig)).status_code == 200
    assert quickly(lambda: rig.server.http.get("/readyz")).status_code == 200


def test_redis_down_gives_503_where_redis_is_needed_and_recovers(rig: Rig) -> None:
    assert ids(rig).status_code == 200
    rig.redis.down()
    response = quickly(lambda: ids(rig))  # signing checks the key ring's generation in Redis
    assert_unavailable(response)
    assert response.json()["error"]["type"] == "ServiceUnavailableError"
    assert quickly(lambda: api(rig)).status_code == 200  # the Canvas API does not need Redis
    ready = quickly(lambda: rig.server.http.get("/readyz"))
    assert ready.status_code == 503 and ready.json()["redis"].startswith("unavailable")

    rig.redis.up()
    assert eventually_ok(lambda: ids(rig)).status_code == 200


def test_a_hung_database_is_given_up_on_after_the_timeout(rig: Rig) -> None:
    """Connected but silent (a partition, a frozen server): the timeouts end every wait."""
    rig.database.hang()
    assert_unavailable(quickly(lambda: api(rig)))
    assert_unavailable(quickly(lambda: api(rig)))
    rig.database.down()
    rig.database.up()
    assert eventually_ok(lambda: api(rig)).status_code == 200


@dataclass
class Load:
    statuses: list[int] = field(default_factory=list)
    slowest: float = 0.0
    errors: list[str] = field(default_factory=list)


def test_backends_restarted_under_load(rig: Rig) -> None:
    """Four clients keep calling while PostgreSQL, then Redis, go away and come back: every
    answer is 200 or 503, none takes longer than the bound, and the last ones are 200."""
    stop = threading.Event()
    load = Load()
    lock = threading.Lock()

    def client(call: object) -> None:
        with httpx.Client(base_url=rig.server.url, timeout=BOUND + 5) as http:
            local = Serve.__new__(Serve)
            local.http = http
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = call(local)  # type: ignore[operator]
                except httpx.HTTPError as exc:
                    with lock:
                        load.errors.append(repr(exc))
                    continue
                elapsed = time.monotonic() - started
                with lock:
                    load.statuses.append(response.status_code)
                    load.slowest = max(load.slowest, elapsed)

    def api_call(server: Serve) -> httpx.Response:
        return server.http.get("/api/v1/users/self", headers=rig.bearer)

    def ids_call(server: Serve) -> httpx.Response:
        return server.http.post(
            "/ids/auth/login", data={"grant_type": "client_credentials"}, headers=rig.ids_login
        )

    calls = (api_call, api_call, ids_call, ids_call)
    threads = [threading.Thread(target=client, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    try:
        for proxy in (rig.database, rig.redis):
            time.sleep(0.5)  # let traffic flow with the backend up
            proxy.down()
            time.sleep(1.5)  # the outage, under load
            proxy.up()
            time.sleep(1.5)  # recovery, under load
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=BOUND + 10)
    assert not load.errors, load.errors[:3]
    assert set(load.statuses) <= {200, 503}, sorted(set(load.statuses))
    assert 503 in load.statuses and 200 in load.statuses
    assert load.slowest < BOUND
    assert api(rig).status_code == 200 and ids(rig).status_code == 200
