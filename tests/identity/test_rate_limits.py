"""POST /ids/auth/login under the token endpoints' limits (``core.ratelimit.ClientAuthLimits``):
429 with ``Retry-After`` in the envelope the dap client decodes. A client's budget is spent only
by logins that proved its secret; failures are counted per address (past the limit nothing from
there is checked) and per client id, known or not, and never refuse the real client. The real
dap CLI, which does not retry a login (spec A1), reports a 429."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.testclient import TestClient

from lmsauth.settings import Settings
from tests.conftest import LiveServer
from tests.contract.conftest import conforms
from tests.dap.test_real_client import dap
from tests.identity.helpers import Credentials, login, make_client
from tests.identity.test_login import assert_envelope

LIMIT = 2
FAILURES_PER_ADDRESS = 3
FAILURES_PER_CLIENT = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit_client_requests": LIMIT,
            "rate_limit_client_failures_per_address": FAILURES_PER_ADDRESS,
            "rate_limit_client_failures_per_client": FAILURES_PER_CLIENT,
        }
    )


@pytest.fixture
def credentials(settings: Settings) -> Credentials:
    return make_client(settings)


def test_a_client_past_its_limit_gets_429(client: TestClient, credentials: Credentials) -> None:
    for _ in range(LIMIT):
        assert login(client, credentials).status_code == 200
    refused = login(client, credentials)
    message = assert_envelope(refused, 429, "TooManyRequestsError")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert message == f"Too many logins for this client; retry after {retry_after} seconds."
    assert refused.headers["cache-control"] == "no-store"
    conforms(refused, "POST", "/ids/auth/login")


def _from(client: TestClient, address: str) -> TestClient:
    """Requests into the same running app from another client address (the ASGI client tuple)."""
    return TestClient(client.app, base_url="http://testserver", client=(address, 50000))


def test_outsiders_failures_do_not_spend_the_clients_budget(
    client: TestClient, credentials: Credentials
) -> None:
    """Client ids are public: wrong secrets for the real client's id, past every limit, from
    two addresses, leave its own logins alone."""
    statuses = []
    for address in ("198.51.100.1", "198.51.100.2"):
        outsider = _from(client, address)
        for secret in ("wrong", credentials.client_secret + "x", "wrong", "wrong"):
            statuses.append(login(outsider, Credentials(credentials.client_id, secret)).status_code)
    # Three failures per address, four per client id: the rest are 429.
    assert statuses == [401, 401, 401, 429, 429, 429, 429, 429]
    assert_envelope(login(_from(client, "198.51.100.2"), credentials), 429, "TooManyRequestsError")
    for _ in range(LIMIT):
        assert login(client, credentials).status_code == 200
    assert_envelope(login(client, credentials), 429, "TooManyRequestsError")  # its own budget


def test_failures_from_one_address_are_refused_and_not_from_another(
    client: TestClient, credentials: Credentials
) -> None:
    """Unknown client ids count like wrong secrets; past the limit the address is refused
    before anything is checked, the right secret too, while other addresses go on."""
    guesser = _from(client, "203.0.113.5")
    for n in range(FAILURES_PER_ADDRESS):
        unknown = Credentials(f"us-east-1#no-such-client-{n}", "secret")
        assert_envelope(login(guesser, unknown), 401, "AuthenticationError")
    refused = login(guesser, Credentials("us-east-1#another", "secret"))
    message = assert_envelope(refused, 429, "TooManyRequestsError")
    assert (
        message == f"Too many logins for this client; retry after {refused.headers['retry-after']} seconds."
    )
    conforms(refused, "POST", "/ids/auth/login")
    assert_envelope(login(guesser, credentials), 429, "TooManyRequestsError")
    assert login(_from(client, "203.0.113.6"), credentials).status_code == 200
    assert login(client, credentials).status_code == 200


def test_unknown_client_ids_are_limited_alike(client: TestClient, credentials: Credentials) -> None:
    """The per-client failure count says nothing about whether a client id exists."""
    unknown = Credentials("us-east-1#no-such-client", "secret")
    wrong = Credentials(credentials.client_id, "wrong")
    for subject in (unknown, wrong):
        answers = [login(_from(client, f"192.0.2.{n}"), subject) for n in range(FAILURES_PER_CLIENT + 1)]
        assert [a.status_code for a in answers] == [401] * FAILURES_PER_CLIENT + [429]
    assert login(client, credentials).status_code == 200


@pytest.fixture
def live_credentials(live_server: LiveServer) -> Credentials:
    return make_client(live_server.settings, principal="inst-1")


def test_the_dap_cli_reports_the_limit_without_retrying(
    live_server: LiveServer, live_credentials: Credentials, tmp_path
) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        for _ in range(LIMIT):
            assert login(http, live_credentials).status_code == 200
    started = time.monotonic()
    result = dap(live_server, live_credentials, "list", "--namespace", "canvas", cwd=tmp_path / "run")
    assert result.returncode == 5, result.stdout + result.stderr  # errno.EIO: an operation error
    assert "Too many logins for this client" in result.stdout + result.stderr
    # Retry-After is about a minute: a client that waited for it would still be waiting.
    assert time.monotonic() - started < 30
