"""A changed limit does not open a second window next to the old one: the hits already admitted in the
last minute count against the new amount (memory and a real redis-server)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.rate_limit import RateLimiter
from tests.redis_server import run_redis


@contextmanager
def _storage(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "memory":
        yield "memory://"
    else:
        with run_redis(tmp_path) as url:
            yield url


async def _burst(limiter: RateLimiter, key: str, amount: int, count: int) -> int:
    admitted = await asyncio.gather(*(limiter.try_hit(key, amount) for _ in range(count)))
    return admitted.count(True)


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_a_changed_limit_counts_what_the_old_amount_admitted(kind: str, tmp_path: Path) -> None:
    with _storage(kind, tmp_path) as uri:
        limiter = RateLimiter(uri)
        assert await _burst(limiter, "user:1", 10, 4) == 4
        assert await _burst(limiter, "user:1", 6, 20) == 2, "lowered to 6 after 4: 2 more"
        assert await _burst(limiter, "user:1", 3, 20) == 0, "lowered below what was admitted: none"
        assert await _burst(limiter, "user:1", 9, 20) == 3, "raised to 9 after 6: 3 more"
        assert await limiter.is_exhausted("user:1", 9) and not await limiter.is_exhausted("user:1", 10)
        assert await limiter.retry_after("user:1", 5) >= 1
        assert await _burst(limiter, "user:2", 6, 20) == 6, "other callers keep their own window"
