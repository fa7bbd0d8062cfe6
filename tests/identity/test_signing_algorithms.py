"""``LMSAUTH_IDENTITY_SIGNING_ALG``: identity tokens signed with ES256 or EdDSA verify against
the published JWKS with real JOSE clients over HTTP, open the DAP API, and are accepted by the
real ``dap`` client (which never verifies them, spec A3); Canvas's own set and JWTs stay RS256;
a key of an algorithm no longer chosen verifies until it retires."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import jwt
import pytest
import requests
from click.testing import CliRunner
from joserfc import jwt as joserfc_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from lmsauth.cli import main
from lmsauth.core import clock
from lmsauth.core.db import Database
from lmsauth.core.keys import KeyLifecycle, KeyRing
from lmsauth.identity import tokens
from lmsauth.settings import Settings
from tests.conftest import TEST_SECRET_KEY, LiveServer
from tests.identity.helpers import Credentials, make_client

JWKS_PATH = "/ids/.well-known/jwks.json"
DAP_LIST = ("list", "--namespace", "canvas")
CURVE = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}


@dataclass(frozen=True)
class Subject:
    """What ``tokens.issue`` needs of a client."""

    client_id: str = "us-east-1#test"
    service: str = "dap"
    principal: str = "inst-1"
    partner: str | None = None
    region: str = "us-east-1"


@pytest.fixture(params=["ES256", "EdDSA"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """The suite's settings with the identity tokens' algorithm chosen."""
    yield settings.model_copy(update={"identity_signing_alg": request.param})


def login(live_server: LiveServer, credentials: Credentials) -> str:
    response = requests.post(
        f"{live_server.url}/ids/auth/login",
        auth=(credentials.client_id, credentials.client_secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"access_token", "expires_in", "scope", "token_type"}  # spec A2
    token: str = response.json()["access_token"]
    return token


def test_the_token_verifies_against_the_published_jwks(live_server: LiveServer) -> None:
    alg = live_server.settings.identity_signing_alg
    token = login(live_server, make_client(live_server.settings))
    header = jwt.get_unverified_header(token)
    assert header["alg"] == alg and header["typ"] == "at+jwt"

    jwks = requests.get(f"{live_server.url}{JWKS_PATH}", timeout=10).json()
    (published,) = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    assert (published["kty"], published["crv"], published["alg"], published["use"]) == (
        *CURVE[alg],
        alg,
        "sig",
    )
    assert "d" not in published

    audience = f"{live_server.url}/dap"
    # PyJWT's client fetches the set over HTTP and picks the key by kid ...
    key = jwt.PyJWKClient(f"{live_server.url}{JWKS_PATH}", timeout=10).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key, algorithms=[alg], audience=audience)
    assert claims["scope"].startswith("dap principal:inst-1 ")
    # ... and joserfc, another JOSE implementation, agrees. It warns on "EdDSA", which RFC 9864
    # deprecates for the fully specified "Ed25519"; the issue and oidc-provider name "EdDSA".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        verified = joserfc_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[alg])
    assert verified.header["kid"] == header["kid"] and verified.claims["aud"] == audience


def test_the_dap_api_and_the_real_dap_client_accept_it(live_server: LiveServer, tmp_path) -> None:
    credentials = make_client(live_server.settings)
    token = login(live_server, credentials)
    tables = requests.get(
        f"{live_server.url}/dap/query/canvas/table", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert tables.status_code == 200, tables.text

    env = {key: value for key, value in os.environ.items() if not key.startswith("DAP_")}
    env.update(
        DAP_TRACKING="false", DAP_CLIENT_ID=credentials.client_id, DAP_CLIENT_SECRET=credentials.client_secret
    )
    result = subprocess.run(
        [sys.executable, "-m", "dap", "--base-url", live_server.url, "--non-interactive", *DAP_LIST],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "users" in result.stdout.split()


def test_canvas_keeps_its_rs256_set_and_jwts(live_server: LiveServer) -> None:
    canvas = requests.get(f"{live_server.url}/login/oauth2/jwks", timeout=10).json()["keys"]
    identity = requests.get(f"{live_server.url}{JWKS_PATH}", timeout=10).json()["keys"]
    assert {key["alg"] for key in canvas} == {"RS256"}
    assert {key["alg"] for key in identity} == {"RS256", live_server.settings.identity_signing_alg}


async def test_a_key_of_the_former_algorithm_verifies_until_it_retires(settings: Settings) -> None:
    """Switching ES256 -> EdDSA (or back): the first key of the new algorithm signs at once;
    the old one's tokens verify until ``maintain()`` has retired it ``retire_after`` later."""
    former = "EdDSA" if settings.identity_signing_alg == "ES256" else "ES256"
    lifecycle = KeyLifecycle(retire_after=timedelta(hours=1), rotate_after=None)
    db = Database(settings.resolved_database_url)
    try:
        before = KeyRing(db, TEST_SECRET_KEY, lifecycle=lifecycle, algorithms=("RS256", former))
        await before.load()
        subject = Subject()
        old_token, _ = await tokens.issue(before, subject, settings.public_url, former)

        after = KeyRing(db, TEST_SECRET_KEY, lifecycle=lifecycle, algorithms=settings.signing_algorithms)
        await after.load()
        new_token, _ = await tokens.issue(after, subject, settings.public_url, settings.identity_signing_alg)
        assert jwt.get_unverified_header(new_token)["alg"] == settings.identity_signing_alg
        await after.maintain()
        for token in (old_token, new_token):
            assert (await tokens.verify(after, token, public_url=settings.public_url, service="dap")).jti

        clock.advance(lifecycle.retire_after.total_seconds() + 1)
        await after.maintain()
        assert former not in {key["alg"] for key in (await after.published_jwks())["keys"]}
        with pytest.raises(tokens.TokenRefused):
            await tokens.verify(after, old_token, public_url=settings.public_url, service="dap")
    finally:
        await db.dispose()


def test_cli_rotates_one_algorithm_and_lists_each_key_with_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMSAUTH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LMSAUTH_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("LMSAUTH_IDENTITY_SIGNING_ALG", settings.identity_signing_alg)
    runner = CliRunner()
    rotated = runner.invoke(main, ["keys", "rotate", "--alg", settings.identity_signing_alg, "--json"])
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output)["alg"] == settings.identity_signing_alg
    listed = runner.invoke(main, ["keys", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    algs = sorted(key["alg"] for key in json.loads(listed.output))
    assert algs == sorted(["RS256", settings.identity_signing_alg, settings.identity_signing_alg])
