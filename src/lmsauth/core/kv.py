"""A small async key-value store: in-process for one machine, Redis for many.

The shape is litestar's stores (``litestar/stores/{base,memory,redis}.py``): one interface,
swappable backends, every key under a namespace. Values are bytes. ``expires_in`` is in
seconds of real (monotonic) time, as Redis counts it: a store's expiry never follows the
test or emulator clock (``core.clock``), so it may hold only things whose lifetime is not an
expiry rule of a service (caches, counters, rate-limit buckets, generations).

A store whose backend cannot be reached within its timeout raises ``StoreUnavailable``;
``core.outage`` answers those requests with 503.
"""

from __future__ import annotations

import struct
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

# Canvas's leaky bucket (``lib/canvas/request_throttle/increment_bucket.lua``): the level leaks
# ARGV[2] a second since its last write, timed by Redis's clock (one clock for every instance),
# then ARGV[1] is added and the sum capped at ARGV[3]. The key lives until the level is gone.
_LEAK = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local found = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(found[1]) or 0
local at = tonumber(found[2]) or t
local rate = tonumber(ARGV[2])
level = math.max(0, level - math.max(0, t - at) * rate) + tonumber(ARGV[1])
level = math.min(level, tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'level', string.format('%.17g', level), 'at', string.format('%.6f', t))
redis.call('PEXPIRE', KEYS[1], math.ceil(level / rate * 1000) + 1000)
return string.format('%.17g', level)
"""
# The in-process store drops expired keys nobody reads again after this many writes (or as many
# writes as it holds keys, if more), so counters of clients that went away do not pile up.
_SWEEP_EVERY = 1024
# A bucket in the in-process store: its level and when it was last written, as two doubles.
_BUCKET = struct.Struct("dd")


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
    async def leak(self, key: str, amount: float, per_second: float, maximum: float) -> float:
        """A leaky bucket in one step: the level (missing counts as 0) first leaks ``per_second``
        (> 0) for every second since its last write, then ``amount`` is added, capped at
        ``maximum``; returns the new level. The key disappears once the level has leaked away."""

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
        self._writes = 0

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        found = self._values.get(key)
        if found is not None and found[1] is not None and found[1] <= time.monotonic():
            del self._values[key]
            return None
        return found

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes < _SWEEP_EVERY or self._writes < len(self._values):
            return
        self._writes = 0
        now = time.monotonic()
        gone = [key for key, (_, ends) in self._values.items() if ends is not None and ends <= now]
        for key in gone:
            del self._values[key]

    async def get(self, key: str) -> bytes | None:
        found = self._live(key)
        return None if found is None else found[0]

    async def set(self, key: str, value: str | bytes, expires_in: float | None = None) -> None:
        data = value.encode() if isinstance(value, str) else value
        self._values[key] = (data, None if expires_in is None else time.monotonic() + expires_in)
        self._wrote()

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
        self._wrote()
        return total

    async def leak(self, key: str, amount: float, per_second: float, maximum: float) -> float:
        now = time.monotonic()
        found = self._live(key)
        level: float
        at: float
        level, at = (0.0, now) if found is None else _BUCKET.unpack(found[0])
        level = min(max(0.0, level - max(0.0, now - at) * per_second) + amount, maximum)
        self._values[key] = (_BUCKET.pack(level, now), now + level / per_second + 1.0)
        self._wrote()
        return level

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
        self._leak = self._redis.register_script(_LEAK)

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

    async def leak(self, key: str, amount: float, per_second: float, maximum: float) -> float:
        args = [repr(float(amount)), repr(float(per_second)), repr(float(maximum))]
        return float(await self._call(self._leak(keys=[self._name(key)], args=args)))

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
