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
  who is listening (services/peers.py). An instance also hears its own ``:alive``: a subscription that
  has not carried it for ``ECHO_SECONDS`` is taken for dead (a half-open connection, a frozen server)
  and made again.

A change reaches an instance once per carrier: the second copy is skipped, and the confirmation goes out
on every carrier. A message that cannot be read is logged and skipped.

The instance that made a change answers the admin only once every live instance has confirmed it, or
after ``CONFIRM_SECONDS`` (logged, naming the silent ones): the next request on any instance is decided
on the new value. A listener that loses its connection, or whose own heartbeats stop coming back,
reconnects with a growing wait (0.2 s to 5 s) and, once subscribed again, reloads every cache: what
was announced in the meantime did not reach it. The periodic reload (services/refresh.py) bounds the
age of every value whatever happens to the carriers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import threading
import time
from collections import deque
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
RECONNECT_SECONDS = (0.2, 5.0)
HEARTBEAT_SECONDS = 1.0  # ":alive" this often (services/peers.py counts three missed ones as gone)
ECHO_SECONDS = 3.0  # a subscription that has not carried this instance's own ":alive" for this long is dead
STOP_SECONDS = 2.0  # at a stop, how long the listeners get to close (a frozen server holds them)

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
        self._sender = (  # connects when first used
            redis.Redis.from_url(
                self._redis_url,
                socket_timeout=SEND_TIMEOUT_SECONDS,
                socket_connect_timeout=SEND_TIMEOUT_SECONDS,
            )
            if self._redis_url is not None
            else None
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.connected: dict[str, bool] = {}  # carrier → subscribed now (for /api/health and tests)
        self.peers = Peers()
        self._numbers = itertools.count(1)
        self._loop_thread: int | None = None  # the event loop's thread: it never waits for confirmations
        self._replies: dict[str, Send] = {}  # carrier → how the loop publishes on it, while subscribed
        self._replying: set[asyncio.Task[None]] = set()
        self._beating: asyncio.Task[None] | None = None
        self._echoed: dict[str, float] = {}  # carrier → when this instance last heard its own ":alive" there
        self._seen: deque[tuple[str, str]] = deque(maxlen=512)  # recent changes (sender, number) heard

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
        if self._sender is not None:
            try:
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
        if not sent:  # nothing went out (logged above): nobody had anything to confirm
            self.peers.wait(number, 0.0)
            return
        silent = self.peers.wait(number, CONFIRM_SECONDS)
        if silent:
            log.warning(
                "%d instance(s) did not confirm the change of the %s within %.1f s (%s); they reload it "
                "within the period",
                len(silent),
                name,
                CONFIRM_SECONDS,
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
            self._beating = asyncio.create_task(self._beat())
        if self._redis_url is not None:
            self._tasks.append(asyncio.create_task(self._keep("redis", self._listen_redis)))
        if self._conninfo is not None:
            self._tasks.append(asyncio.create_task(self._keep("postgresql", self._listen_postgres)))

    async def stop(self) -> None:
        """Say goodbye and stop listening. From here on a change is announced without waiting."""
        self._loop_thread = None
        pending = [task for task in (self._beating, *self._replying) if task is not None]
        for task in pending:  # no ":alive" or ":confirm" after the ":gone"
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._beating = None
        # the others stop counting this one at once (not after three missed heartbeats)
        await self._to_every_carrier(f":gone {self.instance}")
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_SECONDS)  # a frozen server holds a cancel
        self._tasks.clear()
        self.connected.clear()
        if self._sender is not None:
            self._sender.close()

    def _heard(self, carrier: str, message: str) -> None:
        """A message from the carrier: never lets the listener fail on one it cannot read."""
        try:
            self._received(carrier, message)
        except Exception as exc:
            log.warning("skipped an announcement that could not be read (%r): %s", message[:80], exc)

    def _received(self, carrier: str, message: str) -> None:
        kind, *rest = message.split(" ")
        if kind == ":alive" and len(rest) == 1:
            if rest[0] == self.instance:
                self._echoed[carrier] = time.monotonic()
            else:
                self.peers.heard(rest[0])
        elif kind == ":gone" and len(rest) == 1:
            if rest[0] != self.instance:
                self.peers.gone(rest[0])
        elif kind == ":confirm" and len(rest) == 3:
            changer, number, instance = rest
            if changer == self.instance and _is_number(number):
                self.peers.confirmed(int(number), instance)
        elif kind and not kind.startswith(":") and rest:  # a change; later fields are for newer versions
            sender = rest[0]
            if sender == self.instance:
                return
            numbered = rest[1] if len(rest) > 1 and _is_number(rest[1]) else None
            if numbered is not None:
                if (sender, numbered) in self._seen:  # the same change over the other carrier
                    return
                self._seen.append((sender, numbered))
                self.peers.heard(sender)  # (an older version sends no number: it cannot confirm either)
            self._on_change(kind)  # the cache is stale from here on: no decision uses the old value
            if numbered is not None:
                for each in list(self._replies):  # on every carrier: the changer may hear only one
                    self._reply(each, f":confirm {sender} {numbered} {self.instance}")

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
        except Exception as exc:  # the changer stops waiting after its bound; the echo check notices
            log.debug("could not send %r: %s", message.split(" ")[0], type(exc).__name__)

    async def _to_every_carrier(self, message: str) -> None:
        """Side by side: a carrier whose server hangs does not hold up the others."""
        await asyncio.gather(*(self._publish(send, message) for send in list(self._replies.values())))

    async def _beat(self) -> None:
        while True:
            await self._to_every_carrier(f":alive {self.instance}")
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def _check_echo(self, carrier: str) -> None:
        """Raise (so the listener reconnects) when this instance's own heartbeat has not come back over
        ``carrier`` for ``ECHO_SECONDS``: the subscription, or its server, no longer delivers."""
        if time.monotonic() - self._echoed.get(carrier, 0.0) > ECHO_SECONDS:
            raise ConnectionError(f"own heartbeats not heard back for {ECHO_SECONDS:g} s")

    def _subscribed(self, carrier: str, failures: int) -> None:
        self.connected[carrier] = True
        self._echoed[carrier] = time.monotonic()  # the echo check counts from here
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
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
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
                message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS)
                if message is not None and message.get("type") == "message":
                    data = message["data"]
                    text_ = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
                    self._heard("redis", text_)
                self._check_echo("redis")
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
        # it is closed only with no send on it: psycopg's close() frees the connection at once, under a
        # send that may still be waiting on its socket
        sending = asyncio.Lock()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS * 2):
                sender = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=connect_timeout
                )
                await connection.execute(f"LISTEN {POSTGRES_CHANNEL}")
            out = sender

            async def send(message: str) -> object:
                async with sending:
                    if out.closed:
                        return None
                    return await out.execute("SELECT pg_notify(%s, %s)", (POSTGRES_CHANNEL, message))

            self._replies["postgresql"] = send
            subscribed()
            await self._publish(send, f":alive {self.instance}")
            while True:
                async for notice in connection.notifies(timeout=HEARTBEAT_SECONDS):
                    self._heard("postgresql", notice.payload)
                    self._check_echo("postgresql")
                self._check_echo("postgresql")  # both connections: the one that sends, the one that hears
        finally:
            self._replies.pop("postgresql", None)
            with contextlib.suppress(Exception):
                await connection.close()  # notifies() has ended: nothing else uses it
            if sender is not None:
                await _close_when_idle(sender.close, sending)


async def _close_when_idle(close: Callable[[], Awaitable[None]], sending: asyncio.Lock) -> None:
    """``close`` once no send holds ``sending``. Waits at most ``CONNECT_TIMEOUT_SECONDS`` (a send is
    bounded by its timeout and psycopg's cancel); past that the closing goes on in its own task."""

    async def when_idle() -> None:
        async with sending:
            with contextlib.suppress(Exception):
                await close()

    closing = asyncio.ensure_future(when_idle())
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(closing), timeout=CONNECT_TIMEOUT_SECONDS)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()
