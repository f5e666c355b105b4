"""Announcements between instances (services/announce.py) over a real redis-server and a real
PostgreSQL server: a change announced by one bus reaches the others, never its sender; the announcing
thread returns only once every live instance has confirmed it (so the others have marked the cache
stale by then); one that went silent is waited for once, one that stopped cleanly not at all; a
listener that lost its server subscribes again when it is back and asks for every cache to be
reloaded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from app.db import make_engine
from services.announce import ChangeBus, postgres_conninfo, redis_url
from services.peers import CONFIRM_SECONDS
from tests.helpers import wait_until_async
from tests.postgres_server import run_postgres
from tests.redis_server import run_redis


class Listener:
    def __init__(self) -> None:
        self.changes: list[str] = []
        self.reconnects = 0
        self.unconfirmed = 0

    def not_confirmed(self, count: int) -> None:
        self.unconfirmed += count

    def changed(self, name: str) -> None:
        self.changes.append(name)

    def reconnected(self) -> None:
        self.reconnects += 1


@asynccontextmanager
async def _bus(engine: Engine, storage: str, listener: Listener) -> AsyncIterator[ChangeBus]:
    bus = ChangeBus(
        engine=engine,
        storage_uri=storage,
        on_change=listener.changed,
        on_reconnect=listener.reconnected,
        on_unconfirmed=listener.not_confirmed,
    )
    bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


async def _announce(bus: ChangeBus, name: str) -> None:
    await asyncio.to_thread(bus.announce, name)  # as the admin's worker thread does


async def _until(condition: Callable[[], object], what: str) -> None:
    await wait_until_async(condition, poll=0.01, what=what)


async def _acquainted(*buses: ChangeBus) -> None:
    """Until every bus hears every other one (their first ``:alive``)."""
    for bus in buses:
        others = {other.instance for other in buses if other is not bus}
        await _until(lambda b=bus, o=others: o <= b.peers.live(), f"{bus.instance} hears the others")


def test_carriers_follow_the_configuration() -> None:
    assert redis_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redis_url("async+rediss://h:1") == "rediss://h:1"
    assert redis_url("memory://") is None and redis_url("redis+sentinel://h:1/m") is None
    assert postgres_conninfo("sqlite:///data/chat.db") is None
    assert postgres_conninfo("postgresql+psycopg://u:p%40ss@db:5432/app?sslmode=require") == (
        "postgresql://u:p%40ss@db:5432/app?sslmode=require"
    )


async def test_over_redis_a_change_reaches_the_others_only_and_is_confirmed(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")  # SQLite: Redis is the only carrier
    with run_redis(tmp_path) as storage:
        first, second, third = Listener(), Listener(), Listener()
        async with (
            _bus(engine, storage, first) as a,
            _bus(engine, storage, second) as b,
            _bus(engine, storage, third) as c,
        ):
            assert a.carriers == ["redis"]
            await _until(lambda: a.connected.get("redis") and b.connected.get("redis"), "subscribed")
            await _until(lambda: c.connected.get("redis"), "subscribed")
            assert (first.reconnects, second.reconnects, third.reconnects) == (1, 1, 1)
            await _announce(a, "settings")
            await _announce(b, "block_list")
            await _until(lambda: second.changes == ["settings"], "b got a's change")
            await _until(lambda: third.changes == ["settings", "block_list"], "c got both")
            await _until(lambda: first.changes == ["block_list"], "a got b's change")
            # once the buses hear each other, announce() returns only after the others have the change
            # (no polling); announced on the event loop itself, which delivers the confirmations, it
            # does not wait, and does not hang
            await _acquainted(a, b, c)
            for number in range(20):
                await _announce(a, f"cache-{number}")
                assert second.changes[-1:] == third.changes[-1:] == [f"cache-{number}"]
            a.announce("on-the-loop")
            await _until(lambda: second.changes[-1] == third.changes[-1] == "on-the-loop", "delivered")
    engine.dispose()


async def test_a_listener_that_lost_redis_subscribes_again_and_reloads_everything(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    listener = Listener()
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    server = run_redis(tmp_path / "first")
    storage = server.__enter__()
    sender = ChangeBus(engine=engine, storage_uri=storage, on_change=print, on_reconnect=lambda: None)
    async with _bus(engine, storage, listener) as bus:
        try:
            await _until(lambda: bus.connected.get("redis"), "subscribed")
            assert listener.reconnects == 1
        finally:
            server.__exit__(None, None, None)  # the server goes away
        await _until(lambda: bus.connected.get("redis") is False, "the loss noticed")
        await _announce(sender, "settings")  # lost: nobody can carry it (logged, never raised)
        with run_redis(tmp_path / "second", port=int(storage.rsplit(":", 1)[1])):
            await _until(lambda: listener.reconnects == 2, "subscribed again, every cache asked to reload")
            await _announce(sender, "channels")
            await _until(lambda: listener.changes == ["channels"], "announcements flow again")
    await sender.stop()
    engine.dispose()


async def test_over_postgresql_notify_a_change_reaches_the_others_and_is_confirmed(tmp_path: Path) -> None:
    with run_postgres() as database_url:
        engine = make_engine(database_url)
        first, second = Listener(), Listener()
        try:
            async with _bus(engine, "memory://", first) as a, _bus(engine, "memory://", second) as b:
                assert a.carriers == ["postgresql"]
                await _until(
                    lambda: a.connected.get("postgresql") and b.connected.get("postgresql"), "listening"
                )
                await _announce(a, "channels")
                await _until(lambda: second.changes == ["channels"], "b got a's change")
                assert first.changes == [], "a skips its own announcement"
                await _announce(b, "settings")
                await _until(lambda: first.changes == ["settings"], "a got b's change")
                await _acquainted(a, b)  # from here an announcement returns once confirmed
                for number in range(10):
                    await _announce(b, f"cache-{number}")
                    assert first.changes[-1:] == [f"cache-{number}"]
        finally:
            engine.dispose()


async def test_a_silent_instance_is_waited_for_once_and_a_stopped_one_not_at_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with run_redis(tmp_path) as storage:
        first, second, third = Listener(), Listener(), Listener()
        async with _bus(engine, storage, first) as a, _bus(engine, storage, second) as b:
            c = ChangeBus(engine=engine, storage_uri=storage, on_change=third.changed, on_reconnect=print)
            c.start()
            await _acquainted(a, b, c)
            for task in c._tasks:  # c freezes: no stop, no ":gone", no more confirmations
                task.cancel()
            assert c.instance in a.peers.live()
            with caplog.at_level(logging.WARNING, logger="pyaichat.announce"):
                started = time.monotonic()
                await _announce(a, "settings")
                waited = time.monotonic() - started
            assert second.changes == ["settings"]
            assert waited >= CONFIRM_SECONDS * 0.9, "returned before the silent instance's bound"
            silent = f"did not confirm the change of the settings within 1.0 s ({c.instance})"
            assert silent in caplog.text
            assert first.unconfirmed == 1, "counted (the metric pyaichat_changes_unconfirmed_total)"
            assert c.instance not in a.peers.live(), "forgotten until heard again"
            await _announce(a, "channels")  # only b is awaited now
            assert second.changes == ["settings", "channels"]
            await c.stop()

            await b.stop()  # a clean stop says ":gone": nobody waits for it
            await _until(lambda: b.instance not in a.peers.live(), "b's goodbye heard")
            await _announce(a, "block_list")
            assert first.unconfirmed == 1
    engine.dispose()


def test_what_arrives_on_the_channel_is_read_carefully(tmp_path: Path) -> None:
    """Without servers: a change heard over both carriers is taken once; an older version's change (no
    number) is taken but its sender is not waited for; a newer version's extra fields do not lose the
    change; a message that cannot be read is logged and skipped, never ending the listener; a carrier
    that stopped carrying this instance's own heartbeat is taken for dead."""
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    listener = Listener()
    bus = ChangeBus(
        engine=engine, storage_uri="memory://", on_change=listener.changed, on_reconnect=listener.reconnected
    )
    bus._received("redis", "settings aaaa 7")
    bus._received("postgresql", "settings aaaa 7")  # the same change over the other carrier
    assert listener.changes == ["settings"] and bus.peers.live() == {"aaaa"}
    bus._received("redis", "channels old-version")
    assert listener.changes == ["settings", "channels"] and bus.peers.live() == {"aaaa"}
    bus._received("redis", "block_list bbbb 3 some-future-field")
    assert listener.changes[-1] == "block_list" and bus.peers.live() == {"aaaa", "bbbb"}
    bus._received("redis", f"settings {bus.instance} 1")  # its own: skipped
    assert len(listener.changes) == 3
    bus.peers.expect(5, {"aaaa"})
    bus._received("redis", f":confirm {bus.instance} ²5 aaaa")  # not a number: ignored
    bus._received("redis", f":confirm {bus.instance} 5 aaaa")
    assert bus.peers.wait(5, 0.0) == set()
    bus._received("redis", ":gone bbbb")
    assert bus.peers.live() == {"aaaa"}
    for odd in ("", " ", ":confirm", ":alive", "::", "x " * 50):
        bus._heard("redis", odd)
    assert len(listener.changes) == 4 and listener.changes[-1] == "x"  # "x x x …": a change of "x"
    bus._echoed["redis"] = time.monotonic()
    bus._check_echo("redis")
    bus._echoed["redis"] = time.monotonic() - 10
    with pytest.raises(ConnectionError):
        bus._check_echo("redis")
    engine.dispose()
