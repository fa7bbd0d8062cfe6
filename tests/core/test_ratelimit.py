"""``core.ratelimit`` over both stores: the in-process one, and Redis with
``LMSAUTH_TEST_REDIS_URL`` (where two stores over one namespace must count together, as two
instances of the server do)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest
from pydantic import ValidationError

from lmsauth.core import clock
from lmsauth.core.kv import MemoryStore, RedisStore, Store, StoreUnavailable
from lmsauth.core.ratelimit import (
    UNLIMITED,
    ClientAuthLimits,
    FailureWindow,
    FixedWindow,
    LeakyBucket,
    LoginThrottle,
    RateLimits,
    StorePause,
)
from lmsauth.settings import Settings
from tests.conftest import TEST_REDIS_URL, free_port


def throttle(store: Store, **changes: float) -> LoginThrottle:
    options: dict[str, float] = {
        "delay_after": 2,
        "lock_after": 5,
        "ip_delay_after": 100,
        "ip_lock_after": 100,
        "delay": 0.5,
        "max_delay": 2.0,
        "lock_seconds": 60.0,
        **changes,
    }
    return LoginThrottle(store, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- fixed window


async def test_fixed_window_counts_down_then_refuses(store: Store) -> None:
    window = FixedWindow(store, "t", limit=3, window=60)
    seen = [await window.hit("client-a") for _ in range(4)]
    assert [d.allowed for d in seen] == [True, True, True, False]
    assert [d.remaining for d in seen[:3]] == [2.0, 1.0, 0.0]
    assert 59 <= seen[3].retry_after <= 60
    # Another subject has its own count.
    assert (await window.hit("client-b")).remaining == 2.0


async def test_fixed_window_opens_again_when_it_ends(store: Store) -> None:
    window = FixedWindow(store, "t", limit=1, window=0.2)
    assert (await window.hit("x")).allowed
    refused = await window.hit("x")
    assert not refused.allowed and refused.retry_after == 1  # whole seconds, rounded up
    await asyncio.sleep(0.3)
    assert (await window.hit("x")).allowed


async def test_fixed_window_follows_the_moved_clock(store: Store) -> None:
    """The emulator (and tests) move ``core.clock``: a window ends by it, not by real time."""
    window = FixedWindow(store, "t", limit=1, window=60)
    assert (await window.hit("x")).allowed
    clock.advance(30)
    refused = await window.hit("x")
    assert not refused.allowed and 29 <= refused.retry_after <= 30
    clock.advance(31)
    assert (await window.hit("x")).allowed


async def test_a_clock_moved_back_cannot_stretch_a_window(store: Store) -> None:
    window = FixedWindow(store, "t", limit=1, window=0.2)
    assert (await window.hit("x")).allowed
    clock.advance(-3600)
    assert not (await window.hit("x")).allowed
    await asyncio.sleep(0.3)  # its real length has passed
    assert (await window.hit("x")).allowed


async def test_limits_off_count_nothing(store: Store) -> None:
    off = RateLimits(store, Settings(rate_limits=False, rate_limit_client_requests=1))
    assert all([(await off.per_client.hit("c")).allowed for _ in range(5)])
    assert (await off.per_client.hit("c")).remaining is None
    assert (await off.per_token.hit("t")).remaining is None
    assert (await off.login.attempt("1.2.3.4", "sam")).locked_for == 0
    # The same store under limits that are on: nothing was counted while they were off.
    on = RateLimits(store, Settings(rate_limit_client_requests=1))
    assert (await on.per_client.hit("c")).allowed
    assert not (await on.per_client.hit("c")).allowed


# ---------------------------------------------------------------------------- client authentication


async def test_a_failure_window_refuses_its_subject_without_the_store_once_over(store: Store) -> None:
    window = FailureWindow(FixedWindow(store, "f", limit=2, window=60))
    assert window.refused("1.2.3.4") is None
    assert [(await window.hit("1.2.3.4")).allowed for _ in range(3)] == [True, True, False]
    refused = window.refused("1.2.3.4")
    assert refused is not None and not refused.allowed and 59 <= refused.retry_after <= 60
    assert window.refused("5.6.7.8") is None
    await store.delete_all()  # the store no longer counts it: only this process's memory does
    assert window.refused("1.2.3.4") is not None
    window.forget()
    assert window.refused("1.2.3.4") is None


async def test_a_failure_window_remembers_a_bounded_number_of_subjects(store: Store) -> None:
    window = FailureWindow(FixedWindow(store, "f", limit=1, window=60))
    window.remembered = 3
    for n in range(5):
        await window.hit(f"a{n}")
        assert not (await window.hit(f"a{n}")).allowed
    assert [window.refused(f"a{n}") is not None for n in range(5)] == [False, False, True, True, True]


async def test_failures_never_spend_a_clients_budget(store: Store) -> None:
    limits = RateLimits(
        store,
        Settings(
            rate_limit_client_requests=2,
            rate_limit_client_failures_per_address=2,
            rate_limit_client_failures_per_client=3,
        ),
    )
    auth: ClientAuthLimits = limits.client_auth
    verdicts = [(await auth.failed(f"10.0.0.{n}", "c")).allowed for n in range(4)]
    assert verdicts == [True, True, True, False]  # the client's fourth failure, from anywhere
    assert [(await auth.authenticated("c")).allowed for _ in range(3)] == [True, True, False]
    # Failures naming no client count for their address only.
    assert [(await auth.failed("10.0.1.1", None)).allowed for _ in range(3)] == [True, True, False]
    assert auth.refused("10.0.1.1") is not None and auth.refused("10.0.0.1") is None
    limits.forget()
    assert auth.refused("10.0.1.1") is None


# ---------------------------------------------------------------------------- leaky bucket


def bucket(store: Store, **changes: float) -> LeakyBucket:
    options = {"high_water_mark": 25.0, "maximum": 40.0, "outflow": 1.0, "cost": 10.0, **changes}
    return LeakyBucket(store, "b", **options)


async def test_bucket_reports_what_is_left_and_refuses_at_the_high_water_mark(store: Store) -> None:
    tokens = bucket(store)
    first, second, third = [await tokens.hit("token-1") for _ in range(3)]
    assert first.allowed and second.allowed and not third.allowed
    assert first.remaining == pytest.approx(15, abs=0.1)
    assert second.remaining == pytest.approx(5, abs=0.1)
    assert third.remaining == pytest.approx(-5, abs=0.1)
    # Room for one more request: (level 30 + cost 10 - mark 25) / outflow 1 = 15 s.
    assert third.retry_after in (14, 15)
    # Capped at the maximum: never more than 40, however hard it is hammered.
    for _ in range(5):
        last = await tokens.hit("token-1")
    assert last.remaining == pytest.approx(25 - 40, abs=0.1)
    assert (await tokens.hit("token-2")).remaining == pytest.approx(15, abs=0.1)


async def test_bucket_leaks(store: Store) -> None:
    tokens = bucket(store, outflow=100.0, high_water_mark=15.0)
    assert (await tokens.hit("t")).allowed
    assert not (await tokens.hit("t")).allowed  # level 20
    await asyncio.sleep(0.25)  # leaks 25: empty again
    again = await tokens.hit("t")
    assert again.allowed and again.remaining == pytest.approx(5, abs=1)


async def test_bucket_key_goes_when_the_level_has_leaked_away(store: Store) -> None:
    started = time.monotonic()
    level = await store.leak("k", 5.0, 10.0, 100.0)
    assert level == pytest.approx(5.0)
    left = await store.expires_in("k")
    assert left is not None and 1.0 < left <= 1.5  # 0.5 s to leak away, plus a second
    level = await store.leak("k", 0.0, 10.0, 100.0)
    # It leaked 10 a second for at most the time these calls took (on a busy machine, some).
    assert 5.0 - 10 * (time.monotonic() - started) - 0.01 <= level <= 5.0


async def test_bucket_leaks_by_the_moved_clock(store: Store) -> None:
    tokens = bucket(store, outflow=1.0, high_water_mark=15.0)
    assert (await tokens.hit("t")).allowed
    assert not (await tokens.hit("t")).allowed  # level 20, leaking 1 a second
    clock.advance(20)  # empty again
    again = await tokens.hit("t")
    assert again.allowed and again.remaining == pytest.approx(5, abs=0.1)


# ---------------------------------------------------------------------------- login throttle


async def test_login_delays_grow_then_the_account_locks(store: Store) -> None:
    login = throttle(store)
    verdicts = [await login.attempt("10.0.0.1", "sam@example.edu") for _ in range(7)]
    assert [v.delay for v in verdicts[:5]] == [0.0, 0.0, 0.5, 1.0, 2.0]
    assert [v.locked_for for v in verdicts[:5]] == [0] * 5
    assert verdicts[5].locked_for == 60  # the sixth attempt locks
    assert 59 <= verdicts[6].locked_for <= 60  # and the lock holds, whatever is tried
    # The login name is compared as the form normalises it.
    assert (await login.attempt("10.0.0.9", "  SAM@example.edu ")).locked_for > 0


async def test_login_delay_is_capped(store: Store) -> None:
    login = throttle(store, lock_after=50, max_delay=1.5)
    delays = [(await login.attempt("10.0.0.1", "sam")).delay for _ in range(8)]
    assert delays == [0.0, 0.0, 0.5, 1.0, 1.5, 1.5, 1.5, 1.5]


async def test_login_success_clears_the_account(store: Store) -> None:
    login = throttle(store)
    for _ in range(4):
        await login.attempt("10.0.0.1", "sam")
    await login.succeeded("10.0.0.1", "sam")
    assert (await login.attempt("10.0.0.1", "sam")).delay == 0.0


async def test_login_uncounts_forms_refused_before_the_password(store: Store) -> None:
    login = throttle(store)
    for _ in range(10):
        assert (await login.attempt("10.0.0.1", "sam")).locked_for == 0
        await login.not_attempted("10.0.0.1", "sam")


async def test_login_address_locks_across_accounts(store: Store) -> None:
    login = throttle(store, ip_delay_after=1, ip_lock_after=3)
    delays = [(await login.attempt("10.0.0.1", f"user-{n}")).delay for n in range(3)]
    assert delays == [0.0, 0.5, 1.0]
    assert (await login.attempt("10.0.0.1", "user-3")).locked_for == 60
    assert (await login.attempt("10.0.0.1", "someone-new")).locked_for > 0
    elsewhere = await login.attempt("10.0.0.2", "someone-new")
    assert elsewhere.locked_for == 0 and elsewhere.delay == 0.0


async def test_login_success_does_not_clear_the_address(store: Store) -> None:
    """One attacker's own account must not reset the count of the address guessing others'."""
    login = throttle(store, ip_lock_after=3)
    for n in range(3):
        await login.attempt("10.0.0.1", f"victim-{n}")
        await login.attempt("10.0.0.1", "attacker")
        await login.succeeded("10.0.0.1", "attacker")
    assert (await login.attempt("10.0.0.1", "victim-9")).locked_for > 0


async def test_login_lock_ends(store: Store) -> None:
    login = throttle(store, lock_after=1, lock_seconds=0.3)
    await login.attempt("10.0.0.1", "sam")
    assert (await login.attempt("10.0.0.1", "sam")).locked_for == 1
    await asyncio.sleep(0.4)
    fresh = await login.attempt("10.0.0.1", "sam")
    assert fresh.locked_for == 0 and fresh.delay == 0.0


async def test_login_lock_ends_when_the_clock_passes_it(store: Store) -> None:
    login = throttle(store, lock_after=1, lock_seconds=600)
    await login.attempt("10.0.0.1", "sam")
    assert (await login.attempt("10.0.0.1", "sam")).locked_for == 600
    clock.advance(599)
    assert (await login.attempt("10.0.0.1", "sam")).locked_for == 1
    clock.advance(2)
    fresh = await login.attempt("10.0.0.1", "sam")
    assert fresh.locked_for == 0 and fresh.delay == 0.0


# ---------------------------------------------------------------------------- shared by instances


async def test_two_redis_stores_over_one_namespace_count_together() -> None:
    if not TEST_REDIS_URL:
        pytest.skip("needs LMSAUTH_TEST_REDIS_URL")
    namespace = f"lmsauth-test-rl-{uuid.uuid4().hex}"
    one, two = (RedisStore(TEST_REDIS_URL, namespace=namespace, timeout=2) for _ in range(2))
    try:
        settings = Settings(
            rate_limit_client_requests=2, rate_limit_api_request_cost=5, rate_limit_api_outflow=0.001
        )
        first, second = RateLimits(one, settings), RateLimits(two, settings)
        assert (await first.per_client.hit("c")).allowed
        assert (await second.per_client.hit("c")).allowed
        assert not (await first.per_client.hit("c")).allowed
        assert (await first.per_token.hit("t")).remaining == pytest.approx(695, abs=0.01)
        assert (await second.per_token.hit("t")).remaining == pytest.approx(690, abs=0.01)
    finally:
        await one.delete_all()
        await one.close()
        await two.close()


async def test_memory_stores_count_alone() -> None:
    settings = Settings(rate_limit_client_requests=1)
    first, second = RateLimits(MemoryStore(), settings), RateLimits(MemoryStore(), settings)
    assert (await first.per_client.hit("c")).allowed
    assert (await second.per_client.hit("c")).allowed


# ---------------------------------------------------------------------------- a store that is down


async def test_limits_let_requests_through_while_the_store_is_down_but_logins_wait() -> None:
    """Throughput limits fail open (an outage of Redis is not one of the API); the login
    throttle, which guards passwords, fails closed (``core.outage`` answers 503)."""
    dead = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    limits = RateLimits(dead, Settings(rate_limit_client_requests=1))
    try:
        assert [await limits.per_client.hit("c") for _ in range(3)] == [UNLIMITED] * 3
        assert await limits.per_token.hit("t") == UNLIMITED
        with pytest.raises(StoreUnavailable):
            await limits.login.attempt("10.0.0.1", "sam")
    finally:
        await dead.close()


async def test_a_hung_store_is_waited_for_once_per_pause() -> None:
    with socket.socket() as listener:  # takes connections, never answers: a frozen Redis
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        hung = RedisStore(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", timeout=0.3)
        window = FixedWindow(hung, "t", limit=1, window=60, pause=StorePause(30))
        try:
            started = time.monotonic()
            assert await window.hit("c") == UNLIMITED
            first = time.monotonic() - started
            started = time.monotonic()
            assert await window.hit("c") == UNLIMITED
            second = time.monotonic() - started
        finally:
            await hung.close()
    assert first >= 0.3
    assert second < 0.05


# ---------------------------------------------------------------------------- settings


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSAUTH_RATE_LIMITS", "off")
    monkeypatch.setenv("LMSAUTH_RATE_LIMIT_API_STATUS", "429")
    read = Settings()
    assert read.rate_limits is False and read.rate_limit_api_status == 429
    monkeypatch.setenv("LMSAUTH_RATE_LIMIT_API_STATUS", "500")
    with pytest.raises(ValidationError, match="403 or 429"):
        Settings()
    monkeypatch.setenv("LMSAUTH_RATE_LIMIT_API_STATUS", "403")
    monkeypatch.setenv("LMSAUTH_RATE_LIMIT_API_MAXIMUM", "600")  # below the high water mark, 700
    with pytest.raises(ValidationError, match="never refuses"):
        Settings()
