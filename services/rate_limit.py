"""Rate limits with the ``limits`` library's moving window: never more than N hits in any 60 s window,
hits taken atomically (no ``await`` between check and hit in memory, one Lua script in Redis), so N
concurrent requests against a limit of N−k admit exactly N−k.

Keys: ``guest:<ip>`` (``guest_rpm``), ``user:<id>`` (``user_rpm``, across all of a user's tokens and
IPs) and ``channel:<id>`` (the channel's ``rpm_limit``). The sign-in and registration throttles are in
``services.throttle``.

A window's storage key names the caller and the window's length but not the amount (``limits`` puts the
amount in its keys): when an admin changes a limit, the hits already in the window count against the
new amount, rather than a second, empty window opening next to the old one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter

from services.errors import LimiterUnavailable, RateLimited
from services.limit_backend import LimitBackend, StorageUnavailable, open_limit_backend

T = TypeVar("T")
UNAVAILABLE_RETRY_SECONDS = 2  # the Retry-After of a 503 while Redis does not answer


class _Window(RateLimitItemPerMinute):
    """A per-minute limit whose storage key leaves out the amount (see the module's docstring)."""

    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        return "/".join([self.namespace, *(str(part) for part in identifiers), f"{self.multiples}m"])


class RateLimiter:
    def __init__(self, backend: LimitBackend | str = "memory://") -> None:
        self.backend = open_limit_backend(backend) if isinstance(backend, str) else backend
        self._limiter = MovingWindowRateLimiter(self.backend.storage)
        self._items: dict[tuple[int, int], RateLimitItem] = {}

    def _item(self, amount: int, minutes: int = 1) -> RateLimitItem:
        item = self._items.get((amount, minutes))
        if item is None:
            item = self._items[(amount, minutes)] = _Window(amount, minutes, namespace="pyaichat")
        return item

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        """A storage that cannot be reached refuses requests with 503 rather than failing with a 500,
        at once while its circuit is open (``services.limit_backend``)."""
        circuit = self.backend.circuit
        if circuit is None:
            return await call()
        try:
            return await circuit.run(call)
        except StorageUnavailable:
            raise LimiterUnavailable(retry_after=UNAVAILABLE_RETRY_SECONDS) from None

    async def try_hit(self, key: str, per_minute: int, *, minutes: int = 1) -> bool:
        """Take one slot if there is one (atomic)."""
        return await self._guarded(lambda: self._limiter.hit(self._item(per_minute, minutes), key))

    async def is_exhausted(self, key: str, per_minute: int, *, minutes: int = 1) -> bool:
        return not await self._guarded(lambda: self._limiter.test(self._item(per_minute, minutes), key))

    async def retry_after(self, key: str, per_minute: int, *, minutes: int = 1) -> int:
        """Whole seconds until the oldest hit leaves the window and a slot frees (at least 1)."""
        item = self._item(per_minute, minutes)
        stats = await self._guarded(lambda: self._limiter.get_window_stats(item, key))
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit_or_raise(self, key: str, per_minute: int) -> None:
        if not await self.try_hit(key, per_minute):
            raise RateLimited(retry_after=await self.retry_after(key, per_minute))
