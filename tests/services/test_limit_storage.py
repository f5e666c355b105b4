"""The in-process moving-window storage behind ``memory://``: exact, expiring, swept, thread-free."""

from __future__ import annotations

import asyncio
import threading

import pytest
from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter

from services import limit_storage
from services.limit_storage import EventLoopMemoryStorage
from services.rate_limit import RateLimiter


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(limit_storage.time, "time", fake.time)
    return fake


async def test_concurrent_hits_admit_exactly_the_limit() -> None:
    limiter = MovingWindowRateLimiter(EventLoopMemoryStorage())
    item = RateLimitItemPerMinute(5)
    results = await asyncio.gather(*(limiter.hit(item, "k") for _ in range(50)))
    assert results.count(True) == 5
    assert (await limiter.get_window_stats(item, "k")).remaining == 0


async def test_the_window_moves(clock: Clock) -> None:
    limiter = MovingWindowRateLimiter(EventLoopMemoryStorage())
    item = RateLimitItemPerMinute(2)
    assert await limiter.hit(item, "k")
    clock.now += 30
    assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")
    stats = await limiter.get_window_stats(item, "k")
    assert stats.reset_time == pytest.approx(clock.now - 30 + 60)  # when the oldest hit leaves
    clock.now += 30.5  # the first hit has left the window, the second has not
    assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")
    clock.now += 61
    assert (await limiter.get_window_stats(item, "k")).remaining == 2


async def test_keys_and_items_are_independent(clock: Clock) -> None:
    limiter = MovingWindowRateLimiter(EventLoopMemoryStorage())
    one, three = RateLimitItemPerMinute(1), RateLimitItemPerMinute(3)
    assert await limiter.hit(one, "a")
    assert not await limiter.hit(one, "a")
    assert await limiter.hit(one, "b")
    assert all([await limiter.hit(three, "a") for _ in range(3)])
    assert not await limiter.hit(three, "a")


async def test_idle_keys_are_swept(clock: Clock) -> None:
    storage = EventLoopMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(10)
    for n in range(100):
        await limiter.hit(item, f"guest-{n}")
    assert len(storage._windows) == 100
    clock.now += 61 + limit_storage.SWEEP_SECONDS
    await limiter.hit(item, "fresh")
    assert list(storage._windows) == [item.key_for("fresh")]


async def test_no_thread_is_used() -> None:
    """limits' own async memory storage hands each expiry bisect to a worker thread; this one must not."""
    before = threading.active_count()
    limiter = RateLimiter("memory://")
    for n in range(20):
        assert await limiter.try_hit(f"guest:{n % 3}", 100)
        await asyncio.sleep(0)  # let any background expiry task run
    assert threading.active_count() == before


async def test_fixed_window_interface(clock: Clock) -> None:
    storage = EventLoopMemoryStorage()
    assert await storage.incr("c", 10) == 1
    assert await storage.incr("c", 10, amount=2) == 3
    assert await storage.get("c") == 3
    assert await storage.get_expiry("c") == pytest.approx(clock.now + 10)
    clock.now += 11
    assert await storage.get("c") == 0
    assert await storage.incr("c", 10) == 1
    await storage.clear("c")
    assert await storage.get("c") == 0
    assert await storage.check()
    await storage.incr("d", 10)
    assert await storage.reset() == 1


async def test_rate_limiter_uses_it_for_memory() -> None:
    limiter = RateLimiter("memory://")
    assert isinstance(limiter.backend.storage, EventLoopMemoryStorage)
    assert await limiter.try_hit("guest:1", 1)
    assert not await limiter.try_hit("guest:1", 1)
    assert 1 <= await limiter.retry_after("guest:1", 1) <= 60
