"""Benchmark 8: throughput through nginx with 1, 2 and 4 replicas on one PostgreSQL and one redis-server
(the deploy/ setup, tests/replicas.py), against the loopback upstream answering after 50 ms."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from bench.harness import percentile
from bench.report import Result
from tests.helpers import HANG_SECONDS
from tests.postgres_server import PostgresServer, create_database, require_postgres
from tests.redis_server import redis_binary, run_redis
from tests.replicas import Deployment, deploy, nginx_binary

MODEL = "bench-delay"
HIGH = "1000000"  # the callers' limits out of the way: every call is admitted
LOG_WAIT_SECONDS = 60.0  # the log writers commit within seconds; longer means rows are missing


def missing() -> str | None:
    """What benchmark 8 needs and is not installed (None: nothing); in CI (``CI=true``) a failure."""
    try:
        require_postgres()
        redis_binary()
        nginx_binary()
    except pytest.skip.Exception as reason:
        return str(reason)
    return None


def client_ip(n: int) -> str:
    """The n-th caller address (198.18.0.0/15, the benchmarking range): a new one for every call, so
    each call's row can be found in chat_logs."""
    return f"198.{18 + n // 64_000}.{n // 250 % 256}.{n % 250 + 1}"


@dataclass
class Load:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of the answered calls
    answered: list[str] = field(default_factory=list)  # their caller addresses
    failures: Counter[str] = field(default_factory=Counter)  # what went wrong with the others

    @property
    def rate(self) -> float:
        return len(self.answered) / self.seconds if self.seconds else float("nan")

    @property
    def sent(self) -> int:
        return len(self.answered) + sum(self.failures.values())

    def describe(self) -> str:
        p50, p99 = (1000 * percentile(self.latencies, q) for q in (50, 99))
        return f"{self.rate:.0f} calls/s (p50 {p50:.0f} ms, p99 {p99:.0f} ms)"


async def closed_loop(url: str, *, concurrency: int, seconds: float, first_ip: int = 0) -> Load:
    """``concurrency`` clients each sending the next non-streamed call as soon as the last one is
    answered, for ``seconds``: calls answered per second. aiohttp rather than httpx: the client shares
    the cores with what it measures, and aiohttp spends less of them per call."""
    load = Load()
    body = {"model": MODEL, "messages": [{"role": "user", "content": "benchmark"}], "stream": False}
    counter = iter(range(first_ip, 1 << 30))
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=2)  # under the servers' 5 s
    timeout = aiohttp.ClientTimeout(total=HANG_SECONDS)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client(deadline: float) -> None:
            while time.perf_counter() < deadline:
                ip = client_ip(next(counter))
                started = time.perf_counter()
                try:
                    async with session.post(url, json=body, headers={"X-Forwarded-For": ip}) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError as exc:
                    load.failures[type(exc).__name__] += 1
                    continue
                if status == 200:
                    load.latencies.append(time.perf_counter() - started)
                    load.answered.append(ip)
                else:
                    load.failures[f"HTTP {status}"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(started + seconds) for _ in range(concurrency)))
        load.seconds = time.perf_counter() - started
    return load


def _logged_once(deployment: Deployment, answered: list[str]) -> tuple[bool, str]:
    """Whether chat_logs holds exactly one row for every answered call (and no other row)."""
    expected = Counter(answered)
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        (count,) = deployment.rows("SELECT COUNT(*) FROM chat_logs")[0]
        if count >= len(answered) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    stored = Counter(ip for (ip,) in deployment.rows("SELECT ip_address FROM chat_logs"))
    missing = sum((expected - stored).values())
    extra = sum((stored - expected).values())
    return missing == 0 and extra == 0, f"{sum(stored.values()):,} rows, {missing} missing, {extra} extra"


def _measure(
    base: Path, server: PostgresServer, upstream: str, replicas: int, *, concurrency: int, seconds: float
) -> tuple[Load, Load | None, Load, tuple[bool, str]]:
    """One deployment of ``replicas`` on a new database and a new redis-server: the load through nginx
    (and, with one replica, the same load sent to the replica directly), the warm-up's, and whether
    every call answered was logged once."""
    base.mkdir(parents=True)
    with (
        run_redis(base) as redis_url,
        deploy(
            base,
            replicas=replicas,
            database_url=create_database(server.url),
            RATE_LIMIT_STORAGE=redis_url,
            NICEGUI_REDIS_URL=redis_url,
            GUEST_RPM=HIGH,
            USER_RPM=HIGH,
        ) as deployment,
    ):
        with deployment.client() as http:
            http.post(
                "/api/admin/channels",
                headers=deployment.admin,
                json={
                    "name": MODEL,
                    "base_url": f"{upstream}/delay-50/v1",
                    "api_key": "sk-bench-key-0123456789",
                    "model_id": MODEL,
                    "rpm_limit": int(HIGH),
                },
            ).raise_for_status()
        deployment.wait_for_model(MODEL)
        through_nginx = f"{deployment.nginx.url}/api/chat/completions"
        # warm-up: connections, caches, and the first answer of the channel on every replica
        warm = asyncio.run(closed_loop(through_nginx, concurrency=concurrency, seconds=min(seconds, 2.0)))
        answered = list(warm.answered)
        load = asyncio.run(
            closed_loop(through_nginx, concurrency=concurrency, seconds=seconds, first_ip=warm.sent)
        )
        answered += load.answered
        direct = None
        if replicas == 1:
            direct = asyncio.run(
                closed_loop(
                    f"{deployment.apps[0].base_url}/api/chat/completions",
                    concurrency=concurrency,
                    seconds=seconds,
                    first_ip=warm.sent + load.sent,
                )
            )
            answered += direct.answered
        return load, direct, warm, _logged_once(deployment, answered)


def bench_replicas(
    work_dir: Path,
    server: PostgresServer,
    upstream: str,
    *,
    replica_counts: tuple[int, ...],
    concurrency: int,
    seconds: float,
) -> Result:
    result = Result(
        f"8. Throughput through nginx with {', '.join(map(str, replica_counts))} replicas "
        "(PostgreSQL + Redis, upstream 50 ms)"
    )
    upstream_url = f"{upstream}/delay-50/v1/chat/completions"
    ceiling = asyncio.run(closed_loop(upstream_url, concurrency=concurrency, seconds=seconds))
    result.add(f"upstream called directly, {concurrency} concurrent calls", ceiling.describe())
    rates: dict[int, float] = {}
    failures: Counter[str] = Counter()
    sent = 0
    logged: list[str] = []
    for replicas in replica_counts:
        load, direct, warm, (once, detail) = _measure(
            work_dir / f"replicas-{replicas}",
            server,
            upstream,
            replicas,
            concurrency=concurrency,
            seconds=seconds,
        )
        if direct is not None:
            result.add("1 replica called directly (no nginx)", direct.describe())
            failures += direct.failures
            sent += direct.sent
        plural = "replica" if replicas == 1 else "replicas"
        result.add(f"{replicas} {plural} through nginx", load.describe())
        rates[replicas] = load.rate
        failures += load.failures + warm.failures
        sent += load.sent + warm.sent
        if not once:
            logged.append(f"{replicas} {plural}: {detail}")
        result.notes.append(f"{replicas} {plural}: {detail}")
    if 1 in rates:
        for replicas in replica_counts:
            if replicas != 1:
                result.add(f"scaling ratio {replicas} ÷ 1 replica", rates[replicas] / rates[1])
    errors = sum(failures.values())
    result.add("calls answered with an error or not at all", f"{errors} of {sent:,}", "0", errors == 0)
    if failures:
        result.notes.append("failures: " + ", ".join(f"{n}× {what}" for what, n in failures.most_common()))
    result.add(
        "every answered call logged once in chat_logs",
        "yes" if not logged else "no: " + "; ".join(logged),
        "yes",
        not logged,
    )
    cores = os.cpu_count() or 1
    result.notes += [
        f"{concurrency} concurrent clients in a closed loop for {seconds:g} s per setup (after a "
        "warm-up), a new client address per call; one PostgreSQL server (a new database per setup), a "
        "new redis-server per setup; the replicas run `python -m app` as deployed, nginx runs "
        "deploy/nginx.conf (worker_processes auto); each figure is one run",
        f"the client, nginx, every replica, PostgreSQL, redis-server and the upstream share this machine's "
        f"{cores} cores: more replicas add processes competing for the same cores, so the ratio here is "
        "expected at or below 1. It shows what replication costs on one machine, not how replicas "
        "scale with a core (or a machine) each; no scaling target on such a box",
    ]
    return result
