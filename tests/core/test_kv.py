"""``core.kv``: the same behaviour from the in-process store and from Redis.

The Redis store runs against the real Redis of ``LMSAUTH_TEST_REDIS_URL`` (the second run of
``./scripts/test``); without it only the in-process store is collected.
"""

from __future__ import annotations

import asyncio

import pytest

from lmsauth.core import clock
from lmsauth.core.kv import _SWEEP_EVERY, MemoryStore, RedisStore, Store, StoreUnavailable, create_store
from tests.conftest import TEST_REDIS_URL, free_port


async def test_set_get_delete(store: Store) -> None:
    assert await store.get("a") is None
    await store.set("a", "one")
    assert await store.get("a") == b"one"
    assert await store.exists("a")
    await store.set("a", b"two")
    assert await store.get("a") == b"two"
    await store.delete("a")
    await store.delete("a")  # deleting a missing key is no error
    assert await store.get("a") is None
    assert not await store.exists("a")


async def test_take_is_single_use_and_follows_the_clock(store: Store) -> None:
    await store.set("launch", "claims", expires_in=300)
    await store.set("plain", "x")
    results = await asyncio.gather(*(store.take("launch") for _ in range(5)))
    assert results.count(b"claims") == 1 and results.count(None) == 4
    assert await store.take("plain") == b"x"
    assert await store.get("plain") is None
    await store.set("late", "y", expires_in=300)
    clock.advance(301)
    assert await store.take("late") is None


async def test_values_expire(store: Store) -> None:
    await store.set("short", "x", expires_in=0.05)
    await store.set("long", "y", expires_in=60)
    await store.set("forever", "z")
    remaining = await store.expires_in("long")
    assert remaining is not None and 59 < remaining <= 60
    assert await store.expires_in("forever") is None
    assert await store.expires_in("missing") is None
    await asyncio.sleep(0.1)
    assert await store.get("short") is None
    assert await store.get("long") == b"y"


async def test_expiry_follows_the_moved_clock(store: Store) -> None:
    await store.set("value", "x", expires_in=60)
    assert await store.incr("window", expires_in=60) == 1
    clock.advance(30)
    remaining = await store.expires_in("value")
    assert remaining is not None and 29 < remaining <= 30
    assert await store.incr("window", expires_in=60) == 2  # the same window
    assert await store.get("value") == b"x"
    clock.advance(31)
    assert await store.get("value") is None
    assert await store.expires_in("value") is None
    assert await store.incr("window", expires_in=60) == 1  # a new one


async def test_a_clock_moved_back_ends_keys_after_their_real_time(store: Store) -> None:
    """The clock set back an hour cannot keep a key an hour longer."""
    await store.set("value", "x", expires_in=0.2)
    clock.advance(-3600)
    remaining = await store.expires_in("value")
    assert remaining is not None and remaining <= 0.2
    await asyncio.sleep(0.25)
    assert await store.get("value") is None


async def test_keys_without_expiry_ignore_the_clock(store: Store) -> None:
    await store.set("generation", "g")
    assert await store.incr("count") == 1
    clock.advance(10**9)
    assert await store.get("generation") == b"g"
    assert await store.incr("count") == 2
    assert await store.expires_in("generation") is None


async def test_incr_counts_and_sets_the_window_once(store: Store) -> None:
    assert await store.incr("hits", expires_in=0.2) == 1
    assert await store.incr("hits", 5, expires_in=60) == 6  # the window is not extended
    remaining = await store.expires_in("hits")
    assert remaining is not None and remaining <= 0.2
    await asyncio.sleep(0.25)
    assert await store.incr("hits") == 1  # a new window, and this one never expires
    assert await store.expires_in("hits") is None


async def test_concurrent_increments_are_not_lost(store: Store) -> None:
    results = await asyncio.gather(*(store.incr("n") for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    assert await store.get("n") == b"50"


async def test_delete_all_clears_only_its_namespace(store: Store) -> None:
    await store.set("a", "1")
    await store.incr("b")
    if isinstance(store, RedisStore):
        other = RedisStore(TEST_REDIS_URL, namespace=f"{store.namespace}-other", timeout=2)
        await other.set("a", "kept")
    await store.delete_all()
    assert await store.get("a") is None and await store.get("b") is None
    if isinstance(store, RedisStore):
        assert await other.get("a") == b"kept"
        await other.delete_all()
        await other.close()


async def test_ping_and_sharing(store: Store) -> None:
    await store.ping()
    assert store.shared is isinstance(store, RedisStore)


async def test_unreachable_redis_fails_fast_with_store_unavailable() -> None:
    """Nothing listens on the port: every command raises ``StoreUnavailable`` at once."""
    dead = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for call in (dead.get("a"), dead.set("a", "b"), dead.incr("a"), dead.ping()):
        with pytest.raises(StoreUnavailable):
            await call
    assert loop.time() - started < 4
    await dead.close()


def test_create_store_chooses_by_url() -> None:
    assert isinstance(create_store(None), MemoryStore)
    redis = create_store("redis://127.0.0.1:6379/0", namespace="x")
    assert isinstance(redis, RedisStore) and redis.namespace == "x"


async def test_memory_store_forgets_expired_keys_nobody_reads() -> None:
    """Rate-limit counters are keyed by whoever calls (client ids, login names, addresses): the
    in-process store must not keep the expired ones of callers that never come back."""
    store = MemoryStore()
    for n in range(50):
        await store.incr(f"gone-{n}", 1, expires_in=0.01)
    await asyncio.sleep(0.05)
    for _ in range(_SWEEP_EVERY):
        await store.incr("busy", 1)
    assert [key for key in store._values if key.startswith("gone-")] == []
    assert await store.get("busy") == str(_SWEEP_EVERY).encode()


async def test_leak_adds_leaks_and_caps(store: Store) -> None:
    assert await store.leak("bucket", 30.0, 0.001, 50.0) == pytest.approx(30.0, abs=0.01)
    assert await store.leak("bucket", 30.0, 0.001, 50.0) == pytest.approx(50.0)  # capped
    assert await store.leak("fast", 1.0, 100.0, 50.0) == pytest.approx(1.0)
    await asyncio.sleep(0.05)  # leaks 5, of which 1 was there
    assert await store.leak("fast", 2.0, 100.0, 50.0) == pytest.approx(2.0)
