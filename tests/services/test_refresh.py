"""The cache refresher: reads never wait on a reload once loaded; local changes show at once."""

from __future__ import annotations

import threading
import time

import pytest

from services.refresh import WORKER_NAME, Refresher
from tests.helpers import HANG_SECONDS, wait_until


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


def _wait_for(condition) -> None:
    wait_until(condition, poll=0.005)


def test_first_read_and_reads_after_invalidate_load_at_once() -> None:
    source = Source()
    refresher = Refresher(source.load, ttl=60, name="test")
    refresher.ensure()
    assert source.seen == 0 and source.loads == [threading.current_thread().name]
    source.value = 1
    refresher.ensure()
    assert source.seen == 0, "within the ttl nothing is read again"
    refresher.invalidate()
    refresher.ensure()
    assert source.seen == 1 and len(source.loads) == 2


def test_after_the_ttl_a_read_goes_on_while_a_worker_reloads() -> None:
    source = Source()
    refresher = Refresher(source.load, ttl=0.05, name="test")
    refresher.ensure()
    time.sleep(0.06)
    source.value = 2
    source.gate.clear()  # the reload will hang until released
    try:
        refresher.ensure()
        refresher.ensure()  # a second read while the reload runs starts no other
        assert source.seen == 0, "the reader did not wait (the reload cannot end before the gate opens)"
        _wait_for(lambda: len(source.loads) == 2)
        assert source.loads[1] == WORKER_NAME
    finally:
        source.gate.set()  # the worker thread is shared: never leave it held
    _wait_for(lambda: source.seen == 2)
    assert len(source.loads) == 2


def test_a_failed_reload_keeps_the_last_values_and_tries_again_later() -> None:
    source = Source()
    refresher = Refresher(source.load, ttl=0.05, name="test")
    refresher.ensure()
    source.fail, source.value = True, 3
    time.sleep(0.06)
    refresher.ensure()
    _wait_for(lambda: len(source.loads) == 2 and not refresher._reloading)
    assert source.seen == 0
    source.fail = False
    time.sleep(0.06)
    refresher.ensure()
    _wait_for(lambda: source.seen == 3)


def test_a_failed_first_load_is_raised_and_retried() -> None:
    source = Source()
    source.fail = True
    refresher = Refresher(source.load, ttl=60, name="test")
    with pytest.raises(RuntimeError):
        refresher.ensure()
    source.fail = False
    refresher.ensure()
    assert source.seen == 0


def test_every_reload_runs_on_one_long_lived_thread() -> None:
    sources = [Source() for _ in range(3)]
    refreshers = [Refresher(source.load, ttl=0.02, name=f"test-{n}") for n, source in enumerate(sources)]
    for refresher in refreshers:
        refresher.ensure()
    threads_before = threading.active_count()
    for round_number in range(1, 4):
        time.sleep(0.03)
        for source in sources:
            source.value = round_number
        for refresher in refreshers:
            refresher.ensure()
        _wait_for(lambda n=round_number: all(source.seen == n for source in sources))
    assert {name for source in sources for name in source.loads[1:]} == {WORKER_NAME}
    assert threading.active_count() <= threads_before + 1  # the worker, if these were the first reloads


def test_reload_now_loads_on_the_calling_thread_and_leaves_a_failure_to_the_refresh_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = Source()
    refresher = Refresher(source.load, ttl=60, name="test")
    refresher.ensure()
    source.value = 1
    worker = threading.Thread(target=refresher.reload_now, name="admin-change")
    worker.start()
    worker.join()
    assert source.seen == 1 and source.loads[-1] == "admin-change"
    source.fail, source.value = True, 2
    refresher.reload_now()  # logged, not raised: the change itself was made
    assert "could not reload the test" in caplog.text and source.seen == 1
    source.fail = False
    refresher.ensure()  # goes on with the values it has, and asks the refresh thread to try again
    assert source.seen == 1
    _wait_for(lambda: source.seen == 2)
    assert source.loads[-1] == WORKER_NAME, "the reader (maybe the event loop) did not load"


def test_readers_do_not_wait_for_a_reload_after_a_change() -> None:
    """The event loop reads while an admin change waits to reload behind a periodic reload that is
    still running: it goes on with the values it has."""
    source = Source()
    refresher = Refresher(source.load, ttl=0.05, name="test")
    refresher.ensure()
    source.gate.clear()
    time.sleep(0.06)
    refresher.ensure()  # the periodic reload starts on the refresh thread, and is held
    change = threading.Thread(target=refresher.reload_now, name="admin-change")
    try:
        _wait_for(lambda: source.loads[-1] == WORKER_NAME)
        source.value = 4
        change.start()  # waits for the periodic reload to finish
        reader = threading.Thread(target=refresher.ensure, name="reader")
        reader.start()
        reader.join(HANG_SECONDS)  # a reader that waits for the reloads never returns: the gate is shut
        assert not reader.is_alive(), "the reader waited for the reloads"
        assert source.seen == 0
    finally:
        source.gate.set()
    change.join(HANG_SECONDS)
    assert source.seen == 4
