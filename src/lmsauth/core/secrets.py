"""Random tokens, their digests, and password hashing.

High-entropy values (tokens, codes, secrets, session ids) are stored only as SHA-256 digests
and looked up by digest: with 300+ bits of entropy a fast hash is safe, and a slow one would
make every request pay (BASELINES.md). People's passwords use argon2id.

An argon2id computation (64 MiB, t=3) takes tens of milliseconds of one core. In a request it
runs in a worker thread (argon2-cffi releases the GIL), at most ``password_hash_slots()`` at
a time per event loop, so that logins queue for the cores while every other request keeps
being answered (issue 15, finding 2).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets as _random
import weakref
from functools import cache

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Canvas's CanvasSlug alphabet: no characters that are easily confused (0/O, 1/l/I, 5/S ...).
CANVAS_SLUG_ALPHABET = "2346789acefhkmnrtuvwxyzABCDEFGHJKLMNPQRTUVWXYZ"

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@cache
def _dummy_hash() -> str:
    """Verified against when a login name is unknown, so both paths cost one argon2
    verification. Made on first use: hashing at import would slow every CLI start."""
    return _hasher.hash(_random.token_urlsafe(16))


# A random byte below 230 (5 x 46) picks a letter uniformly (its remainder by 46); the bytes
# from 230 up are dropped, so that no letter is likelier than another.
_SLUG_BYTES = 256 - 256 % len(CANVAS_SLUG_ALPHABET)
_SLUG_TABLE = bytes(ord(CANVAS_SLUG_ALPHABET[b % len(CANVAS_SLUG_ALPHABET)]) for b in range(256))
_SLUG_DROPPED = bytes(range(_SLUG_BYTES, 256))


def canvas_slug(length: int = 64) -> str:
    """A token in Canvas's format: ``length`` characters from a 46-letter alphabet (~5.5 bits each).

    Drawn from ``os.urandom`` in one call (plus a rare top-up) and mapped with a byte table:
    a ``secrets.choice`` per letter cost 64 system calls per token, over a quarter of a code
    exchange's CPU when profiled (``benchmarks/ANALYSIS.md``)."""
    slug = b""
    while len(slug) < length:
        slug += os.urandom(length - len(slug) + 16).translate(_SLUG_TABLE, _SLUG_DROPPED)
    return slug[:length].decode("ascii")


def hex_token(nbytes: int = 64) -> str:
    """Lowercase hex, as Canvas's ``SecureRandom.hex(64)`` authorization codes (128 characters)."""
    return _random.token_hex(nbytes)


def url_token(nbytes: int = 32) -> str:
    return _random.token_urlsafe(nbytes)


def digest(value: str) -> str:
    """The stored form of a high-entropy secret: hex SHA-256."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an unknown user (``None``) costs the same time and fails."""
    try:
        ok = _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return bool(ok) and password_hash is not None


def password_hash_slots() -> int:
    """How many argon2 computations run at once: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# One limiter per event loop: anyio's limiter belongs to the loop it was first used in, and a
# process may run several loops (tests, the CLI); a server process runs one.
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _hashing_slots() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _slots.get(loop)
    if limiter is None:
        limiter = _slots[loop] = anyio.CapacityLimiter(password_hash_slots())
    return limiter


async def hash_password_in_worker(password: str) -> str:
    """``hash_password`` off the event loop, waiting for a free slot (see the module docstring)."""
    return await anyio.to_thread.run_sync(hash_password, password, limiter=_hashing_slots())


async def verify_password_in_worker(password_hash: str | None, password: str) -> bool:
    """``verify_password`` off the event loop, waiting for a free slot; an unknown user
    (``None``) still costs one verification, of the dummy hash."""
    return await anyio.to_thread.run_sync(verify_password, password_hash, password, limiter=_hashing_slots())
