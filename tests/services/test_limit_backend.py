"""The rate-limit storage's watchdog and circuit (services/limit_backend.py): an unanswered PING opens the
circuit, which abandons the calls waiting for Redis and refuses new ones until a PING is answered; with a
real redis-server frozen (SIGSTOP) and killed."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from services.limit_backend import RedisWatchdog, StorageCircuit, StorageUnavailable, open_limit_backend
from tests.helpers import HANG_SECONDS, wait_until_async
from tests.redis_server import frozen, run_redis_process


async def test_opening_the_circuit_abandons_the_calls_waiting_for_redis() -> None:
    circuit = StorageCircuit()
    never = asyncio.Event()
    waiting = asyncio.create_task(circuit.run(never.wait))
    await asyncio.sleep(0)  # the call is in flight
    threading.Thread(target=circuit.open, args=("frozen",)).start()  # as the watchdog thread does
    with pytest.raises(StorageUnavailable):
        await asyncio.wait_for(waiting, HANG_SECONDS)
    with pytest.raises(StorageUnavailable):  # and new calls are not started
        await circuit.run(never.wait)


async def test_the_watchdog_opens_and_closes_the_circuit() -> None:
    circuit = StorageCircuit()
    answers = {"ping": True}
    watchdog = RedisWatchdog(lambda: answers["ping"], circuit, interval=0.01)
    watchdog.start()
    try:
        answers["ping"] = False
        await wait_until_async(lambda: circuit.is_open, poll=0.01, what="the circuit opened")
        answers["ping"] = True
        await wait_until_async(lambda: not circuit.is_open, poll=0.01, what="the circuit closed")
    finally:
        watchdog.stop()


async def test_a_frozen_then_a_dead_redis_opens_the_circuit(tmp_path: Path) -> None:
    with run_redis_process(tmp_path) as (url, process):
        backend = open_limit_backend(url)
        circuit = backend.circuit
        assert circuit is not None
        try:
            assert await circuit.run(lambda: backend.storage.incr("probe", 60)) == 1
            with frozen(process):
                await wait_until_async(lambda: circuit.is_open, poll=0.01, what="the circuit opened (frozen)")
                with pytest.raises(StorageUnavailable):  # at once: not sent to the frozen server
                    await circuit.run(lambda: backend.storage.incr("probe", 60))
            await wait_until_async(lambda: not circuit.is_open, poll=0.01, what="the circuit closed (thawed)")
            assert await circuit.run(lambda: backend.storage.incr("probe", 60)) >= 2
            process.kill()
            process.wait()
            await wait_until_async(lambda: circuit.is_open, poll=0.01, what="the circuit opened (killed)")
            with pytest.raises(StorageUnavailable):
                await circuit.run(lambda: backend.storage.incr("probe", 60))
        finally:
            backend.close()
