"""Faults, nothing lost: ``lmsauth serve`` is killed with SIGKILL while clients are in the middle
of their requests, and started again over the same database (SQLite file, or PostgreSQL and
Redis in the second run). Every code, token, refresh, identity JWT and Commons session that
was answered with success before the kill still works afterwards, and nothing half-written
is visible: the database is intact, each row is whole, and the only credentials it holds are
the ones clients were given (a request cut by the kill either committed all of its work or
none of it, and the client's retry settles which).

The server also rotates its signing key about once a second during the load, so identity
JWTs are signed by keys that the killed process created: those keys too were committed
before the first token they signed was revealed.

The second test (PostgreSQL and Redis run only) plays the backends going away under the same
write load, through a proxy (``support.Proxy``): every answer is a success or a quick 503,
the server recovers by itself, and the same checks hold, a 503 being the other answer whose
outcome a client cannot know.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select, text

from lmsauth.canvas.models import AccessToken, AuthorizationCode, DeveloperKey, User
from lmsauth.commons.models import CommonsSession, UsedJwt
from lmsauth.core import secrets
from lmsauth.core.keys import SigningKey
from lmsauth.settings import Settings
from tests.canvas.support import exchange, me, refresh
from tests.commons.support import FORM, Lti, accept_terms
from tests.conftest import Directory, Key, free_port
from tests.flows import code_for, query_of
from tests.identity.helpers import Credentials, basic, make_client
from tests.production.support import Proxy, Serve, target_of, through

pytestmark = pytest.mark.server
REDIRECT = "https://app.example.com/callback"
KILLS = 2
LOAD_SECONDS = 1.5  # of load before each SIGKILL
TIMEOUT = 10  # per request: a request the kill cuts fails at once, this only bounds a stuck one
JWKS_PATH = "/ids/.well-known/jwks.json"
IDS_PAUSE = 0.01  # identity logins only read, and would otherwise be most of the load
SERVER_ENV = {
    # A sweep every half second that rotates the signing key once it is about a second old,
    # and the new key signs at once: under load, the identity tokens are signed by keys the
    # process that is about to be killed made.
    "LMSAUTH_CLEANUP_INTERVAL_SECONDS": "0.5",
    "LMSAUTH_KEY_ROTATION_DAYS": str(1 / 86_400),
    "LMSAUTH_KEY_PUBLISH_AHEAD_SECONDS": "0",
    # Rate limits stay on (they are counted in Redis, which the outage test takes away), but
    # the token endpoints' per-client limit is out of reach of this load, retries included.
    "LMSAUTH_RATE_LIMIT_CLIENT_REQUESTS": "1000000",
}


class Unknown(Exception):
    """A request whose outcome the client cannot know: the server went away before it
    answered (``answer`` None: the kill, or connecting after it), or it answered 503 because
    a backend went away. Either way its work may or may not have been committed."""

    def __init__(self, started: float, answer: httpx.Response | None) -> None:
        super().__init__(started)
        self.started = started  # time.monotonic() when the request was sent
        self.answer = answer


@dataclass
class Chain:
    """One access-token row as its client knows it: the last access string and refresh token
    it was answered. ``uncertain``: a refresh was cut, so the access string may have been
    replaced by one the client never saw (the refresh token still works)."""

    access: str
    refresh: str
    uncertain: bool = False


@dataclass
class Ledger:
    """Everything the clients were answered, and every request whose outcome they cannot
    know ("cut": no answer, or a 503)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    chains: list[Chain] = field(default_factory=list)
    seen_codes: list[str] = field(default_factory=list)  # every code a redirect revealed
    held_codes: list[str] = field(default_factory=list)  # revealed, not exchanged yet
    cut_exchanges: list[str] = field(default_factory=list)  # exchange sent, cut
    refused_retries: list[str] = field(default_factory=list)  # cut exchanges that had committed
    exchanges: int = 0  # authorization_code grants answered 200
    refreshes: int = 0
    ids_tokens: list[str] = field(default_factory=list)
    commons_sessions: list[str] = field(default_factory=list)
    cut_auth: int = 0  # GET /login/oauth2/auth cut: a code may exist that no one saw
    cut_sessions: int = 0  # POST /commons/api/sessions cut
    cut: int = 0  # every request cut
    unanswered: int = 0  # of them, cut with no answer at all
    in_flight: list[int] = field(default_factory=list)  # per fault: requests sent before it, cut by it
    fault_at: float = float("inf")  # when the current fault (kill, backend down) began
    successes: list[float] = field(default_factory=list)  # when each answered success was sent
    slowest: float = 0.0
    pending: int = 0  # requests sent and not answered yet
    unexpected: list[str] = field(default_factory=list)

    def note_cut(self, cut: Unknown) -> None:
        """Call with ``lock`` held."""
        self.cut += 1
        self.unanswered += cut.answer is None
        if self.in_flight and cut.started < self.fault_at:
            self.in_flight[-1] += 1

    def note_unexpected(self, what: str, response: httpx.Response) -> None:
        with self.lock:
            self.unexpected.append(f"{what}: {response.status_code} {response.text[:200]}")


@dataclass
class World:
    settings: Settings  # the test's database and Redis, reached directly
    serve_settings: Settings  # what the servers are started with (through proxies, or the same)
    env: dict[str, str]
    port: int
    lti: Lti
    key: Key  # trusted: a signed-in browser gets a code without the consent page
    ids: Credentials
    ledger: Ledger = field(default_factory=Ledger)
    server: Serve | None = None

    @property
    def http(self) -> httpx.Client:
        assert self.server is not None
        return self.server.http

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """A new ``lmsauth serve`` on the port (kept as ``server`` before it is up, so that
        the fixture stops it whatever happens)."""
        self.server = Serve(self.serve_settings, self.port, (), **self.env)
        self.server.wait_until_up()

    def kill(self) -> None:
        assert self.server is not None
        self.server.kill()


@contextlib.contextmanager
def running(settings: Settings, proxied: dict[str, str] | None = None, **env: str) -> Iterator[World]:
    """The fixtures, made straight in the database, and ``lmsauth serve`` on a port of its own
    that every restart reuses (the public URL is in the identity JWTs' issuer and audience)."""
    port = free_port()
    shared = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    directory = Directory(shared)
    lti = Lti.install(directory, shared)
    key = directory.key([REDIRECT], name="Crash test", trusted=True)
    ids = make_client(shared)
    serve_settings = shared.model_copy(update=proxied or {})
    world = World(shared, serve_settings, {**SERVER_ENV, **env}, port, lti, key, ids)
    try:
        world.start()
        yield world
    finally:
        if world.server is not None:
            world.server.stop()
            print(world.server.stderr)  # shown when the test fails


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    with running(settings) as started:
        yield started


def prepare(world: World) -> tuple[list[httpx.Cookies], list[Chain]]:
    """A Commons user who launched and accepted the terms, two signed-in browsers (their
    sessions must survive the faults too) and six tokens to refresh."""
    ledger = world.ledger
    launched = world.http.post("/commons/api/lti", content=world.lti.signed(), headers=FORM)
    assert launched.status_code == 303, launched.text
    accept_terms(world.http, world.lti)
    browsers: list[httpx.Cookies] = []
    for _ in range(2):
        with httpx.Client(base_url=world.url, timeout=TIMEOUT) as browser:
            user = world.lti.user
            code = code_for(browser, world.key.client_id, REDIRECT, user.login, user.password)
            ledger.seen_codes.append(code)
            ledger.held_codes.append(code)
            browsers.append(httpx.Cookies(browser.cookies))
    with httpx.Client(base_url=world.url, cookies=browsers[0], timeout=TIMEOUT) as browser:
        for _ in range(6):
            asked = code_in(ask_code(browser, world.key))
            assert asked is not None
            ledger.seen_codes.append(asked)
            ledger.held_codes.append(asked)
    settle_codes(world)
    return browsers, list(ledger.chains)


# ---------------------------------------------------------------------------- requests


def send(ledger: Ledger, call: Callable[[], httpx.Response]) -> httpx.Response:
    """``call()``'s answer, timed; ``Unknown`` when it was cut or answered 503."""
    started = time.monotonic()
    with ledger.lock:
        ledger.pending += 1
    try:
        response = call()
    except httpx.TransportError as exc:
        raise Unknown(started, None) from exc
    finally:
        with ledger.lock:
            ledger.pending -= 1
    elapsed = time.monotonic() - started
    with ledger.lock:
        ledger.slowest = max(ledger.slowest, elapsed)
        if response.is_success or response.is_redirect:
            ledger.successes.append(started)
    if response.status_code == 503:
        raise Unknown(started, response)
    return response


def ask_code(browser: httpx.Client, key: Key) -> httpx.Response:
    params = {"client_id": key.client_id, "response_type": "code", "redirect_uri": REDIRECT}
    return browser.get("/login/oauth2/auth", params=params)


def code_in(response: httpx.Response) -> str | None:
    if response.status_code != 302:
        return None
    return query_of(response.headers["location"]).get("code")


def ids_login(http: httpx.Client, ids: Credentials) -> httpx.Response:
    return http.post(
        "/ids/auth/login",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(ids.client_id, ids.client_secret)},
    )


def new_commons_session(http: httpx.Client, lti: Lti) -> httpx.Response:
    # Each JWT is accepted once (Commons records it): a fresh one per session, signed with the
    # consumer's shared secret exactly as Canvas's jwt_token endpoint signs it.
    token = lti.jwt(nonce=uuid.uuid4().hex)
    return http.post("/commons/api/sessions", json={"jwt_token": token})


# ---------------------------------------------------------------------------- the load


def keep_going(ledger: Ledger, cut: Unknown) -> bool:
    """Count ``cut``; True when the client should go on (the server answered 503), False
    when the server is gone."""
    with ledger.lock:
        ledger.note_cut(cut)
    return cut.answer is not None


def code_worker(world: World, cookies: httpx.Cookies, stop: threading.Event) -> None:
    """A signed-in browser asks for codes; the client exchanges two in three at once and
    keeps the third for later (after the restart, or the backend's return)."""
    ledger = world.ledger
    with httpx.Client(base_url=world.url, cookies=cookies, timeout=TIMEOUT) as browser:
        asked = 0
        while not stop.is_set():
            try:
                response = send(ledger, lambda: ask_code(browser, world.key))
            except Unknown as cut:
                with ledger.lock:
                    ledger.cut_auth += 1
                if keep_going(ledger, cut):
                    continue
                return
            code = code_in(response)
            if code is None:
                ledger.note_unexpected("GET /login/oauth2/auth", response)
                continue
            asked += 1
            with ledger.lock:
                ledger.seen_codes.append(code)
                if asked % 3 == 0:
                    ledger.held_codes.append(code)
                    continue
            try:
                answer = send(ledger, lambda: exchange(browser, world.key, code))  # noqa: B023
            except Unknown as cut:
                with ledger.lock:
                    ledger.cut_exchanges.append(code)
                if keep_going(ledger, cut):
                    continue
                return
            if answer.status_code != 200:
                ledger.note_unexpected("authorization_code grant", answer)
                continue
            body = answer.json()
            with ledger.lock:
                ledger.chains.append(Chain(body["access_token"], body["refresh_token"]))
                ledger.exchanges += 1


def refresh_worker(world: World, owned: list[Chain], stop: threading.Event) -> None:
    """Refreshes its chains in turn, keeping the newest access string of each."""
    ledger = world.ledger
    with httpx.Client(base_url=world.url, timeout=TIMEOUT) as http:
        while not stop.is_set():
            for chain in owned:
                if stop.is_set():
                    return
                try:
                    response = send(ledger, lambda: refresh(http, world.key, chain.refresh))  # noqa: B023
                except Unknown as cut:
                    with ledger.lock:
                        chain.uncertain = True
                    if keep_going(ledger, cut):
                        continue
                    return
                if response.status_code != 200:
                    ledger.note_unexpected("refresh_token grant", response)
                    continue
                body = response.json()
                with ledger.lock:
                    chain.access = body["access_token"]
                    chain.refresh = body.get("refresh_token") or chain.refresh
                    chain.uncertain = False  # this answer replaced whatever an unanswered one did
                    ledger.refreshes += 1


def ids_worker(world: World, stop: threading.Event) -> None:
    ledger = world.ledger
    with httpx.Client(base_url=world.url, timeout=TIMEOUT) as http:
        while not stop.is_set():
            try:
                response = send(ledger, lambda: ids_login(http, world.ids))
            except Unknown as cut:
                if keep_going(ledger, cut):
                    continue
                return
            if response.status_code != 200:
                ledger.note_unexpected("POST /ids/auth/login", response)
                continue
            with ledger.lock:
                ledger.ids_tokens.append(response.json()["access_token"])
            time.sleep(IDS_PAUSE)  # pacing, not waiting for anything: leaves the writers their share


def commons_worker(world: World, stop: threading.Event) -> None:
    ledger = world.ledger
    with httpx.Client(base_url=world.url, timeout=TIMEOUT) as http:
        while not stop.is_set():
            try:
                response = send(ledger, lambda: new_commons_session(http, world.lti))
            except Unknown as cut:
                with ledger.lock:
                    ledger.cut_sessions += 1
                if keep_going(ledger, cut):
                    continue
                return
            if response.status_code != 201:
                ledger.note_unexpected("POST /commons/api/sessions", response)
                continue
            with ledger.lock:
                ledger.commons_sessions.append(response.json()["sessionId"])


@contextlib.contextmanager
def load(world: World, browsers: list[httpx.Cookies], refreshing: list[Chain]) -> Iterator[None]:
    """Six clients at full speed for as long as the block runs: two browsers asking for codes
    and exchanging them, two refreshing tokens, one buying identity JWTs and one Commons
    sessions."""
    stop = threading.Event()
    half = len(refreshing) // 2
    workers: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        *((code_worker, (world, cookies, stop)) for cookies in browsers),
        (refresh_worker, (world, refreshing[:half], stop)),
        (refresh_worker, (world, refreshing[half:], stop)),
        (ids_worker, (world, stop)),
        (commons_worker, (world, stop)),
    ]
    threads = [threading.Thread(target=target, args=args, daemon=True) for target, args in workers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=TIMEOUT + 5)
            assert not thread.is_alive(), "a client is still waiting for an answer"


def fault(ledger: Ledger) -> None:
    """Mark the moment a fault begins, once several requests are waiting for answers (the
    clients are at full speed, so at once but for a starved machine): requests sent before it
    and cut count as in flight."""
    deadline = time.monotonic() + 1
    while ledger.pending < 3 and time.monotonic() < deadline:
        time.sleep(0.001)  # polling for the moment, not waiting for an outcome
    with ledger.lock:
        ledger.fault_at = time.monotonic()
        ledger.in_flight.append(0)


def load_then_kill(world: World, browsers: list[httpx.Cookies], refreshing: list[Chain]) -> None:
    """SIGKILL while the clients wait for answers; then a new server on the same port."""
    with load(world, browsers, refreshing):
        time.sleep(LOAD_SECONDS)  # the load runs: the kill must find requests in flight
        fault(world.ledger)
        world.kill()
    world.ledger.fault_at = float("inf")
    world.start()


# ---------------------------------------------------------------------------- the checks


def settle_codes(world: World) -> None:
    """Codes answered before the kill are redeemable after it. An exchange the kill cut is
    retried, as a client would: either it had not committed (the retry gets the token) or it
    had, and the retry is refused and revokes the token that no client ever saw."""
    ledger, http = world.ledger, world.http
    for code in ledger.held_codes:
        response = exchange(http, world.key, code)
        assert response.status_code == 200, f"a code answered before the kill is lost: {response.text}"
        body = response.json()
        ledger.chains.append(Chain(body["access_token"], body["refresh_token"]))
        ledger.exchanges += 1
    for code in ledger.cut_exchanges:
        response = exchange(http, world.key, code)
        if response.status_code == 200:
            body = response.json()
            ledger.chains.append(Chain(body["access_token"], body["refresh_token"]))
            ledger.exchanges += 1
        else:
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "invalid_grant", response.text
            ledger.refused_retries.append(code)
    ledger.held_codes.clear()
    ledger.cut_exchanges.clear()


def check_chains(world: World) -> None:
    """Each answered access string works (unless a refresh cut by the kill may have replaced
    it), then its refresh token works and brings a fresh one."""
    http = world.http
    user_id = world.lti.user.id
    for chain in world.ledger.chains:
        if not chain.uncertain:
            response = me(http, chain.access)
            assert response.status_code == 200, f"an answered access token is lost: {response.text}"
            assert response.json()["id"] == user_id
        response = refresh(http, world.key, chain.refresh)
        assert response.status_code == 200, f"an answered refresh token is lost: {response.text}"
        chain.access = response.json()["access_token"]
        chain.refresh = response.json().get("refresh_token") or chain.refresh
        chain.uncertain = False
        assert me(http, chain.access).status_code == 200


def check_ids_tokens(world: World) -> set[str]:
    """Every identity JWT verifies against the restarted server's JWKS, and its DAP accepts
    them (one of each signing key and a sample of the rest). Returns the kids seen."""
    http, public = world.http, world.settings.public_url
    published = {key["kid"]: jwt.PyJWK(key) for key in http.get(JWKS_PATH).json()["keys"]}
    kids: dict[str, str] = {}
    for token in world.ledger.ids_tokens:
        kid = jwt.get_unverified_header(token)["kid"]
        assert kid in published, f"an identity token was signed by unpublished key {kid}"
        claims = jwt.decode(
            token, published[kid].key, algorithms=["RS256"], audience=f"{public}/dap", issuer=f"{public}/ids"
        )
        assert claims["sub"] == world.ids.client_id
        kids.setdefault(kid, token)
    tokens = world.ledger.ids_tokens
    sample = [*kids.values(), *random.sample(tokens, min(20, len(tokens)))]
    for token in sample:
        response = http.get("/dap/query/canvas/table", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, f"DAP refuses an answered identity token: {response.text}"
    return set(kids)


def check_commons_sessions(world: World) -> None:
    http = world.http
    for sid in world.ledger.commons_sessions:
        response = http.get(f"/commons/api/sessions/{sid}", headers={"X-Session-ID": sid})
        assert response.status_code == 200, f"an answered Commons session is lost: {response.text}"
        assert response.json()["sid"] == sid


def check_everything_answered(world: World) -> set[str]:
    assert not world.ledger.unexpected, world.ledger.unexpected[:5]
    settle_codes(world)
    check_chains(world)
    check_commons_sessions(world)
    return check_ids_tokens(world)


def check_rows(world: World) -> None:
    """Nothing half-written: the database is intact and holds exactly what clients were
    given, plus at most what requests cut by the kill made and no client can use."""
    ledger = world.ledger
    directory = Directory(world.settings)

    def count(statement: Any) -> int:
        return int(directory.query(statement)[0][0])

    if world.settings.database_url is None:  # the SQLite file
        assert directory.query(text("PRAGMA integrity_check")) == [("ok",)]
        assert directory.query(text("PRAGMA foreign_key_check")) == []

    # Tokens: every row whole, with its user and its key.
    orphans = (
        select(func.count())
        .select_from(AccessToken)
        .outerjoin(User, User.id == AccessToken.user_id)
        .outerjoin(DeveloperKey, DeveloperKey.id == AccessToken.developer_key_id)
        .where((User.id.is_(None)) | (DeveloperKey.id.is_(None)))
    )
    assert count(orphans) == 0
    rows = directory.query(
        select(
            AccessToken.token_digest,
            AccessToken.refresh_digest,
            AccessToken.token_hint,
            AccessToken.workflow_state,
            AccessToken.authorization_code_id,
        )
    )
    for token_digest, refresh_digest, hint, _state, code_id in rows:
        assert len(token_digest) == 64 and refresh_digest is not None and len(refresh_digest) == 64
        assert hint and code_id is not None, "a token without its code"

    # The live tokens are exactly the ones clients hold: none lost, none that no client saw
    # (a cut exchange that had committed was revoked by the client's retry).
    live = [(a, r) for a, r, _hint, state, _code in rows if state == "active"]
    assert sorted(live) == sorted(
        (secrets.digest(c.access), secrets.digest(c.refresh)) for c in ledger.chains
    )
    assert len(ledger.chains) == ledger.exchanges

    # Codes: each one a client saw is stored and redeemed once, with one live token unless
    # the redemption was a cut exchange whose retry was refused; a code no client saw
    # (a cut GET /auth) is at most one per such request.
    codes = {
        digest: (code_id, redeemed)
        for code_id, digest, redeemed in directory.query(
            select(AuthorizationCode.id, AuthorizationCode.code_digest, AuthorizationCode.redeemed_at)
        )
    }
    per_code: dict[int, list[str]] = {}
    for _a, _r, _hint, state, code_id in rows:
        per_code.setdefault(code_id, []).append(state)
    refused = {secrets.digest(code) for code in ledger.refused_retries}
    seen = {secrets.digest(code) for code in ledger.seen_codes}
    for digest in seen:
        assert digest in codes, "a code answered before the kill is not stored"
        code_id, redeemed = codes[digest]
        assert redeemed is not None
        states = per_code.get(code_id, [])
        if digest in refused:
            assert "active" not in states, "a token no client saw is still usable"
        else:
            assert states == ["active"], states
    unseen = [digest for digest in codes if digest not in seen]
    assert len(unseen) <= ledger.cut_auth
    assert all(codes[digest][1] is None for digest in unseen)
    assert all(not per_code.get(codes[digest][0]) for digest in unseen)

    # Commons: every answered session is stored; a session row exists only with the record
    # of the JWT that bought it (one transaction); at most one more per cut request.
    stored = {
        digest
        for (digest,) in directory.query(
            select(CommonsSession.token_digest).where(CommonsSession.origin == "api")
        )
    }
    assert {secrets.digest(sid) for sid in ledger.commons_sessions} <= stored
    assert len(stored) <= len(ledger.commons_sessions) + ledger.cut_sessions
    assert count(select(func.count()).select_from(UsedJwt)) == len(stored)

    # Signing keys: whole rows, each published key's JWK naming its own kid.
    for kid, sealed, public_jwk in directory.query(
        select(SigningKey.kid, SigningKey.private_key_encrypted, SigningKey.public_jwk)
    ):
        assert sealed and json.loads(public_jwk)["kid"] == kid


# ---------------------------------------------------------------------------- the test


def test_sigkill_under_load_loses_nothing_answered_and_leaves_nothing_half_written(world: World) -> None:
    ledger = world.ledger
    browsers, refreshing = prepare(world)
    kids: set[str] = set()
    started = time.monotonic()
    for _ in range(KILLS):
        load_then_kill(world, browsers, refreshing)
        kids |= check_everything_answered(world)
    check_rows(world)
    print(
        f"{KILLS} kills in {time.monotonic() - started:.1f} s: {ledger.exchanges} code exchanges, "
        f"{ledger.refreshes} refreshes, {len(ledger.ids_tokens)} identity tokens by {len(kids)} keys, "
        f"{len(ledger.commons_sessions)} Commons sessions; {ledger.cut} requests cut, "
        f"{ledger.in_flight} of them in flight at the kills "
        f"({len(ledger.refused_retries)} cut exchanges had committed)"
    )
    assert all(ledger.in_flight), f"a kill found no request in flight: {ledger.in_flight}"
    assert ledger.exchanges and ledger.refreshes and ledger.ids_tokens and ledger.commons_sessions
    assert len(kids) >= 2, "no identity token was signed by a key the killed process made"


# ---------------------------------------------------------------------------- backend outages

BACKEND_TIMEOUT = 2  # LMSAUTH_BACKEND_TIMEOUT_SECONDS for the server under test
BOUND = 3 * BACKEND_TIMEOUT + 2  # the longest any request may take while a backend is away


@dataclass
class Outage:
    world: World
    database: Proxy
    redis: Proxy


@pytest.fixture
def outage(settings: Settings) -> Iterator[Outage]:
    if not (settings.database_url and settings.redis_url):
        pytest.skip(
            "plays PostgreSQL and Redis going away: the run with LMSAUTH_TEST_DATABASE_URL and _REDIS_URL"
        )
    database = Proxy(target_of(settings.database_url, 5432))
    redis = Proxy(target_of(settings.redis_url, 6379))
    proxied = {
        "database_url": through(database, settings.database_url),
        "redis_url": through(redis, settings.redis_url),
    }
    try:
        with running(settings, proxied, LMSAUTH_BACKEND_TIMEOUT_SECONDS=str(BACKEND_TIMEOUT)) as world:
            yield Outage(world, database, redis)
    finally:
        database.close()
        redis.close()


def test_backends_dropped_under_write_load_fail_fast_and_lose_nothing_answered(outage: Outage) -> None:
    """PostgreSQL, then Redis, go away while codes, tokens, refreshes, identity JWTs and Commons
    sessions are being made (``test_outages`` loads only reads and identity logins): every
    answer is a success or a quick 503, never a 500 or a hang; the server recovers by itself
    under the same load; and what was answered is all there, and whole, afterwards."""
    world, ledger = outage.world, outage.world.ledger
    browsers, refreshing = prepare(world)
    returned: list[float] = []
    with load(world, browsers, refreshing):
        time.sleep(0.7)  # traffic with every backend up
        for proxy in (outage.database, outage.redis):
            fault(ledger)
            proxy.down()  # connections cut, new ones refused: a restart or a crash
            time.sleep(1.5)  # the outage, under load
            proxy.up()
            ledger.fault_at = float("inf")
            returned.append(time.monotonic())
            time.sleep(1.5)  # recovery, under load, with no restart
    assert not ledger.unexpected, ledger.unexpected[:5]  # only successes and 503s
    assert ledger.unanswered == 0, "a request got no answer at all"
    assert ledger.slowest < BOUND, f"a request took {ledger.slowest:.1f} s"
    assert ledger.in_flight[0], "the database went away with no request in flight"
    for moment in returned:
        assert any(moment < sent < moment + 1.5 for sent in ledger.successes), "no recovery under load"
    deadline = time.monotonic() + 10
    while world.http.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "not ready 10 s after the backends came back"
        time.sleep(0.2)  # polling for recovery, not waiting out an expiry
    check_everything_answered(world)
    check_rows(world)
    print(
        f"outages: {ledger.exchanges} code exchanges, {ledger.refreshes} refreshes, "
        f"{len(ledger.ids_tokens)} identity tokens, {len(ledger.commons_sessions)} Commons sessions; "
        f"{ledger.cut} answered 503, {ledger.in_flight} of them in flight at the drops "
        f"({len(ledger.refused_retries)} exchanges answered 503 had committed); "
        f"slowest {ledger.slowest:.2f} s"
    )
