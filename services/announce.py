"""Announcements between instances (docs/behaviour.md#shared-state): once a change to a shared table
(settings, block rules, channels) is committed, the instance that made it announces the cache's name,
and every other instance reloads that cache at once instead of at its next periodic reload.

Carriers, each used when configured (both at once when both are):

- **Redis pub/sub** when ``RATE_LIMIT_STORAGE`` is ``redis://`` or ``rediss://``: channel
  ``pyaichat:changes``.
- **PostgreSQL LISTEN/NOTIFY** when the database is PostgreSQL: channel ``pyaichat_changes``.

A message is ``<cache name> <instance id>``; an instance skips its own (it reloaded when it made the
change). A listener that loses its connection, or whose server stops answering, reconnects with a
growing wait (0.2 s to 5 s) and, once subscribed again, reloads every cache: what was announced in the
meantime did not reach it. The periodic reload (services/refresh.py) bounds the age of every value
whatever happens to the carriers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

log = logging.getLogger("pyaichat.announce")
REDIS_CHANNEL = "pyaichat:changes"
POSTGRES_CHANNEL = "pyaichat_changes"
SEND_TIMEOUT_SECONDS = 0.25  # an announcement must not hold up the admin's request on a frozen Redis
CONNECT_TIMEOUT_SECONDS = 2.0
LIVENESS_SECONDS = 5.0  # a quiet subscription checks its server this often
RECONNECT_SECONDS = (0.2, 5.0)


def redis_url(storage_uri: str) -> str | None:
    """The plain Redis URL of a ``RATE_LIMIT_STORAGE`` that pub/sub can use, else None."""
    plain = storage_uri.removeprefix("async+")
    return plain if plain.startswith(("redis://", "rediss://")) else None


def postgres_conninfo(database_url: str) -> str | None:
    """A libpq connection string for psycopg when the database is PostgreSQL, else None."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeBus:
    def __init__(
        self,
        *,
        engine: Engine,
        storage_uri: str,
        on_change: Callable[[str], None],
        on_reconnect: Callable[[], None],
    ) -> None:
        self.instance = secrets.token_hex(6)
        self._engine = engine
        self._redis_url = redis_url(storage_uri)
        self._conninfo = postgres_conninfo(str(engine.url.render_as_string(hide_password=False)))
        self._on_change = on_change
        self._on_reconnect = on_reconnect
        self._sender: redis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.connected: dict[str, bool] = {}  # carrier → subscribed now (for /api/health and tests)

    @property
    def carriers(self) -> list[str]:
        return [name for name, on in (("redis", self._redis_url), ("postgresql", self._conninfo)) if on]

    # ---- sending (on the thread that made the change) -------------------------------------------
    def announce(self, name: str) -> None:
        """Tell the other instances that ``name`` changed. Never raises: a carrier that fails is logged,
        and the periodic reload brings the change within the period."""
        message = f"{name} {self.instance}"
        if self._redis_url is not None:
            try:
                if self._sender is None:
                    self._sender = redis.Redis.from_url(
                        self._redis_url,
                        socket_timeout=SEND_TIMEOUT_SECONDS,
                        socket_connect_timeout=SEND_TIMEOUT_SECONDS,
                    )
                self._sender.publish(REDIS_CHANNEL, message)
            except Exception as exc:
                log.warning("could not announce a change of the %s over Redis: %s", name, type(exc).__name__)
        if self._conninfo is not None:
            try:
                with self._engine.connect() as connection:
                    connection.execute(
                        text("SELECT pg_notify(:channel, :message)"),
                        {"channel": POSTGRES_CHANNEL, "message": message},
                    )
                    connection.commit()
            except Exception as exc:
                log.warning(
                    "could not announce a change of the %s over PostgreSQL: %s", name, type(exc).__name__
                )

    # ---- listening (tasks on the event loop) ------------------------------------------------------
    def start(self) -> None:
        if self._redis_url is not None:
            self._tasks.append(asyncio.create_task(self._keep("redis", self._listen_redis)))
        if self._conninfo is not None:
            self._tasks.append(asyncio.create_task(self._keep("postgresql", self._listen_postgres)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._sender is not None:
            self._sender.close()

    def _received(self, message: str) -> None:
        name, _, sender = message.partition(" ")
        if sender != self.instance:
            self._on_change(name)

    def _subscribed(self, carrier: str, failures: int) -> None:
        self.connected[carrier] = True
        if failures:
            log.info("announcements over %s are back", carrier)
        self._on_reconnect()  # announcements may have been missed before (or while) subscribing

    async def _keep(self, carrier: str, listen: Callable[[Callable[[], None]], Awaitable[None]]) -> None:
        """Run ``listen`` for good: reconnect after every failure, waiting longer each time."""
        failures = 0

        def subscribed() -> None:
            nonlocal failures
            self._subscribed(carrier, failures)
            failures = 0

        while True:
            try:
                await listen(subscribed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failures == 0:
                    log.warning("announcements over %s lost: %s; reconnecting", carrier, type(exc).__name__)
            self.connected[carrier] = False
            failures += 1
            await asyncio.sleep(min(RECONNECT_SECONDS[0] * 2 ** (failures - 1), RECONNECT_SECONDS[1]))

    async def _listen_redis(self, subscribed: Callable[[], None]) -> None:
        assert self._redis_url is not None
        client = aioredis.Redis.from_url(
            self._redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,  # a frozen server fails the ping below
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                await pubsub.subscribe(REDIS_CHANNEL)
            subscribed()
            while True:
                message = await pubsub.get_message(timeout=LIVENESS_SECONDS)
                if message is None:
                    async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                        await client.ping()  # the server answers; a restart closes the subscription
                    continue
                if message.get("type") == "message":
                    data = message["data"]
                    self._received(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _listen_postgres(self, subscribed: Callable[[], None]) -> None:
        import psycopg  # the postgres extra; only imported when the database is PostgreSQL

        assert self._conninfo is not None
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS * 2):
            connection = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_SECONDS)
            )
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                await connection.execute(f"LISTEN {POSTGRES_CHANNEL}")
            subscribed()
            while True:
                async for notice in connection.notifies(timeout=LIVENESS_SECONDS):
                    self._received(notice.payload)
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    await connection.execute("SELECT 1")  # the server answers, the connection lives
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
