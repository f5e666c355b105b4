"""Benchmark 4 (exactness): for N = 1, 5, 60, 10·N concurrent guest requests admit exactly N, every run."""

from __future__ import annotations

import asyncio

import httpx

from bench.harness import Gateway
from bench.report import Result


async def _run(gw: Gateway, limit: int, ip: str) -> tuple[int, list[str]]:
    """Admitted requests, and what went wrong with the others (anything but a 200 or a 429)."""
    body = {"model": "bench-fast", "messages": [{"role": "user", "content": "x"}]}
    count = 10 * limit
    limits = httpx.Limits(max_connections=min(count, 200), max_keepalive_connections=min(count, 200))
    async with httpx.AsyncClient(base_url=gw.url, timeout=60, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.post("/api/chat/completions", json=body, headers={"X-Forwarded-For": ip})
                for _ in range(count)
            ),
            return_exceptions=True,
        )
    failures = [
        repr(r) if isinstance(r, BaseException) else f"HTTP {r.status_code}"
        for r in responses
        if isinstance(r, BaseException) or r.status_code not in (200, 429)
    ]
    admitted = sum(1 for r in responses if not isinstance(r, BaseException) and r.status_code == 200)
    return admitted, failures


async def bench_exactness(
    gw: Gateway, storage: str, *, runs: int, limits: tuple[int, ...] = (1, 5, 60), database: str = ""
) -> Result:
    result = Result(f"4. Rate limiter exactness{database}, {storage} storage")
    run_id = 0
    failures: list[str] = []
    for limit in limits:
        gw.set_config(guest_rpm=limit)
        admitted = []
        for _ in range(runs):
            run_id += 1
            count, problems = await _run(gw, limit, f"198.19.{run_id // 250}.{run_id % 250 + 1}")
            admitted.append(count)
            failures += problems
        exact = all(a == limit for a in admitted)
        result.add(
            f"N = {limit}, {10 * limit} concurrent, {runs} runs: admitted",
            f"min {min(admitted)} / max {max(admitted)}",
            f"exactly {limit} every run",
            exact,
        )
    sent = runs * sum(10 * limit for limit in limits)
    result.add(
        "requests answered with neither 200 nor 429", f"{len(failures)} of {sent:,}", "0", not failures
    )
    if failures:
        result.notes.append("not answered: " + ", ".join(sorted(set(failures))))
    gw.set_config(guest_rpm=1_000_000)
    return result
