"""Rate limits with the ``limits`` library's moving window: never more than N hits in any 60 s window,
hits taken atomically (no ``await`` between check and hit in memory, one Lua script in Redis), so N
concurrent requests against a limit of N−k admit exactly N−k.

Keys: ``guest:<ip>`` (``guest_rpm``), ``user:<id>`` (``user_rpm``, across all of a user's tokens and
IPs), ``channel:<id>`` (the channel's ``rpm_limit``), and the failed-login counters.

A window's storage key names the caller and the window's length but not the amount (``limits`` puts the
amount in its keys): when an admin changes a limit, the hits already in the window count against the
new amount, rather than a second, empty window opening next to the old one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from redis.asyncio import BlockingConnectionPool

from services.errors import LimiterUnavailable, RateLimited
from services.limit_storage import EventLoopMemoryStorage

log = logging.getLogger("pyaichat.rate_limit")

T = TypeVar("T")
REDIS_POOL_SIZE = 64
REDIS_POOL_WAIT_SECONDS = 10
LOGIN_WINDOW_MINUTES = 15
LOGIN_FAILURES_PER_ACCOUNT = 10
LOGIN_FAILURES_PER_IP = 30


def async_storage_uri(uri: str) -> str:
    """``memory://`` and ``redis://`` as the asynchronous storages the async limiter needs."""
    return uri if uri.startswith("async+") else f"async+{uri}"


class _Window(RateLimitItemPerMinute):
    """A per-minute limit whose storage key leaves out the amount (see the module's docstring)."""

    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        return "/".join([self.namespace, *(str(part) for part in identifiers), f"{self.multiples}m"])


class RateLimiter:
    def __init__(self, storage_uri: str = "memory://") -> None:
        uri = async_storage_uri(storage_uri)
        options: dict[str, Any] = {}
        if uri.startswith("async+redis"):
            # redis-py's asyncio client (the library's default, coredis, is pinned below 6); a plain
            # redis:// server gets a blocking pool, so a burst waits for a connection instead of failing.
            options["implementation"] = "redispy"
            plain = uri.removeprefix("async+")
            if plain.startswith(("redis://", "rediss://")):
                options["connection_pool"] = BlockingConnectionPool.from_url(
                    plain, max_connections=REDIS_POOL_SIZE, timeout=REDIS_POOL_WAIT_SECONDS
                )
        self._storage: AsyncStorage
        if uri.startswith("async+memory://"):
            self._storage = EventLoopMemoryStorage()
        else:
            storage = storage_from_string(uri, **options)
            if not isinstance(storage, AsyncStorage):  # pragma: no cover - async_storage_uri made it async
                raise TypeError(f"{uri} is not an asynchronous storage")
            self._storage = storage
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._items: dict[tuple[int, int], RateLimitItem] = {}

    def _item(self, amount: int, minutes: int = 1) -> RateLimitItem:
        item = self._items.get((amount, minutes))
        if item is None:
            item = self._items[(amount, minutes)] = _Window(amount, minutes, namespace="pyaichat")
        return item

    @staticmethod
    async def _guarded(call: Awaitable[T]) -> T:
        """A storage that cannot be reached refuses requests with 503 rather than failing with a 500."""
        try:
            return await call
        except Exception as exc:
            log.error("rate-limit storage unavailable: %s", type(exc).__name__)
            raise LimiterUnavailable() from None

    async def try_hit(self, key: str, per_minute: int, *, minutes: int = 1) -> bool:
        """Take one slot if there is one (atomic)."""
        return await self._guarded(self._limiter.hit(self._item(per_minute, minutes), key))

    async def is_exhausted(self, key: str, per_minute: int, *, minutes: int = 1) -> bool:
        return not await self._guarded(self._limiter.test(self._item(per_minute, minutes), key))

    async def retry_after(self, key: str, per_minute: int, *, minutes: int = 1) -> int:
        """Whole seconds until the oldest hit leaves the window and a slot frees (at least 1)."""
        stats = await self._guarded(self._limiter.get_window_stats(self._item(per_minute, minutes), key))
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit_or_raise(self, key: str, per_minute: int) -> None:
        if not await self.try_hit(key, per_minute):
            raise RateLimited(retry_after=await self.retry_after(key, per_minute))

    # ---- failed logins --------------------------------------------------------------------------
    def _login_keys(self, kind: str, account: str, ip: str) -> list[tuple[str, int]]:
        return [
            (f"login-fail:{kind}:account:{account.strip().lower()}", LOGIN_FAILURES_PER_ACCOUNT),
            (f"login-fail:{kind}:ip:{ip}", LOGIN_FAILURES_PER_IP),
        ]

    async def check_login_allowed(self, *, kind: str, account: str, ip: str) -> None:
        """Raises RateLimited while the account or the IP has too many recent failures (known or not).

        Fails open when the storage is unreachable, so the admin can still sign in to fix things.
        """
        try:
            for key, amount in self._login_keys(kind, account, ip):
                if await self.is_exhausted(key, amount, minutes=LOGIN_WINDOW_MINUTES):
                    wait = await self.retry_after(key, amount, minutes=LOGIN_WINDOW_MINUTES)
                    raise RateLimited("登录失败次数过多，请稍后再试", retry_after=wait)
        except LimiterUnavailable:
            return

    async def record_login_failure(self, *, kind: str, account: str, ip: str) -> None:
        try:
            for key, amount in self._login_keys(kind, account, ip):
                await self.try_hit(key, amount, minutes=LOGIN_WINDOW_MINUTES)
        except LimiterUnavailable:
            return
