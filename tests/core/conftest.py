"""What the core tests share: a ``core.kv`` store on every backend this run has."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from lmsauth.core.kv import MemoryStore, RedisStore, Store
from tests.conftest import TEST_REDIS_URL

BACKENDS = ["memory", "redis"] if TEST_REDIS_URL else ["memory"]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """An empty store: in-process, and (in the PostgreSQL + Redis run) Redis in a namespace
    of its own, emptied afterwards."""
    if request.param == "memory":
        yield MemoryStore()
        return
    request.getfixturevalue("redis_reachable")
    redis = RedisStore(TEST_REDIS_URL, namespace=f"lmsauth-test-{uuid.uuid4().hex}", timeout=2)
    try:
        yield redis
    finally:
        await redis.delete_all()
        await redis.close()
