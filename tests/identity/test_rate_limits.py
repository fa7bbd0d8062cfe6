"""POST /ids/auth/login under a per-client-id limit (``core.ratelimit``): 429 with ``Retry-After``
in the envelope the dap client decodes, counted before the secret is checked, the same for
unknown client ids; and the real dap CLI, which does not retry a login (spec A1), reports it."""

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


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limit_client_requests": LIMIT})


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


def test_wrong_secrets_count_too(client: TestClient, credentials: Credentials) -> None:
    """A secret cannot be guessed faster than the limit."""
    wrong = Credentials(credentials.client_id, credentials.client_secret + "x")
    for _ in range(LIMIT):
        assert_envelope(login(client, wrong), 401, "AuthenticationError")
    assert_envelope(login(client, credentials), 429, "TooManyRequestsError")


def test_unknown_client_ids_are_limited_alike(client: TestClient, credentials: Credentials) -> None:
    """The limit says nothing about whether a client id exists."""
    unknown = Credentials("us-east-1#no-such-client", "secret")
    for _ in range(LIMIT):
        assert_envelope(login(client, unknown), 401, "AuthenticationError")
    assert_envelope(login(client, unknown), 429, "TooManyRequestsError")
    assert login(client, credentials).status_code == 200  # each client id has its own count


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
