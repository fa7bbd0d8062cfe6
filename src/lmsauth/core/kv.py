"""A small async key-value store: in-process for one machine, Redis for many.

The shape is litestar's stores (``litestar/stores/{base,memory,redis}.py``): one interface,
swappable backends, every key under a namespace. Values are bytes.

Time: ``expires_in`` and a bucket's leak are counted by ``core.clock``, so moving the test or
emulator clock forward ends rate-limit windows, login locks and drains buckets, as it ends
tokens. Each key with an expiry stores its deadline by that clock (in Redis, a hash
``{v, until}``; a bucket ``{level, at}``, "at" its last write), and its backend also drops it
after the same number of real seconds (Redis's TTL; a monotonic deadline in memory). A key
thus lives until the first of the two: a clock moved forward ends it early; a clock moved
back cannot make it outlive its real length (nor, by clock skew between instances, can one
instance's clock). Keys without an expiry are plain Redis strings, as before.

A store whose backend cannot be reached within its timeout raises ``StoreUnavailable``;
``core.outage`` answers those requests with 503.
"""

from __future__ import annotations

import struct
import time
from abc import ABC, abstractmethod
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from lmsauth.core import clock

# In every script ARGV[1] is now by ``core.clock``, in seconds since the epoch. A hash key
# with an expiry holds its value in "v" and its deadline by that clock in "until".

# The value, or nothing once the deadline by the clock has passed.
_GET = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then return redis.call('GET', KEYS[1]) end
if kind ~= 'hash' then return false end
local found = redis.call('HMGET', KEYS[1], 'v', 'until')
if not found[2] or tonumber(found[2]) <= tonumber(ARGV[1]) then return false end
return found[1]
"""

# Replace the value; it ends ARGV[3] milliseconds from now, by the clock and in real time.
_SET_EXPIRING = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'until', string.format('%.6f', ARGV[1] + ARGV[3] / 1000))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
"""

# The value, deleted in the same step (nothing if it had ended by the clock): single use.
_TAKE = """
local kind = redis.call('TYPE', KEYS[1]).ok
local value = false
if kind == 'string' then value = redis.call('GET', KEYS[1])
elseif kind == 'hash' then
  local found = redis.call('HMGET', KEYS[1], 'v', 'until')
  if found[2] and tonumber(found[2]) > tonumber(ARGV[1]) then value = found[1] end
end
redis.call('DEL', KEYS[1])
return value
"""

# Add ARGV[2] to a live counter; a missing or ended one starts at ARGV[2], ending ARGV[3]
# milliseconds from now (0: never, a plain string).
_INCR = """
local now = tonumber(ARGV[1])
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then return redis.call('INCRBY', KEYS[1], ARGV[2]) end
if kind == 'hash' then
  local ends = tonumber(redis.call('HGET', KEYS[1], 'until'))
  if ends and ends > now then return redis.call('HINCRBY', KEYS[1], 'v', ARGV[2]) end
  redis.call('DEL', KEYS[1])
end
if tonumber(ARGV[3]) <= 0 then return redis.call('INCRBY', KEYS[1], ARGV[2]) end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'until', string.format('%.6f', now + ARGV[3] / 1000))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return tonumber(ARGV[2])
"""

# Seconds left: the sooner of the deadline by the clock ("until") and the real TTL; nothing
# if neither. (A bucket has no "until", nor a string with a TTL, left by an earlier version.)
_EXPIRES_IN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local ttl = redis.call('PTTL', KEYS[1])
local left = nil
if ttl >= 0 then left = ttl / 1000 end
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  local ends = tonumber(redis.call('HGET', KEYS[1], 'until'))
  if ends then left = math.min(ends - tonumber(ARGV[1]), left or math.huge) end
end
if not left or left <= 0 then return false end
return string.format('%.6f', left)
"""

# Canvas's leaky bucket (``lib/canvas/request_throttle/increment_bucket.lua``): the level leaks
# ARGV[3] a second since its last write (never less than nothing when the clock was moved
# back), then ARGV[2] is added and the sum capped at ARGV[4]. The key lives, in real time,
# until the level would be gone.
_LEAK = """
local t = tonumber(ARGV[1])
local found = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(found[1]) or 0
local at = tonumber(found[2]) or t
local rate = tonumber(ARGV[3])
level = math.max(0, level - math.max(0, t - at) * rate) + tonumber(ARGV[2])
level = math.min(level, tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'level', string.format('%.17g', level), 'at', string.format('%.6f', t))
redis.call('PEXPIRE', KEYS[1], math.ceil(level / rate * 1000) + 1000)
return string.format('%.17g', level)
"""
# The in-process store drops expired keys nobody reads again after this many writes (or as many
# writes as it holds keys, if more), so counters of clients that went away do not pile up.
_SWEEP_EVERY = 1024
# A bucket in the in-process store: its level and when it was last written, as two doubles.
_BUCKET = struct.Struct("dd")


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


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
    async def take(self, key: str) -> bytes | None:
        """The value, removed in the same atomic step, so that of two callers at once only one
        gets it (a single-use entry, as Canvas's ``fetch_and_delete_launch``)."""

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
        """Seconds until the key expires (by ``core.clock``, at most its real time left); None
        when it is missing or never expires."""

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


class _Deadline:
    """When an in-process key ends: ``by_clock`` (``core.clock`` seconds; None for a bucket,
    whose level drains by that clock instead) or ``real`` (monotonic), whichever comes first."""

    __slots__ = ("by_clock", "real")

    def __init__(self, seconds: float, *, by_clock: bool = True) -> None:
        self.by_clock = clock.epoch_seconds() + seconds if by_clock else None
        self.real = time.monotonic() + seconds

    def left(self) -> float:
        real = self.real - time.monotonic()
        return real if self.by_clock is None else min(real, self.by_clock - clock.epoch_seconds())


class MemoryStore(Store):
    """One process's store: for a single instance (and the tests). Not shared."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, _Deadline | None]] = {}
        self._writes = 0

    def _live(self, key: str) -> tuple[bytes, _Deadline | None] | None:
        found = self._values.get(key)
        if found is not None and found[1] is not None and found[1].left() <= 0:
            del self._values[key]
            return None
        return found

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes < _SWEEP_EVERY or self._writes < len(self._values):
            return
        self._writes = 0
        gone = [key for key, (_, ends) in self._values.items() if ends is not None and ends.left() <= 0]
        for key in gone:
            del self._values[key]

    async def get(self, key: str) -> bytes | None:
        found = self._live(key)
        return None if found is None else found[0]

    async def take(self, key: str) -> bytes | None:
        found = self._live(key)  # no await between read and delete: atomic within the loop
        self._values.pop(key, None)
        return None if found is None else found[0]

    async def set(self, key: str, value: str | bytes, expires_in: float | None = None) -> None:
        data = value.encode() if isinstance(value, str) else value
        self._values[key] = (data, None if expires_in is None else _Deadline(expires_in))
        self._wrote()

    async def incr(self, key: str, amount: int = 1, expires_in: float | None = None) -> int:
        # No await between read and write: atomic within the event loop.
        found = self._live(key)
        if found is None:
            deadline = _Deadline(expires_in) if expires_in else None
            total = amount
        else:
            total = int(found[0]) + amount
            deadline = found[1]
        self._values[key] = (str(total).encode(), deadline)
        self._wrote()
        return total

    async def leak(self, key: str, amount: float, per_second: float, maximum: float) -> float:
        now = clock.epoch_seconds()
        found = self._live(key)
        level: float
        at: float
        level, at = (0.0, now) if found is None else _BUCKET.unpack(found[0])
        level = min(max(0.0, level - max(0.0, now - at) * per_second) + amount, maximum)
        self._values[key] = (_BUCKET.pack(level, now), _Deadline(level / per_second + 1.0, by_clock=False))
        self._wrote()
        return level

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def expires_in(self, key: str) -> float | None:
        found = self._live(key)
        if found is None or found[1] is None:
            return None
        return found[1].left()

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
        self._get = self._redis.register_script(_GET)
        self._set_expiring = self._redis.register_script(_SET_EXPIRING)
        self._incr = self._redis.register_script(_INCR)
        self._take = self._redis.register_script(_TAKE)
        self._expires_in = self._redis.register_script(_EXPIRES_IN)
        self._leak = self._redis.register_script(_LEAK)

    def _name(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    async def _call(self, command: Any) -> Any:
        try:
            return await command
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    async def _script(self, script: Any, key: str, *args: object) -> Any:
        """Run ``script`` on ``key`` with now by ``core.clock`` as ARGV[1]."""
        return await self._call(script(keys=[self._name(key)], args=[repr(clock.epoch_seconds()), *args]))

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._script(self._get, key)
        return value

    async def take(self, key: str) -> bytes | None:
        value: bytes | None = await self._script(self._take, key)
        return value

    async def set(self, key: str, value: str | bytes, expires_in: float | None = None) -> None:
        if expires_in is None:
            await self._call(self._redis.set(self._name(key), value))
        else:
            await self._script(self._set_expiring, key, value, _milliseconds(expires_in))

    async def incr(self, key: str, amount: int = 1, expires_in: float | None = None) -> int:
        px = _milliseconds(expires_in) if expires_in else 0
        return int(await self._script(self._incr, key, amount, px))

    async def leak(self, key: str, amount: float, per_second: float, maximum: float) -> float:
        args = [repr(float(amount)), repr(float(per_second)), repr(float(maximum))]
        return float(await self._script(self._leak, key, *args))

    async def delete(self, key: str) -> None:
        await self._call(self._redis.delete(self._name(key)))

    async def expires_in(self, key: str) -> float | None:
        left = await self._script(self._expires_in, key)
        return None if left is None else float(left)

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
