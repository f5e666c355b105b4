"""The in-process storage behind ``RATE_LIMIT_STORAGE=memory://``.

A ``limits`` storage backend (``limits.aio.storage.Storage`` + ``MovingWindowSupport``) for the async
moving-window strategy, made for one asyncio event loop. The library's own ``async+memory`` storage
runs an expiry pass after nearly every hit that visits every key and hands each key's bisect to a
worker thread (``asyncio.to_thread``): two or three thread-pool hops per chat call, which showed up as
the largest avoidable cost of a call in the profile of benchmark 1.

Here each key is a deque of hit times, oldest first. A hit drops the expired entries at the old end
(amortised O(1)), compares the count with the limit and appends, with no ``await`` in between, so
concurrent requests on the loop are admitted exactly. Keys that saw no hit for longer than their window
and fixed-window counters past their end are swept inline at most every :data:`SWEEP_SECONDS`.
"""

from __future__ import annotations

import time
from collections import deque

from limits.aio.storage import MovingWindowSupport, Storage

SWEEP_SECONDS = 10.0


class EventLoopMemoryStorage(Storage, MovingWindowSupport):
    STORAGE_SCHEME: list[str] | None = ["async+pyaichat-memory"]  # noqa: RUF012 - as limits declares it

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: object) -> None:
        self._windows: dict[str, tuple[int, deque[float]]] = {}  # key → (window seconds, hit times)
        self._counters: dict[str, tuple[float, int]] = {}  # key → (expires at, count): fixed windows
        self._next_sweep = time.time() + SWEEP_SECONDS
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    # ---- moving window (what the rate limiter uses) -----------------------------------------------
    def _live(self, key: str, expiry: int, now: float) -> deque[float]:
        entry = self._windows.get(key)
        if entry is None:
            hits: deque[float] = deque()
            self._windows[key] = (expiry, hits)
            return hits
        hits = entry[1]
        cutoff = now - expiry
        while hits and hits[0] < cutoff:
            hits.popleft()
        return hits

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._live(key, expiry, now)
        if len(hits) + amount > limit:
            return False
        hits.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        if key not in self._windows:
            return now, 0
        hits = self._live(key, expiry, now)
        return (hits[0], len(hits)) if hits else (now, 0)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_SECONDS
        for key, (expiry, hits) in list(self._windows.items()):
            if not hits or hits[-1] < now - expiry:
                del self._windows[key]
        for key, (expires_at, _) in list(self._counters.items()):
            if expires_at <= now:
                del self._counters[key]

    # ---- the rest of the storage interface (fixed windows, housekeeping) ---------------------------
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """The counter after adding ``amount`` (negative gives back); a new window starts at its first
        ``incr`` after the old one ended. Used by the sign-in and registration throttles."""
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        expires_at, count = self._counters.get(key, (0.0, 0))
        if expires_at <= now:
            expires_at, count = now + expiry, 0
        self._counters[key] = (expires_at, count + amount)
        return count + amount

    async def get(self, key: str) -> int:
        expires_at, count = self._counters.get(key, (0.0, 0))
        return count if expires_at > time.time() else 0

    async def get_expiry(self, key: str) -> float:
        return self._counters.get(key, (time.time(), 0))[0]

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        cleared = len(self._windows) + len(self._counters)
        self._windows.clear()
        self._counters.clear()
        return cleared

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)
        self._counters.pop(key, None)
