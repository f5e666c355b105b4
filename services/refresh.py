"""Caches of small tables (channels, settings, the block list): how fresh they are, who reloads them,
and the rule that no decision is taken on an old value (docs/behaviour.md#shared-state).

- Every cache has a **period** (2 s). A value loaded longer ago than that is *stale*: a security or
  limit decision (a block, a rate limit, whether a channel is enabled) never uses it. It waits for a
  reload instead, for at most ``WAIT_SECONDS``, then fails closed (503, :class:`StateUnavailable`).
- The instance's :class:`Reloader` (one thread) keeps every cache younger than its period on its own:
  it reloads each one once half the period has passed, so on a healthy database no request waits.
- A change made through this instance reloads at once on the thread that made it; other instances are
  told through ``services/announce.py`` and reload at once too. The periodic reload is the safety net
  when an announcement is lost.

The age of a value counts from when its load *started*: what the load read can be no older than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text
from sqlmodel import Session

from services.errors import StateUnavailable

log = logging.getLogger("pyaichat.cache")
PERIOD_SECONDS = 2.0
WAIT_SECONDS = 1.5  # how long a decision waits for a stale cache to reload before it is refused
RETRY_SECONDS = (0.1, 1.0)  # a failed reload is tried again after 0.1 s, doubling up to 1 s
THREAD_NAME = "pyaichat-cache-reload"
LOAD_TIMEOUT_MS = 1000  # a cache's query on PostgreSQL: longer (a lock held by a migration) fails the load


def bounded_reads(session: Session) -> None:
    """On PostgreSQL, bound this session's transaction: a query waiting on a lock (another instance's
    ``ALTER TABLE`` during a rolling upgrade) fails the load after a second instead of holding the one
    reloader thread, whose retries then go on. SQLite waits at most its busy timeout already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {LOAD_TIMEOUT_MS}"))
        session.execute(text(f"SET LOCAL lock_timeout = {LOAD_TIMEOUT_MS}"))


class Refresher:
    """The freshness of one cache. ``load`` reads the table and stores the values on the cache's owner;
    it runs on one thread at a time."""

    def __init__(self, load: Callable[[], None], name: str, period: float = PERIOD_SECONDS) -> None:
        self._load = load
        self.name = name
        self.period = period
        self._lock = threading.Lock()  # one load at a time
        # the generation and the load time change together: an outdated() between a load's check of the
        # generation and its setting of the load time would otherwise mark an old value fresh
        self._state = threading.Lock()
        self._loaded_at = -math.inf  # monotonic time the last successful load started
        self._generation = 0  # moved by outdated(): a load that started before it proves nothing
        self._failures = 0
        self.retry_at = -math.inf  # the reloader leaves a failing cache alone until then
        self._listeners: set[Callable[[], None]] = set()  # told after each successful load
        self._listeners_lock = threading.Lock()
        self._reloader: Reloader | None = None

    # ---- state ----------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._loaded_at > -math.inf

    def age(self) -> float:
        return time.monotonic() - self._loaded_at

    def fresh(self) -> bool:
        return time.monotonic() - self._loaded_at < self.period

    def due_at(self) -> float:
        """When the reloader should load again: half a period after the last load, or the retry time."""
        return max(self._loaded_at + self.period / 2, self.retry_at)

    # ---- loading --------------------------------------------------------------------------------
    def reload(self) -> bool:
        """Load now on this thread (after any load running). False, logged, when the load failed: the
        values loaded before stay, and go stale after the period."""
        with self._lock:
            started, generation = time.monotonic(), self._generation
            try:
                self._load()
            except Exception as exc:
                self._failures += 1
                self.retry_at = started + min(RETRY_SECONDS[0] * 2 ** (self._failures - 1), RETRY_SECONDS[1])
                if self._failures == 1 or self._failures % 60 == 0:
                    log.warning("could not reload the %s (%d tries): %s", self.name, self._failures, exc)
                return False
            if self._failures:
                log.info("the %s loads again after %d failed tries", self.name, self._failures)
            self._failures = 0
            self.retry_at = -math.inf
            with self._state:
                current = generation == self._generation
                if current:
                    self._loaded_at = started
            if not current:  # outdated while loading: what was read may be older
                if self._reloader is not None:
                    self._reloader.ask(self)
                return True
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return True

    def load_first(self) -> None:
        """The first load, on this thread, raising what it raised (at start: a database that cannot be
        read stops the start-up rather than serving empty tables)."""
        with self._lock:
            started = time.monotonic()
            self._load()
            self._loaded_at = started

    def changed(self) -> None:
        """This instance changed the table: reload now on this thread (the change shows at once here),
        then tell the other instances. A failed reload leaves the cache to go stale, and the reloader
        to try again."""
        if not self.reload():
            self.outdated()
        if self._reloader is not None:
            self._reloader.announce(self.name)

    def outdated(self) -> None:
        """The table changed since the last load (a change whose reload failed, or one announced by
        another instance): the values are stale from now on, so no decision uses them, and the reloader
        loads them again as soon as it can."""
        with self._state:
            self._generation += 1
            self._loaded_at = min(self._loaded_at, time.monotonic() - self.period)
        if self._reloader is not None:
            self._reloader.ask(self)

    def ask(self) -> None:
        """Reload soon, off this thread (the reloader's), or now without a reloader."""
        if self._reloader is not None:
            self._reloader.ask(self)
        else:
            self.reload()

    # ---- reading --------------------------------------------------------------------------------
    def ensure(self) -> None:
        """For reads that decide nothing (lists shown to people) and for reads off the event loop.
        Never loaded: load now. Stale: ask for a reload and go on with the values loaded."""
        if not self.loaded:
            if not self.reload():
                raise StateUnavailable()
        elif not self.fresh():
            self.ask()

    async def until_fresh(self, wait: float = WAIT_SECONDS) -> None:
        """For decisions on the event loop: returns at once while fresh (the usual case), else waits for
        the reloader, at most ``wait`` seconds, then raises :class:`StateUnavailable`."""
        if self.fresh():
            return
        loop = asyncio.get_running_loop()
        loaded = asyncio.Event()

        def wake() -> None:  # on the loading thread
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(loaded.set)

        self.listen(wake)
        try:
            async with asyncio.timeout(wait):
                while not self.fresh():
                    if self._reloader is None:
                        await asyncio.to_thread(self.reload)
                    else:
                        self._reloader.ask(self)
                        await loaded.wait()
                        loaded.clear()
        except TimeoutError:
            log.warning("the %s is %.1f s old and did not reload within %.1f s", self.name, self.age(), wait)
            raise StateUnavailable() from None
        finally:
            self.unlisten(wake)

    # ---- listeners ------------------------------------------------------------------------------
    def listen(self, listener: Callable[[], None]) -> None:
        with self._listeners_lock:
            self._listeners.add(listener)

    def unlisten(self, listener: Callable[[], None]) -> None:
        with self._listeners_lock:
            self._listeners.discard(listener)


class Reloader:
    """One thread per instance that keeps the caches fresh: each is reloaded half a period after its
    last load, at once when asked (a stale read, another instance's change, a reconnect), and a failed
    load is tried again after a short, growing wait."""

    def __init__(self, caches: Iterable[Refresher] = ()) -> None:
        self.announce: Callable[[str], None] = lambda name: None  # tells other instances (announce.py)
        self._caches: list[Refresher] = []
        self._asked: set[Refresher] = set()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        for cache in caches:
            self.add(cache)

    def add(self, cache: Refresher) -> None:
        cache._reloader = self
        self._caches.append(cache)

    def by_name(self, name: str) -> Refresher | None:
        return next((cache for cache in self._caches if cache.name == name), None)

    def ask(self, cache: Refresher | None = None) -> None:
        """Reload ``cache`` (every cache when None) as soon as the thread can."""
        with self._wake:
            self._asked.update([cache] if cache is not None else self._caches)
            self._wake.notify()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _next(self) -> list[Refresher] | None:
        """The caches to reload now, after waiting for one to fall due; None once stopped."""
        with self._wake:
            while not self._stopped:
                now = time.monotonic()
                # asked or not, a cache whose loads fail waits for its retry time: a database that is
                # away is not hammered by every request that found a stale value
                asked = [c for c in self._caches if c in self._asked]
                due = [c for c in self._caches if c.due_at() <= now or (c in asked and now >= c.retry_at)]
                if due:
                    self._asked.difference_update(due)
                    return due
                times = [c.due_at() for c in self._caches] + [c.retry_at for c in asked]
                wait = min(times, default=math.inf) - now
                self._wake.wait(timeout=None if wait == math.inf else wait)
            return None

    def _run(self) -> None:
        # The caches due together reload side by side: on a slow database a round of them takes as long
        # as the slowest one, not their sum (which, past the period, would leave decisions waiting).
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix=THREAD_NAME) as pool:
            while (due := self._next()) is not None:
                for _ in pool.map(self._reload, due):
                    pass

    @staticmethod
    def _reload(cache: Refresher) -> None:
        try:
            cache.reload()
        except BaseException:  # pragma: no cover - reload() catches what a load raises
            log.exception("the cache reloader failed on the %s", cache.name)
