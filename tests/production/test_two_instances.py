"""Two ``lmsauth serve`` processes over one database (and, in the PostgreSQL run, one Redis),
behind one public URL as a load balancer would put them: whatever one does, the other honours
at once (DESIGN.md, "Many instances"). Over SQLite the two processes share the file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt
import pytest

from lmsauth.settings import Settings
from tests.commons.support import FORM, Lti, accept_terms
from tests.conftest import Directory, Key, Person, free_port
from tests.flows import code_for
from tests.identity.helpers import basic, make_client
from tests.production.support import Serve, cli

pytestmark = pytest.mark.server
REDIRECT = "https://app.example.com/callback"


@dataclass
class Pair:
    a: Serve
    b: Serve
    settings: Settings  # with the shared public URL


@pytest.fixture
def pair(settings: Settings) -> Iterator[Pair]:
    """Instances A and B; both call themselves by A's URL, the load balancer's address."""
    port = free_port()
    shared = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    started: list[Serve] = []
    try:
        started.append(Serve(shared, port=port))
        started.append(Serve(shared))
        for server in started:
            server.wait_until_up()
        yield Pair(started[0], started[1], shared)
    finally:
        for server in started:
            server.stop()


def token_for(pair: Pair, user: Person, key: Key, *, code_at: Serve, redeem_at: Serve) -> dict[str, str]:
    code = code_for(code_at.http, key.client_id, REDIRECT, user.login, user.password)
    response = redeem_at.http.post(
        "/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
            "code": code,
            "redirect_uri": REDIRECT,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def me(server: Serve, token: str) -> int:
    return server.http.get("/api/v1/users/self", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_code_from_one_is_redeemed_at_the_other_and_a_revocation_reaches_both(pair: Pair) -> None:
    directory = Directory(pair.settings)
    user, key = directory.user(), directory.key([REDIRECT])
    token = token_for(pair, user, key, code_at=pair.a, redeem_at=pair.b)["access_token"]
    assert me(pair.a, token) == me(pair.b, token) == 200

    revoked = pair.a.http.delete("/login/oauth2/token", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 200, revoked.text
    assert me(pair.b, token) == 401
    assert me(pair.a, token) == 401


def test_a_key_deactivated_by_the_cli_is_refused_by_both(pair: Pair) -> None:
    directory = Directory(pair.settings)
    user, key = directory.user(), directory.key([REDIRECT])
    token = token_for(pair, user, key, code_at=pair.b, redeem_at=pair.a)["access_token"]
    assert me(pair.a, token) == me(pair.b, token) == 200
    cli(pair.settings, "developer-key", "deactivate", key.client_id)
    assert me(pair.a, token) == me(pair.b, token) == 401
    cli(pair.settings, "developer-key", "activate", key.client_id)
    assert me(pair.a, token) == me(pair.b, token) == 200


def test_a_commons_session_logged_out_at_one_is_refused_at_the_other(pair: Pair) -> None:
    lti = Lti.install(Directory(pair.settings), pair.settings)
    browser = pair.a.http
    launched = browser.post("/commons/api/lti", content=lti.signed(), headers=FORM)
    assert launched.status_code == 303, launched.text
    accept_terms(browser, lti)
    access = lti.access_token(browser)
    asked = pair.b.http.get(
        "/api/lti/accounts/self/jwt_token",
        params={"tool_launch_url": lti.launch_url},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert asked.status_code == 200, asked.text
    created = pair.b.http.post("/commons/api/sessions", json={"jwt_token": asked.json()["jwt_token"]})
    assert created.status_code == 201, created.text
    sid = created.json()["sessionId"]
    header = {"X-Session-ID": sid}
    assert pair.a.http.get(f"/commons/api/sessions/{sid}", headers=header).status_code == 200

    assert pair.a.http.get("/commons/api/sessions/logout", headers=header).status_code == 204
    refused = pair.b.http.get(f"/commons/api/sessions/{sid}", headers=header)
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "invalid_session"


def ids_token(server: Serve, client_id: str, secret: str) -> str:
    response = server.http.post(
        "/ids/auth/login",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(client_id, secret)},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def jwks(server: Serve) -> dict[str, jwt.PyJWK]:
    keys = server.http.get("/ids/.well-known/jwks.json").json()["keys"]
    return {key["kid"]: jwt.PyJWK(key) for key in keys}


def dap_tables(server: Serve, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return server.http.get("/dap/query/canvas/table", headers=headers).status_code


def test_a_rotated_key_signs_at_the_other_and_verifies_everywhere_at_once(pair: Pair) -> None:
    credentials = make_client(pair.settings)
    before = ids_token(pair.b, credentials.client_id, credentials.client_secret)
    old_kid = jwt.get_unverified_header(before)["kid"]

    # A scheduled rotation: both publish the new key at once; it does not sign yet.
    pending = json.loads(cli(pair.settings, "keys", "rotate", "--json").stdout)
    assert pending["state"] == "pending"
    assert pending["kid"] in jwks(pair.a) and pending["kid"] in jwks(pair.b)
    still = ids_token(pair.b, credentials.client_id, credentials.client_secret)
    assert jwt.get_unverified_header(still)["kid"] == old_kid

    # An immediate one: the very next token from B carries it, A's JWKS verifies it, and
    # A's DAP accepts it; the tokens of the old key keep working until they expire.
    rotated = json.loads(cli(pair.settings, "keys", "rotate", "--activate-in", "0", "--json").stdout)
    after = ids_token(pair.b, credentials.client_id, credentials.client_secret)
    assert jwt.get_unverified_header(after)["kid"] == rotated["kid"] != old_kid
    published = jwks(pair.a)
    claims = jwt.decode(
        after,
        published[rotated["kid"]].key,
        algorithms=["RS256"],
        audience=f"{pair.settings.public_url}/dap",
    )
    assert claims["sub"] == credentials.client_id
    assert dap_tables(pair.a, after) == 200
    assert dap_tables(pair.a, before) == 200
    assert dap_tables(pair.b, before) == 200


def test_a_code_raced_across_both_instances_is_redeemed_once(pair: Pair) -> None:
    """Each of 20 codes presented at once to A and to B: one token per code, whichever instance
    wins, and the loser's reuse revokes it (RFC 6749 section 4.1.2). On PostgreSQL the two
    transactions overlap; over SQLite the file's write lock takes them in turn."""
    directory = Directory(pair.settings)
    user, key = directory.user(), directory.key([REDIRECT], trusted=True)
    codes = [code_for(pair.a.http, key.client_id, REDIRECT, user.login, user.password) for _ in range(20)]
    form = {
        "grant_type": "authorization_code",
        "client_id": key.client_id,
        "client_secret": key.client_secret,
        "redirect_uri": REDIRECT,
    }

    async def race(code: str) -> list[httpx.Response]:
        async with (
            httpx.AsyncClient(base_url=pair.a.url, timeout=15) as a,
            httpx.AsyncClient(base_url=pair.b.url, timeout=15) as b,
        ):
            token = "/login/oauth2/token"
            data = {**form, "code": code}
            return list(await asyncio.gather(a.post(token, data=data), b.post(token, data=data)))

    winners: list[str] = []
    for code in codes:
        responses = asyncio.run(race(code))
        assert sorted(response.status_code for response in responses) == [200, 400], [
            response.text for response in responses
        ]
        won, lost = sorted(responses, key=lambda response: response.status_code)
        assert lost.json() == {"error": "invalid_grant", "error_description": "authorization_code not found"}
        winners.append(won.json()["access_token"])
    assert len(set(winners)) == len(codes)
    for token in winners:
        assert me(pair.a, token) == me(pair.b, token) == 401
