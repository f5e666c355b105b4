"""Cache freshness (services/refresh.py): one reloader thread keeps values younger than their period,
decisions never use an older value (they wait for a reload, then fail closed), local changes load at
once on the changing thread and are announced."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from services.errors import StateUnavailable
from services.refresh import THREAD_NAME, Refresher, Reloader
from tests.helpers import HANG_SECONDS, wait_until

HOUR = 3600.0


class Source:
    def __init__(self) -> None:
        self.value = 0
        self.seen = -1
        self.loads: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def load(self) -> None:
        self.loads.append(threading.current_thread().name)
        self.gate.wait(HANG_SECONDS)  # closed: a load that takes until the test opens it
        if self.fail:
            raise RuntimeError("database gone")
        self.seen = self.value


@pytest.fixture
def reloader() -> Iterator[Reloader]:
    reloader = Reloader()
    yield reloader
    reloader.stop()


def _wait_for(condition) -> None:
    wait_until(condition, poll=0.005)


def test_the_first_read_loads_and_a_fresh_value_is_not_read_again() -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=HOUR)
    refresher.ensure()
    assert source.seen == 0 and source.loads == [threading.current_thread().name]
    source.value = 1
    refresher.ensure()
    assert source.seen == 0 and refresher.fresh()


def test_a_failed_first_load_stops_the_start_and_a_read_gets_a_503() -> None:
    source = Source()
    source.fail = True
    refresher = Refresher(source.load, "test", period=HOUR)
    with pytest.raises(RuntimeError):
        refresher.load_first()
    with pytest.raises(StateUnavailable):
        refresher.ensure()
    source.fail = False
    refresher.ensure()
    assert source.seen == 0


def test_the_reloader_keeps_a_cache_younger_than_its_period_on_its_own_thread(reloader: Reloader) -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=0.2)
    reloader.add(refresher)
    refresher.load_first()
    reloader.start()
    for value in (1, 2, 3):
        source.value = value
        _wait_for(lambda v=value: source.seen == v)  # without a single read
    assert all(name.startswith(THREAD_NAME) for name in source.loads[1:])


def test_caches_due_together_reload_side_by_side(reloader: Reloader) -> None:
    """A slow load (a slow database) holds up its own cache, not the others due with it."""
    slow, quick = Source(), Source()
    slow_refresher = Refresher(slow.load, "slow", period=HOUR)
    quick_refresher = Refresher(quick.load, "quick", period=HOUR)
    for refresher in (slow_refresher, quick_refresher):
        reloader.add(refresher)
        refresher.load_first()
    reloader.start()
    slow.gate.clear()  # the slow cache's next load hangs until the end of the test
    try:
        slow.value, quick.value = 1, 1
        reloader.ask()
        _wait_for(lambda: quick.seen == 1)
        assert slow.seen == 0 and len(slow.loads) == 2, "the slow load is still running meanwhile"
    finally:
        slow.gate.set()
    _wait_for(lambda: slow.seen == 1)


def test_asked_the_reloader_loads_at_once_whatever_the_period(reloader: Reloader) -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=HOUR)
    reloader.add(refresher)
    refresher.load_first()
    reloader.start()
    source.value = 5
    reloader.ask(refresher)  # as an announcement from another instance does
    _wait_for(lambda: source.seen == 5)
    source.value = 6
    reloader.ask()  # every cache, as after a reconnect
    _wait_for(lambda: source.seen == 6)


def test_a_stale_read_that_decides_nothing_goes_on_and_asks_for_a_reload(reloader: Reloader) -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=HOUR)
    reloader.add(refresher)
    refresher.load_first()
    refresher.period = 0.01  # stale from now on; the reloader is not started, so nothing reloads it
    source.gate.clear()
    try:
        refresher.ensure()
        assert source.seen == 0 and len(source.loads) == 1, "the reader did not load (the gate is shut)"
        reloader.start()
        _wait_for(lambda: len(source.loads) == 2)
        assert source.loads[1].startswith(THREAD_NAME)
    finally:
        source.gate.set()


async def test_a_decision_on_a_fresh_value_does_not_wait() -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=HOUR)
    refresher.load_first()
    source.gate.clear()  # a load now would hang
    try:
        await asyncio.wait_for(refresher.until_fresh(), HANG_SECONDS)
        assert len(source.loads) == 1
    finally:
        source.gate.set()


async def test_a_decision_on_a_stale_value_waits_for_the_reload(reloader: Reloader) -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=HOUR)
    reloader.add(refresher)
    refresher.load_first()
    reloader.start()
    refresher.period = 0.05
    await asyncio.sleep(0.06)  # older than the period (the reloader would reload it in 0.025 s anyway)
    source.value = 7
    await refresher.until_fresh(wait=HANG_SECONDS)
    assert source.seen == 7 and refresher.fresh()


async def test_a_decision_that_cannot_get_a_fresh_value_fails_closed(reloader: Reloader) -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=0.05)
    reloader.add(refresher)
    refresher.load_first()
    source.fail = True  # the database is away
    reloader.start()
    await asyncio.sleep(0.06)
    with pytest.raises(StateUnavailable) as refused:
        await refresher.until_fresh(wait=0.2)
    assert refused.value.status == 503 and refused.value.headers() == {"Retry-After": "1"}
    assert source.seen == 0, "the values loaded before stay (for reads that decide nothing)"
    source.fail = False  # back: the reloader's retries bring it
    await refresher.until_fresh(wait=HANG_SECONDS)
    assert refresher.fresh()


async def test_a_decision_waits_for_a_load_that_hangs_only_up_to_its_bound(reloader: Reloader) -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=0.05)
    reloader.add(refresher)
    refresher.load_first()
    source.gate.clear()  # the database does not answer
    reloader.start()
    try:
        await asyncio.sleep(0.06)
        with pytest.raises(StateUnavailable):
            await refresher.until_fresh(wait=0.2)
    finally:
        source.gate.set()


def test_failed_reloads_are_retried_with_a_growing_wait_and_logged_once(
    reloader: Reloader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pyaichat.cache")
    source = Source()
    refresher = Refresher(source.load, "test", period=HOUR)
    reloader.add(refresher)
    refresher.load_first()
    source.fail = True
    reloader.start()
    refresher.outdated()  # as an announced change does: stale until a reload works
    _wait_for(lambda: len(source.loads) >= 5)  # 0.1 + 0.2 + 0.4 + 0.8 s of waits
    started = time.monotonic()
    assert refresher.retry_at > started, "the next try waits"
    assert caplog.text.count("could not reload the test") == 1
    source.fail, source.value = False, 9
    _wait_for(lambda: "loads again" in caplog.text)
    assert source.seen == 9


def test_a_change_loads_on_the_changing_thread_and_is_announced(reloader: Reloader) -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=HOUR)
    reloader.add(refresher)
    refresher.load_first()
    announced: list[str] = []
    reloader.announce = announced.append
    source.value = 1
    worker = threading.Thread(target=refresher.changed, name="admin-change")
    worker.start()
    worker.join()
    assert source.seen == 1 and source.loads[-1] == "admin-change" and announced == ["test"]


def test_a_change_whose_reload_fails_is_still_announced_and_goes_stale(reloader: Reloader) -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=HOUR)
    reloader.add(refresher)
    refresher.load_first()
    announced: list[str] = []
    reloader.announce = announced.append
    source.fail = True
    refresher.changed()  # not raised: the change itself was made
    assert announced == ["test"] and source.seen == 0
    assert not refresher.fresh(), "values from before the change decide nothing"


def test_an_announced_change_makes_the_values_stale_until_reloaded(reloader: Reloader) -> None:
    source = Source()
    refresher = Refresher(source.load, "test", period=HOUR)
    reloader.add(refresher)
    refresher.load_first()
    source.gate.clear()
    reloader.start()
    try:
        refresher.outdated()
        assert not refresher.fresh()
        _wait_for(lambda: len(source.loads) == 2)
    finally:
        source.gate.set()
    _wait_for(refresher.fresh)
