"""A small async key-value store: in-process for one machine, Redis for many.

The shape is litestar's stores (``litestar/stores/{base,memory,redis}.py``): one interface,
swappable backends, every key under a namespace. Values are bytes. ``expires_in`` is in
seconds of real (monotonic) time, as Redis counts it: a store's expiry never follows the
test or emulator clock (``core.clock``), so it may hold only things whose lifetime is not an
expiry rule of a service (caches, counters, generations).

A store whose backend cannot be reached within its timeout raises ``StoreUnavailable``;
``core.outage`` answers those requests with 503.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

# INCRBY, and set the expiry only when this call created the key, atomically.
_INCR = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and value == tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""


class StoreUnavailable(RuntimeError):
    """The store's backend did not answer in time (down, restarting, unreachable)."""


class Store(ABC):
    """An async key-value store. ``shared`` is True when every instance sees the same data."""

    shared: bool = False

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value, or None when it is missing or expired."""

    @abstractmethod
    async def set(self, key: str, value: str | bytes, expires_in: float | None = None) -> None:
        """Store ``value``, replacing any other; it disappears after ``expires_in`` seconds."""

    @abstractmethod
    async def incr(self, key: str, amount: int = 1, expires_in: float | None = None) -> int:
        """Add ``amount`` to an integer (missing counts as 0) and return the sum. ``expires_in``
        applies only when this call creates the key: a fixed window, as rate limits need."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the key; a missing key is no error."""

    @abstractmethod
    async def expires_in(self, key: str) -> float | None:
        """Seconds until the key expires; None when it is missing or never expires."""

    @abstractmethod
    async def delete_all(self) -> None:
        """Remove every key of this store's namespace."""

    @abstractmethod
    async def ping(self) -> None:
        """Return when the backend answers; raise ``StoreUnavailable`` otherwise."""

    async def close(self) -> None:  # noqa: B027  (nothing to close in memory)
        """Release connections."""

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None


class MemoryStore(Store):
    """One process's store: for a single instance (and the tests). Not shared."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float | None]] = {}

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        found = self._values.get(key)
        if found is not None and found[1] is not None and found[1] <= time.monotonic():
            del self._values[key]
            return None
        return found

    async def get(self, key: str) -> bytes | None:
        found = self._live(key)
        return None if found is None else found[0]

    async def set(self, key: str, value: str | bytes, expires_in: float | None = None) -> None:
        data = value.encode() if isinstance(value, str) else value
        self._values[key] = (data, None if expires_in is None else time.monotonic() + expires_in)

    async def incr(self, key: str, amount: int = 1, expires_in: float | None = None) -> int:
        # No await between read and write: atomic within the event loop.
        found = self._live(key)
        if found is None:
            deadline = None if not expires_in else time.monotonic() + expires_in
            total = amount
        else:
            total = int(found[0]) + amount
            deadline = found[1]
        self._values[key] = (str(total).encode(), deadline)
        return total

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def expires_in(self, key: str) -> float | None:
        found = self._live(key)
        if found is None or found[1] is None:
            return None
        return found[1] - time.monotonic()

    async def delete_all(self) -> None:
        self._values.clear()

    async def ping(self) -> None:
        return None


class RedisStore(Store):
    """Redis (``LMSAUTH_REDIS_URL``): shared by every instance. Keys are ``<namespace>:<key>``.

    Connect and command timeouts are ``timeout`` seconds and a failed command is retried once
    at once (a pooled connection that died with a Redis restart reconnects), so a request never
    waits on a dead Redis for more than about twice ``timeout``.
    """

    shared = True

    def __init__(self, url: str, *, namespace: str = "lmsauth", timeout: float = 5.0) -> None:
        self.namespace = namespace
        self._redis: Redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        self._incr = self._redis.register_script(_INCR)

    def _name(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    async def _call(self, command: Any) -> Any:
        try:
            return await command
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._call(self._redis.get(self._name(key)))
        return value

    async def set(self, key: str, value: str | bytes, expires_in: float | None = None) -> None:
        px = None if expires_in is None else max(1, round(expires_in * 1000))
        await self._call(self._redis.set(self._name(key), value, px=px))

    async def incr(self, key: str, amount: int = 1, expires_in: float | None = None) -> int:
        px = 0 if not expires_in else max(1, round(expires_in * 1000))
        return int(await self._call(self._incr(keys=[self._name(key)], args=[amount, px])))

    async def delete(self, key: str) -> None:
        await self._call(self._redis.delete(self._name(key)))

    async def expires_in(self, key: str) -> float | None:
        millis = int(await self._call(self._redis.pttl(self._name(key))))
        return None if millis < 0 else millis / 1000

    async def delete_all(self) -> None:
        async def names() -> list[Any]:
            return [name async for name in self._redis.scan_iter(match=f"{self.namespace}:*", count=1000)]

        found = await self._call(names())
        if found:
            await self._call(self._redis.delete(*found))

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


def create_store(redis_url: str | None, *, namespace: str = "lmsauth", timeout: float = 5.0) -> Store:
    """Redis when a URL is configured, else an in-process store."""
    if redis_url:
        return RedisStore(redis_url, namespace=namespace, timeout=timeout)
    return MemoryStore()
