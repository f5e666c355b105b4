"""Announcements between instances (docs/behaviour.md#shared-state): once a change to a shared table
(settings, block rules, channels) is committed, the instance that made it announces the cache's name,
and every other instance reloads that cache at once instead of at its next periodic reload.

Carriers, each used when configured (both at once when both are):

- **Redis pub/sub** when ``RATE_LIMIT_STORAGE`` is ``redis://`` or ``rediss://``: channel
  ``pyaichat:changes``.
- **PostgreSQL LISTEN/NOTIFY** when the database is PostgreSQL: channel ``pyaichat_changes``.

Messages, on both carriers alike:

- ``<cache name> <instance id> <number>``: a change. An instance skips its own (it reloaded when it
  made the change); every other one marks that cache stale, then confirms.
- ``:confirm <changer id> <number> <instance id>``: the cache is stale there, so its next decision
  waits for a reload that reads the change.
- ``:alive <instance id>`` every second while subscribed, and ``:gone <instance id>`` on a clean stop:
  who is listening (services/peers.py).

The instance that made a change answers the admin only once every live instance has confirmed it, or
after ``CONFIRM_SECONDS`` (logged, naming the silent ones): the next request on any instance is decided
on the new value. A listener that loses its connection, or whose server stops answering, reconnects
with a growing wait (0.2 s to 5 s) and, once subscribed again, reloads every cache: what was announced
in the meantime did not reach it. The periodic reload (services/refresh.py) bounds the age of every
value whatever happens to the carriers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from services.peers import CONFIRM_SECONDS, Peers

log = logging.getLogger("pyaichat.announce")
REDIS_CHANNEL = "pyaichat:changes"
POSTGRES_CHANNEL = "pyaichat_changes"
SEND_TIMEOUT_SECONDS = 0.25  # an announcement must not hold up the admin's request on a frozen Redis
CONNECT_TIMEOUT_SECONDS = 2.0
LIVENESS_SECONDS = 5.0  # a quiet subscription checks its server this often
RECONNECT_SECONDS = (0.2, 5.0)
HEARTBEAT_SECONDS = 1.0  # ":alive" this often (services/peers.py counts three missed ones as gone)

Send = Callable[[str], Awaitable[object]]  # publishes one message on a carrier, from the event loop


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
        on_unconfirmed: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.instance = secrets.token_hex(6)
        self._engine = engine
        self._redis_url = redis_url(storage_uri)
        self._conninfo = postgres_conninfo(str(engine.url.render_as_string(hide_password=False)))
        self._on_change = on_change
        self._on_reconnect = on_reconnect
        self._on_unconfirmed = on_unconfirmed  # counts instances that did not confirm (a metric)
        self._sender: redis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.connected: dict[str, bool] = {}  # carrier → subscribed now (for /api/health and tests)
        self.peers = Peers()
        self._numbers = itertools.count(1)
        self._loop_thread: int | None = None  # the event loop's thread: it never waits for confirmations
        self._replies: dict[str, Send] = {}  # carrier → how the loop publishes on it, while subscribed
        self._replying: set[asyncio.Task[None]] = set()

    @property
    def carriers(self) -> list[str]:
        return [name for name, on in (("redis", self._redis_url), ("postgresql", self._conninfo)) if on]

    # ---- sending (on the thread that made the change) -------------------------------------------
    def announce(self, name: str) -> None:
        """Tell the other instances that ``name`` changed, and wait (at most ``CONFIRM_SECONDS``) until
        every live one has confirmed. Never raises: a carrier that fails is logged, and the periodic
        reload brings the change within the period."""
        number = next(self._numbers)
        awaited = self._awaited()
        self.peers.expect(number, awaited)
        message = f"{name} {self.instance} {number}"
        sent = False
        if self._redis_url is not None:
            try:
                if self._sender is None:
                    self._sender = redis.Redis.from_url(
                        self._redis_url,
                        socket_timeout=SEND_TIMEOUT_SECONDS,
                        socket_connect_timeout=SEND_TIMEOUT_SECONDS,
                    )
                self._sender.publish(REDIS_CHANNEL, message)
                sent = True
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
                sent = True
            except Exception as exc:
                log.warning(
                    "could not announce a change of the %s over PostgreSQL: %s", name, type(exc).__name__
                )
        silent = self.peers.wait(number, CONFIRM_SECONDS if sent else 0.0)
        if silent:
            log.warning(
                "%d instance(s) did not confirm the change of the %s within %.1f s (%s); they reload it "
                "within the period",
                len(silent),
                name,
                CONFIRM_SECONDS if sent else 0.0,
                ", ".join(sorted(silent)),
            )
            self.peers.forget(silent)  # waited for once: again only once they are heard again
            self._on_unconfirmed(len(silent))

    def _awaited(self) -> set[str]:
        """The instances whose confirmation a change waits for: the live ones, unless this instance
        cannot hear confirmations (not listening, or asked on the event loop that would deliver them)."""
        if self._loop_thread is None or threading.get_ident() == self._loop_thread:
            return set()
        if not any(self.connected.values()):
            return set()
        return self.peers.live()

    # ---- listening (tasks on the event loop) ------------------------------------------------------
    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        if self._redis_url or self._conninfo:
            self._tasks.append(asyncio.create_task(self._beat()))
        if self._redis_url is not None:
            self._tasks.append(asyncio.create_task(self._keep("redis", self._listen_redis)))
        if self._conninfo is not None:
            self._tasks.append(asyncio.create_task(self._keep("postgresql", self._listen_postgres)))

    async def stop(self) -> None:
        for send in list(self._replies.values()):  # the others stop waiting for this one's confirmations
            await self._publish(send, f":gone {self.instance}")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._sender is not None:
            self._sender.close()

    def _received(self, carrier: str, message: str) -> None:
        kind, *rest = message.split(" ")
        if kind in (":alive", ":gone") and len(rest) == 1:
            if rest[0] != self.instance:
                if kind == ":alive":
                    self.peers.heard(rest[0])
                else:
                    self.peers.forget(rest)
        elif kind == ":confirm" and len(rest) == 3:
            changer, number, instance = rest
            if changer == self.instance and number.isdigit():
                self.peers.confirmed(int(number), instance)
        elif not kind.startswith(":") and len(rest) in (1, 2):  # a change (older versions send no number)
            sender = rest[0]
            if sender == self.instance:
                return
            self.peers.heard(sender)
            self._on_change(kind)  # the cache is stale from here on: no decision uses the old value
            if len(rest) == 2:
                self._reply(carrier, f":confirm {sender} {rest[1]} {self.instance}")

    def _reply(self, carrier: str, message: str) -> None:
        send = self._replies.get(carrier)
        if send is not None:
            task = asyncio.create_task(self._publish(send, message))
            self._replying.add(task)
            task.add_done_callback(self._replying.discard)

    @staticmethod
    async def _publish(send: Send, message: str) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await send(message)
        except Exception as exc:  # the changer stops waiting after its bound; the listener's check notices
            log.debug("could not send %r: %s", message.split(" ")[0], type(exc).__name__)

    async def _beat(self) -> None:
        while True:
            for send in list(self._replies.values()):
                await self._publish(send, f":alive {self.instance}")
            await asyncio.sleep(HEARTBEAT_SECONDS)

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

            async def send(message: str) -> object:  # on another connection of the client's pool
                return await client.publish(REDIS_CHANNEL, message)

            self._replies["redis"] = send
            subscribed()
            await self._publish(send, f":alive {self.instance}")  # heard before its first beat
            while True:
                message = await pubsub.get_message(timeout=LIVENESS_SECONDS)
                if message is None:
                    async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                        await client.ping()  # the server answers; a restart closes the subscription
                    continue
                if message.get("type") == "message":
                    data = message["data"]
                    self._received("redis", data.decode() if isinstance(data, bytes) else str(data))
        finally:
            self._replies.pop("redis", None)
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _listen_postgres(self, subscribed: Callable[[], None]) -> None:
        import psycopg  # the postgres extra; only imported when the database is PostgreSQL

        assert self._conninfo is not None
        connect_timeout = int(CONNECT_TIMEOUT_SECONDS)
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS * 2):
            connection = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=connect_timeout
            )
        # a second connection publishes: the listening one is held by notifies() while it waits
        sender: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS * 2):
                sender = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=connect_timeout
                )
                await connection.execute(f"LISTEN {POSTGRES_CHANNEL}")
            out = sender

            async def send(message: str) -> object:
                return await out.execute("SELECT pg_notify(%s, %s)", (POSTGRES_CHANNEL, message))

            self._replies["postgresql"] = send
            subscribed()
            await self._publish(send, f":alive {self.instance}")
            while True:
                async for notice in connection.notifies(timeout=LIVENESS_SECONDS):
                    self._received("postgresql", notice.payload)
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    await connection.execute("SELECT 1")  # the server answers, the connection lives
                    await out.execute("SELECT 1")  # and so does the one that confirms
        finally:
            self._replies.pop("postgresql", None)
            for each in (connection, sender):
                if each is not None:
                    with contextlib.suppress(Exception):
                        await each.close()
