"""Where the counters of the rate limits and the sign-in throttles live, and whether that place answers.

``RATE_LIMIT_STORAGE=memory://`` keeps them in this process. ``redis://…`` shares them between instances
through one ``limits`` Redis storage (redis-py's asyncio client), used by the chat limits (moving window)
and by the throttles (``incr``).

What ``limits`` does not do, and this module adds: (1) a fast verdict on a *frozen* Redis. The storage
passes ``socket_timeout`` to redis-py, which measures it on the event loop, so it also counts the time
the loop was busy with other requests: with 250 ms on every call, a burst against a healthy Redis gets
false time-outs (figures in docs/reliability/abuse.md). (2) a fallback: ``limits`` has none (the in-memory
fallback of Flask-Limiter is that extension's, not the library's), and the throttles must keep counting
while Redis is away.

So a watchdog thread PINGs Redis every :data:`PROBE_INTERVAL_SECONDS` through a synchronous ``limits``
storage (``check()``) whose socket timeout, :data:`PROBE_TIMEOUT_SECONDS`, the kernel measures. A PING
without answer opens the :class:`StorageCircuit`: calls in flight are abandoned at once and new ones are
not started (chat answers 503 with ``Retry-After``, the throttles count in this process), so a frozen
Redis costs a call at most about 250 ms instead of redis-py's default 5 s. The first PING answered closes
it; both transitions are logged once. The calls themselves keep long backstops
(:data:`CALL_TIMEOUT_SECONDS`, :data:`POOL_WAIT_SECONDS`), and a call that fails (a dead Redis refuses at
once) fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from limits.aio.storage import Storage as AsyncStorage
from limits.storage import Storage as SyncStorage
from limits.storage import storage_from_string
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.limit_storage import EventLoopMemoryStorage

log = logging.getLogger("pyaichat.rate_limit")

T = TypeVar("T")
PROBE_INTERVAL_SECONDS = 0.05
PROBE_TIMEOUT_SECONDS = 0.2  # + the interval: a frozen Redis is given up within 250 ms
CALL_TIMEOUT_SECONDS = 5.0  # redis-py's default; only a backstop (the watchdog abandons calls first)
POOL_WAIT_SECONDS = 10.0
REDIS_POOL_SIZE = 64
FAILED_CALL_LOG_SECONDS = 10.0  # at most one line per this many seconds about calls that failed


class StorageUnavailable(Exception):
    """The shared storage did not answer (or its circuit is open)."""


def async_storage_uri(uri: str) -> str:
    """``memory://`` and ``redis://`` as the asynchronous storages the async limiter needs."""
    return uri if uri.startswith("async+") else f"async+{uri}"


class StorageCircuit:
    """Open while Redis does not answer: calls fail at once instead of waiting for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: set[asyncio.Timeout] = set()
        self._quiet_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._down_since is not None

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``'s result; StorageUnavailable when the circuit is open, when the call fails, or when
        the circuit opens while it waits (the call is then cancelled)."""
        if self._down_since is not None:
            raise StorageUnavailable()
        self._loop = self._loop or asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:  # brought forward by open()
                self._in_flight.add(deadline)
                try:
                    return await call()
                finally:
                    self._in_flight.discard(deadline)
        except Exception as exc:
            now = time.monotonic()
            if self._down_since is None and now >= self._quiet_until:  # PINGs answered, yet this failed
                self._quiet_until = now + FAILED_CALL_LOG_SECONDS
                log.warning("a rate-limit storage (Redis) call failed: %s", type(exc).__name__)
            raise StorageUnavailable() from None

    def open(self, reason: str) -> None:
        """Redis does not answer (the watchdog's thread): log once, abandon the calls in flight."""
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        log.error(
            "rate-limit storage (Redis) unavailable (%s): chat calls answer 503 and the sign-in and "
            "registration throttles count in this process until it answers",
            reason,
        )
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._abandon_in_flight)

    def close(self) -> None:
        """Redis answered (any thread)."""
        with self._lock:
            if self._down_since is None:
                return
            down_for = time.monotonic() - self._down_since
            self._down_since = None
        log.warning(
            "rate-limit storage (Redis) answers again after %.1f s: shared counting resumes", down_for
        )

    def _abandon_in_flight(self) -> None:
        now = asyncio.get_running_loop().time()
        for deadline in list(self._in_flight):
            deadline.reschedule(now)


class RedisWatchdog:
    """A daemon thread that PINGs Redis and opens or closes the circuit."""

    def __init__(
        self, ping: Callable[[], bool], circuit: StorageCircuit, interval: float = PROBE_INTERVAL_SECONDS
    ) -> None:
        self._ping = ping
        self._circuit = circuit
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pyaichat-redis-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            if self._ping():
                self._circuit.close()
            else:
                self._circuit.open(f"no answer to PING within {PROBE_TIMEOUT_SECONDS * 1000:.0f} ms")


@dataclass
class LimitBackend:
    """The ``limits`` storage, and for Redis its circuit and watchdog."""

    storage: AsyncStorage
    circuit: StorageCircuit | None = None
    watchdog: RedisWatchdog | None = None

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()


def _storage(uri: str, **options: Any) -> Any:
    storage = storage_from_string(uri, **options)
    if not isinstance(storage, AsyncStorage | SyncStorage):  # pragma: no cover - limits' own types
        raise TypeError(f"{uri} is not a limits storage")
    return storage


def open_limit_backend(storage_uri: str = "memory://", *, watch: bool = True) -> LimitBackend:
    """The backend for ``RATE_LIMIT_STORAGE``; for Redis with its watchdog running (``watch``)."""
    uri = async_storage_uri(storage_uri)
    if uri.startswith("async+memory://"):
        return LimitBackend(EventLoopMemoryStorage())
    plain = uri.removeprefix("async+")
    timeouts: dict[str, Any] = {
        "socket_timeout": CALL_TIMEOUT_SECONDS,
        "socket_connect_timeout": CALL_TIMEOUT_SECONDS,
        "retry": AsyncRetry(NoBackoff(), 0),  # a failed call is reported at once
    }
    options: dict[str, Any] = {"implementation": "redispy"}  # limits' default, coredis, is pinned below 6
    if plain.startswith(("redis://", "rediss://")):
        # a blocking pool: a burst waits for a connection instead of opening unboundedly many
        options["connection_pool"] = BlockingConnectionPool.from_url(
            plain, max_connections=REDIS_POOL_SIZE, timeout=POOL_WAIT_SECONDS, **timeouts
        )
    else:  # sentinel and cluster: the same timeouts on the clients limits builds
        options.update(timeouts)
    storage: AsyncStorage = _storage(uri, **options)
    probe: SyncStorage = _storage(  # one PING, one verdict: no retries
        plain,
        socket_timeout=PROBE_TIMEOUT_SECONDS,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    circuit = StorageCircuit()
    watchdog = RedisWatchdog(probe.check, circuit)
    if watch:
        watchdog.start()
    return LimitBackend(storage, circuit, watchdog)
