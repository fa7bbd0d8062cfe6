"""The one source of "now" for every expiry decision.

Tests (and later the emulator) move time by setting an offset instead of sleeping. The offset
is process-local: servers started in-process by the tests share it with the test code.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_offset = timedelta(0)
_frozen: datetime | None = None


def now() -> datetime:
    """The current time, timezone-aware UTC, with the test offset applied."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


def timestamp() -> int:
    """Whole seconds since the epoch, for JWT ``iat``/``exp``."""
    return int(now().timestamp())


def epoch_seconds() -> float:
    """Seconds since the epoch, with the test offset applied: ``now()`` as a number, cheaply
    (the rate limits read it on every request)."""
    if _frozen is not None:
        return _frozen.timestamp()
    return time.time() + _offset.total_seconds()


def advance(seconds: float) -> None:
    """Move the clock forward (or back, with a negative number)."""
    global _offset, _frozen
    if _frozen is not None:
        _frozen += timedelta(seconds=seconds)
    else:
        _offset += timedelta(seconds=seconds)


def set_time(moment: datetime) -> None:
    """Jump to ``moment`` and keep running from there."""
    global _offset, _frozen
    _frozen = None
    _offset = moment.astimezone(UTC) - datetime.now(UTC)


def freeze() -> None:
    """Hold the clock still where it is (``advance`` still moves it; ``set_time`` and ``reset``
    let it run again): a check a second short of a lifetime is then exact however long the
    requests in between take."""
    global _frozen
    _frozen = now()


def reset() -> None:
    """Return to real time."""
    global _offset, _frozen
    _offset = timedelta(0)
    _frozen = None


def offset_seconds() -> float:
    return _offset.total_seconds()
