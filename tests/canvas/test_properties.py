"""Property tests on the two endpoints every client calls first: whatever arrives, the answer is
one of the documented shapes (spec 3.5 and 5.8), never a 5xx, never a redirect to a URI the key
does not allow, and a request that fails changes no stored row (DESIGN.md, errors).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import hypothesis
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck
from sqlalchemy import func, select, true
from starlette.testclient import TestClient

from lmsauth.canvas.models import AccessToken, AuthorizationCode, DeveloperKey, User
from tests.conftest import Directory, Key
from tests.flows import log_in

SETTINGS = hypothesis.settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # as in tests/contract/test_fuzz.py: the same examples on every run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CALLBACK = "https://app.example.com/callback"
OOB = "urn:ietf:wg:oauth:2.0:oob"

# ---------------------------------------------------------------------------- stored state


@dataclass(frozen=True)
class Stored:
    counts: tuple[int, int, int, int]  # access tokens, authorization codes, developer keys, users
    tokens: frozenset[tuple[Any, ...]]  # every access token's id, digests and state


def stored(directory: Directory) -> Stored:
    """One query (each ``directory.query`` opens its own engine): the four counts on every row,
    joined to each access token's row, or to nothing when there are none."""
    counts = select(
        select(func.count()).select_from(AccessToken).scalar_subquery().label("tokens"),
        select(func.count()).select_from(AuthorizationCode).scalar_subquery().label("codes"),
        select(func.count()).select_from(DeveloperKey).scalar_subquery().label("keys"),
        select(func.count()).select_from(User).scalar_subquery().label("users"),
    ).subquery()
    rows = directory.query(
        select(
            counts,
            AccessToken.id,
            AccessToken.token_digest,
            AccessToken.refresh_digest,
            AccessToken.workflow_state,
            AccessToken.expires_at,
        ).select_from(counts.outerjoin(AccessToken, true()))
    )
    return Stored(tuple(rows[0][:4]), frozenset(tuple(row[4:]) for row in rows if row[4] is not None))


# ---------------------------------------------------------------------------- strategies

# Printable and control characters alike (NUL included), but no lone surrogates: those cannot
# be sent as UTF-8 at all.
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
HUGE_TEXT = st.builds(lambda n, c: c * n, st.integers(4000, 9000), st.sampled_from("a%é\x00 "))


def values(*interesting: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(interesting), ANY_TEXT, HUGE_TEXT)


def pairs(names: list[str], value: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Parameters as a list of pairs: known names (sometimes repeated) and arbitrary ones."""
    name = st.one_of(st.sampled_from(names), ANY_TEXT)
    return st.lists(st.tuples(name, value), max_size=12)


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


def sent_once(params: list[tuple[str, str]], name: str) -> str | None:
    found = [value for key, value in params if key == name]
    return found[0] if len(found) == 1 else None


# ---------------------------------------------------------------------------- GET /login/oauth2/auth

AUTH_NAMES = [
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "scope",
    "scopes",
    "prompt",
    "force_login",
    "unique_id",
    "purpose",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "code",
    "error",
]
AUTH_REDIRECT_ERRORS = {
    "invalid_request",  # a field too large to keep, or a malformed code_challenge
    "invalid_scope",
    "unauthorized_client",
    "unsupported_response_type",
    "login_required",
    "interaction_required",
    "unsupported_prompt_type",
}


@pytest.fixture
def signed_in(client: TestClient, directory: Directory) -> tuple[Key, Key, Key]:
    """A signed-in browser, and three keys: one needing consent, one trusted, one scoped."""
    plain = directory.key(redirect_uris=[CALLBACK])
    trusted = directory.key(redirect_uris=[CALLBACK], trusted=True)
    scoped = directory.key(
        redirect_uris=[CALLBACK], scopes=["url:GET|/api/v1/users/:id"], require_scopes=True, trusted=True
    )
    user = directory.user()
    assert log_in(client, user.login, user.password).status_code == 302
    return plain, trusted, scoped


def _auth_requests(keys: tuple[Key, Key, Key]) -> st.SearchStrategy[list[tuple[str, str]]]:
    client_ids = [key.client_id for key in keys]
    value = values(
        *client_ids,
        "0",
        "99999999999999999999",
        CALLBACK,
        OOB,
        CALLBACK + "?x=1",
        "https://sub.app.example.com/other",
        "https://evil.example/callback",
        "http://app.example.com/callback",
        "javascript:alert(1)",
        "code",
        "token",
        "none",
        "login",
        "consent",
        "S256",
        "plain",
        "/auth/userinfo",
        "url:GET|/api/v1/users/:id",
        "",
    )
    # Well-formed requests (which reach the deep branches and often succeed), the same with
    # some fields replaced or added, and arbitrary pairs.
    well_formed = st.fixed_dictionaries(
        {
            "client_id": st.sampled_from(client_ids),
            "redirect_uri": st.sampled_from([CALLBACK, OOB, "https://sub.app.example.com/x"]),
            "response_type": st.just("code"),
        },
        optional={
            "state": ANY_TEXT,
            "scope": st.sampled_from(["url:GET|/api/v1/users/:id", "/auth/userinfo", "url:GET|/api/v1/x"]),
            "prompt": st.sampled_from(["none", "login", "consent"]),
            "code_challenge": ANY_TEXT,
            "code_challenge_method": st.sampled_from(["S256", "plain"]),
            "purpose": ANY_TEXT,
        },
    ).map(lambda fields: list(fields.items()))
    changed = st.tuples(
        well_formed, st.lists(st.tuples(st.sampled_from(AUTH_NAMES), value), min_size=1, max_size=3)
    ).map(lambda both: [(k, v) for k, v in both[0] if k not in {n for n, _ in both[1]}] + both[1])
    added = st.tuples(well_formed, pairs(AUTH_NAMES, value)).map(lambda both: both[0] + both[1])
    return st.one_of(well_formed, changed, added, pairs(AUTH_NAMES, value))


def test_authorize_never_fails_and_never_misleads(
    client: TestClient, directory: Directory, signed_in: tuple[Key, Key, Key]
) -> None:
    before = stored(directory)
    seen: set[str] = set()

    @SETTINGS
    @hypothesis.given(_auth_requests(signed_in))
    def check(params: list[tuple[str, str]]) -> None:
        nonlocal before
        hypothesis.assume(len(urlencode(params)) < 60_000)  # the client's own URL limit is 64 KiB
        response = client.get("/login/oauth2/auth", params=params)
        status = response.status_code
        assert status in (200, 302, 400, 401), (status, response.text[:300])
        after = stored(directory)
        names = {name for name, _ in params}
        if status == 200:
            assert "code" in names or "error" in names
            assert response.headers["content-type"].startswith("text/html")
            assert "content-security-policy" in response.headers
            seen.add("landing page")
        elif status in (400, 401):
            body = response.json()
            assert set(body) == {"error", "error_description"}
            if status == 401:
                assert body == {"error": "invalid_client", "error_description": "unknown client"}
                assert response.headers["www-authenticate"] == "Canvas OAuth 2.0"
            else:
                assert body["error"] == "invalid_request"
            seen.add(body["error"])
        else:
            location = response.headers["location"]
            target = urlsplit(location)
            if not target.scheme:  # back to one of our own pages
                assert target.path in ("/login/canvas", "/login/oauth2/confirm", "/login/oauth2/auth")
                if target.path == "/login/oauth2/auth":
                    assert sent_once(params, "redirect_uri") == OOB
            else:
                redirect_uri = sent_once(params, "redirect_uri")
                assert redirect_uri is not None and location.startswith(redirect_uri)
                assert target.scheme == "https"
                host = target.hostname or ""
                assert host == "app.example.com" or host.endswith(".app.example.com")
            answer = query_of(location) if target.path != "/login/oauth2/confirm" else {}
            if "error" in answer and target.path != "/login/canvas":
                assert answer["error"][0] in AUTH_REDIRECT_ERRORS
                assert answer["error_description"][0]
                seen.add(answer["error"][0])
            if "code" in answer or "error" in answer:
                state = sent_once(params, "state")
                assert answer.get("state") == ([state] if state is not None else None)
            if "code" in answer and target.path != "/login/canvas":
                assert len(answer["code"][0]) == 128
                assert after.counts[1] == before.counts[1] + 1
                assert (after.counts[0], after.counts[2:]) == (before.counts[0], before.counts[2:])
                assert after.tokens == before.tokens
                before = after
                seen.add("code")
                return
            seen.add(target.path or "client")
        assert after == before

    check()
    # The search reached the interesting outcomes, not only the first checks.
    assert {"code", "invalid_request", "invalid_client", "landing page", "/login/oauth2/confirm"} <= seen, (
        seen
    )


# ---------------------------------------------------------------------------- POST /login/oauth2/token

TOKEN_NAMES = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "refresh_token",
    "code_verifier",
    "replace_tokens",
    "scope",
    "client_assertion_type",
    "client_assertion",
]
TOKEN_ERRORS = {
    400: {"invalid_request", "invalid_grant", "unsupported_grant_type", "invalid_scope"},
    401: {"invalid_client"},
}


@dataclass
class Issued:
    confidential: Key
    public: Key
    refresh_tokens: list[str]


@pytest.fixture
def issued(client: TestClient, directory: Directory) -> Issued:
    """Two keys, each with a live token whose refresh token the search may present."""
    confidential = directory.key(redirect_uris=[CALLBACK], trusted=True)
    public = directory.key(redirect_uris=[CALLBACK], trusted=True, client_type="public")
    user = directory.user()
    assert log_in(client, user.login, user.password).status_code == 302
    refresh_tokens = []
    for key in (confidential, public):
        response = client.get(
            "/login/oauth2/auth",
            params={"client_id": key.client_id, "response_type": "code", "redirect_uri": CALLBACK},
        )
        code = query_of(response.headers["location"])["code"][0]
        token = client.post(
            "/login/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "client_id": key.client_id,
                "client_secret": key.client_secret,
                "code": code,
                "redirect_uri": CALLBACK,
            },
        )
        assert token.status_code == 200, token.text
        refresh_tokens.append(token.json()["refresh_token"])
    client.cookies.clear()
    return Issued(confidential, public, refresh_tokens)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)


def _token_requests(issued: Issued) -> st.SearchStrategy[tuple[bytes, str, bytes | None]]:
    """(body, content type, Authorization header)."""
    keys = (issued.confidential, issued.public)
    value = values(
        *(key.client_id for key in keys),
        *(key.client_secret for key in keys),
        *issued.refresh_tokens,
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "password",
        CALLBACK,
        "a" * 43,
        "1",
        "",
    )
    grant = st.sampled_from(["authorization_code", "refresh_token", "client_credentials"]) | value
    plausible = st.fixed_dictionaries(
        {"grant_type": grant},
        optional={name: value for name in TOKEN_NAMES[1:]},
    ).map(lambda fields: list(fields.items()))
    well_formed = st.sampled_from(list(zip(keys, issued.refresh_tokens, strict=True))).map(
        lambda pair: [
            ("grant_type", "refresh_token"),
            ("client_id", pair[0].client_id),
            ("client_secret", pair[0].client_secret),
            ("refresh_token", pair[1]),
        ]
    )
    params = st.one_of(
        well_formed,
        st.tuples(plausible, pairs(TOKEN_NAMES, value)).map(lambda both: both[0] + both[1]),
        pairs(TOKEN_NAMES, value),
    )
    form = params.map(lambda pairs_: (urlencode(pairs_).encode(), "application/x-www-form-urlencoded"))
    json_body = st.one_of(
        params.map(dict),
        st.dictionaries(st.sampled_from(TOKEN_NAMES) | ANY_TEXT, JSON_VALUES, max_size=6),
        JSON_VALUES,
    ).map(lambda data: (json.dumps(data).encode(), "application/json"))
    odd = st.tuples(st.binary(max_size=64), st.sampled_from(["text/plain", "", "application/json"]))
    credentials = st.tuples(value, value).map(lambda pair: f"{pair[0]}:{pair[1]}".encode())
    basic = st.one_of(
        st.none(),
        st.sampled_from(
            [f"{key.client_id}:{key.client_secret}".encode() for key in keys] + [b"x:y", b":", b""]
        ).map(lambda raw: b"Basic " + base64.b64encode(raw)),
        credentials.map(lambda raw: b"Basic " + base64.b64encode(raw)),
        st.binary(max_size=40)
        .filter(lambda raw: b"\r" not in raw and b"\n" not in raw)
        .map(lambda raw: b"Basic " + raw),
        st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40).map(
            lambda text: b"Basic " + text.encode("latin-1")
        ),
    )
    return st.tuples(st.one_of(form, json_body, odd), basic).map(
        lambda both: (both[0][0], both[0][1], both[1])
    )


def test_token_endpoint_never_fails_and_changes_nothing_on_error(
    client: TestClient, directory: Directory, issued: Issued
) -> None:
    before = stored(directory)
    seen: set[str] = set()

    @SETTINGS
    @hypothesis.given(_token_requests(issued))
    def check(request: tuple[bytes, str, bytes | None]) -> None:
        nonlocal before
        body, content_type, authorization = request
        headers: dict[str, str | bytes] = {"content-type": content_type} if content_type else {}
        if authorization is not None:
            headers["authorization"] = authorization
        started = time.monotonic()
        response = client.post("/login/oauth2/token", content=body, headers=headers)
        took = time.monotonic() - started
        status = response.status_code
        assert status in (200, 400, 401), (status, response.text[:300])
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        data = response.json()
        after = stored(directory)
        if status == 200:
            assert data["token_type"] == "Bearer"
            assert isinstance(data["access_token"], str) and len(data["access_token"]) == 64
            # Canvas's expires_in counts from the response, the expiry from before the write: a
            # request that stalled (a loaded CI machine's PostgreSQL once took 14 s) says less.
            assert 3600 - took - 1 <= data["expires_in"] <= 3600, (data["expires_in"], took)
            assert set(data["user"]) == {"id", "name", "global_id", "effective_locale", "fake_student"}
            # Only refresh can succeed here (no live codes are offered): same rows, new digest.
            assert after.counts == before.counts
            assert len(after.tokens - before.tokens) == 1
            before = after
            seen.add("refreshed")
            return
        assert set(data) == {"error", "error_description"}, data
        assert data["error"] in TOKEN_ERRORS[status], data
        assert isinstance(data["error_description"], str) and data["error_description"]
        if status == 401:
            assert response.headers["www-authenticate"] == "Canvas OAuth 2.0"
        seen.add(data["error"])
        assert after == before

    check()
    assert {"refreshed", "invalid_client", "invalid_request", "unsupported_grant_type"} <= seen, seen
