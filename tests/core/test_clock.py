"""The one source of "now" (``core.clock``): tests move it instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lmsauth.core import clock


def close(a: datetime, b: datetime, seconds: float = 5) -> bool:
    return abs((a - b).total_seconds()) < seconds


def test_now_is_aware_utc() -> None:
    now = clock.now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert close(now, datetime.now(UTC))


def test_advance_forward_and_back() -> None:
    clock.advance(3600)
    assert close(clock.now(), datetime.now(UTC) + timedelta(hours=1))
    assert clock.offset_seconds() == 3600
    clock.advance(-7200)
    assert close(clock.now(), datetime.now(UTC) - timedelta(hours=1))
    assert clock.offset_seconds() == -3600


def test_timestamp_follows_the_clock() -> None:
    before = clock.timestamp()
    clock.advance(601)
    assert 600 <= clock.timestamp() - before <= 605
    assert isinstance(clock.timestamp(), int)


def test_set_time_jumps_and_keeps_running() -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    clock.set_time(moment)
    assert close(clock.now(), moment)
    assert clock.now() >= moment - timedelta(seconds=1)
    clock.advance(10)
    assert close(clock.now(), moment + timedelta(seconds=10))


def test_set_time_accepts_other_zones() -> None:
    from datetime import timezone

    moment = datetime(2030, 1, 2, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    clock.set_time(moment)
    assert close(clock.now(), datetime(2030, 1, 2, 10, 0, tzinfo=UTC))
    assert clock.now().utcoffset() == timedelta(0)


def test_reset_returns_to_real_time() -> None:
    clock.advance(10_000)
    clock.reset()
    assert clock.offset_seconds() == 0
    assert close(clock.now(), datetime.now(UTC))


def test_epoch_seconds_follow_the_moved_clock() -> None:
    assert abs(clock.epoch_seconds() - clock.now().timestamp()) < 1
    clock.advance(3600)
    try:
        assert abs(clock.epoch_seconds() - clock.now().timestamp()) < 1
        assert clock.epoch_seconds() - datetime.now(UTC).timestamp() > 3599
    finally:
        clock.reset()


def test_freeze_holds_the_clock_until_moved_or_reset() -> None:
    clock.freeze()
    held = clock.now()
    assert clock.now() == held and clock.epoch_seconds() == held.timestamp()
    clock.advance(3599)
    assert clock.now() == held + timedelta(seconds=3599)
    clock.reset()
    assert close(clock.now(), datetime.now(UTC))
