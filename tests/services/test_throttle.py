"""The sign-in and registration throttles (services/throttle.py): reserved atomically on the ``limits``
storages' counters, all or nothing, given back on success, in memory and in a real Redis, and counting in
memory while Redis does not answer."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from services import throttle as throttle_module
from services.errors import RateLimited
from services.limit_backend import StorageCircuit, open_limit_backend
from services.limit_storage import EventLoopMemoryStorage
from services.throttle import (
    LOGIN_FAILURES_PER_ACCOUNT,
    Reservation,
    Throttle,
    ThrottleRule,
    client_bucket,
    login_rules,
    register_rules,
)
from tests.helpers import wait_until_async
from tests.redis_server import frozen, run_redis_process

WINDOW = 900


def rule(key: str, limit: int) -> ThrottleRule:
    return ThrottleRule(key, limit, WINDOW)


async def attempt(throttle: Throttle, rules: Sequence[ThrottleRule]) -> Reservation | RateLimited:
    try:
        return await throttle.reserve(rules, "too many")
    except RateLimited as refused:
        return refused


async def parallel(throttle: Throttle, rules: Sequence[ThrottleRule], count: int) -> list[object]:
    return list(await asyncio.gather(*(attempt(throttle, rules) for _ in range(count))))


def admitted(outcomes: Sequence[object]) -> int:
    return sum(isinstance(outcome, Reservation) for outcome in outcomes)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


class FlakyStore(EventLoopMemoryStorage):
    """A shared storage that fails while ``down`` (as an unreachable Redis), else counts in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self.calls += 1
        if self.down:
            raise ConnectionError("no route")
        return await super().incr(key, expiry, amount)


# ---- in memory -----------------------------------------------------------------------------------


async def test_parallel_attempts_get_at_most_the_limit() -> None:
    outcomes = await parallel(Throttle(), [rule("account", 10)], 60)
    assert admitted(outcomes) == 10
    refusals = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(refusals) == 50
    assert all(r.retry_after is not None and 1 <= r.retry_after <= WINDOW for r in refusals)
    assert all(r.message == "too many" for r in refusals)


async def test_a_refused_attempt_takes_no_slot_in_any_counter() -> None:
    throttle = Throttle()
    for account in ("a", "b"):
        assert isinstance(await attempt(throttle, [rule(account, 10), rule("ip", 2)]), Reservation)
    assert isinstance(await attempt(throttle, [rule("c", 1), rule("ip", 2)]), RateLimited)
    # "c" was not counted by the refusal: from another IP it still has its one slot
    assert isinstance(await attempt(throttle, [rule("c", 1), rule("ip-2", 2)]), Reservation)


async def test_release_gives_the_slot_back() -> None:
    throttle = Throttle()
    first = await throttle.reserve([rule("k", 1)], "too many")
    with pytest.raises(RateLimited):
        await throttle.reserve([rule("k", 1)], "too many")
    await throttle.release(first)
    await throttle.reserve([rule("k", 1)], "too many")


async def test_the_window_ends_and_retry_after_counts_down(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(throttle_module.time, "time", clock.time)  # the module both storages read too
    throttle = Throttle()
    await throttle.reserve([rule("k", 2)], "too many")
    clock.now += 100
    await throttle.reserve([rule("k", 2)], "too many")
    with pytest.raises(RateLimited) as refused:
        await throttle.reserve([rule("k", 2)], "too many")
    assert refused.value.retry_after == WINDOW - 100  # until the window of the first slot ends
    clock.now += WINDOW - 100
    for _ in range(2):  # a new window
        await throttle.reserve([rule("k", 2)], "too many")
    with pytest.raises(RateLimited):
        await throttle.reserve([rule("k", 2)], "too many")


def test_ipv6_clients_are_counted_per_64() -> None:
    assert (
        client_bucket("2001:db8:1:2:aaaa::1") == client_bucket("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    )
    assert client_bucket("2001:db8:1:3::1") != client_bucket("2001:db8:1:2::1")
    assert client_bucket("203.0.113.7") == "203.0.113.7" and client_bucket("unknown") == "unknown"
    assert register_rules("2001:db8::1", 5)[0].key == register_rules("2001:db8::ffff", 5)[0].key


def test_admin_is_counted_per_account_and_ip_users_per_account() -> None:
    admin_here, admin_there = (
        login_rules("admin", "Admin", "1.1.1.1"),
        login_rules("admin", "admin", "2.2.2.2"),
    )
    assert admin_here[0].key != admin_there[0].key, "guesses from one IP do not lock the admin out elsewhere"
    assert admin_here[0].limit == LOGIN_FAILURES_PER_ACCOUNT
    user_here, user_there = login_rules("user", "U@x.io", "1.1.1.1"), login_rules("user", "u@x.io", "2.2.2.2")
    assert user_here[0].key == user_there[0].key
    assert admin_here[1].key.endswith("/1.1.1.1") and user_here[1].key.endswith("/1.1.1.1")


# ---- fallback while the shared store fails -----------------------------------------------------------


async def test_a_failing_shared_store_falls_back_to_memory(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore()
    circuit = StorageCircuit()
    throttle = Throttle(store, circuit)
    caplog.set_level(logging.WARNING, logger="pyaichat.rate_limit")
    store.down = True
    outcomes = [await attempt(throttle, [rule("k", 3)]) for _ in range(5)]
    assert admitted(outcomes) == 3, "still throttled, in this process"
    assert store.calls == 5, "a failed call fails alone: the watchdog, not a call, opens the circuit"
    assert sum("call failed" in r.getMessage() for r in caplog.records) == 1, "logged rarely"

    circuit.open("no answer to PING")  # what the watchdog does
    outcomes = [await attempt(throttle, [rule("j", 3)]) for _ in range(5)]
    assert admitted(outcomes) == 3 and store.calls == 5, "the open circuit skips the store"
    store.down = False
    circuit.close()  # the watchdog's PING was answered
    assert isinstance(await attempt(throttle, [rule("k", 3)]), Reservation), "counted in the store again"
    assert store.calls == 6
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in messages) == 1, messages
    assert sum("answers again" in m for m in messages) == 1, messages


async def test_release_to_a_failed_store_keeps_the_slot_counted() -> None:
    store = FlakyStore()
    throttle = Throttle(store)  # no circuit: every call goes to the store
    reservation = await throttle.reserve([rule("k", 1)], "too many")
    store.down = True
    await throttle.release(reservation)  # no error for the caller
    store.down = False
    with pytest.raises(RateLimited):
        await throttle.reserve([rule("k", 1)], "too many")


# ---- a real Redis ----------------------------------------------------------------------------------


@pytest.fixture
async def redis_throttle(tmp_path: Path) -> AsyncIterator[tuple[Throttle, subprocess.Popen[bytes]]]:
    with run_redis_process(tmp_path) as (url, process):
        backend = open_limit_backend(url)
        yield Throttle.for_backend(backend), process
        backend.close()


async def test_redis_counts_exactly_all_or_nothing_and_releases(
    redis_throttle: tuple[Throttle, subprocess.Popen[bytes]],
) -> None:
    throttle, _process = redis_throttle
    outcomes = await parallel(throttle, [rule("account", 10), rule("ip", 30)], 60)
    assert admitted(outcomes) == 10
    refused = [o for o in outcomes if isinstance(o, RateLimited)]
    assert all(r.retry_after is not None and 1 <= r.retry_after <= WINDOW for r in refused)
    # the 50 refusals took nothing from the IP counter: 20 of its 30 slots are left
    assert admitted(await parallel(throttle, [rule("other", 100), rule("ip", 30)], 40)) == 20
    reservation = await throttle.reserve([rule("single", 1)], "too many")
    await throttle.release(reservation)
    await throttle.reserve([rule("single", 1)], "too many")


async def test_a_frozen_redis_is_left_for_memory_and_rejoined(
    redis_throttle: tuple[Throttle, subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    throttle, process = redis_throttle
    caplog.set_level(logging.WARNING, logger="pyaichat.rate_limit")
    await throttle.reserve([rule("k", 3)], "too many")  # one slot taken in Redis
    with frozen(process):
        outcomes = [await attempt(throttle, [rule("k", 3)]) for _ in range(5)]
        assert admitted(outcomes) == 3, "counted in memory, from zero"
        assert sum("unavailable" in r.getMessage() for r in caplog.records) == 1
    await wait_until_async(
        lambda: any("answers again" in r.getMessage() for r in caplog.records), what="Redis rejoined"
    )
    # Redis decides again ("k" is full in memory). It holds one or two slots: a call that timed out
    # when Redis froze may have sat in the socket and run when it woke (a timeout over-counts, never under).
    later = [await attempt(throttle, [rule("k", 3)]) for _ in range(3)]
    assert 1 <= admitted(later) <= 2 and isinstance(later[-1], RateLimited)
