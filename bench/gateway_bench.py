"""Benchmarks 1–5 and 7: the gateway against the same loopback upstream called directly."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx

from bench.harness import Gateway, median, percentile
from bench.report import Result

BODY = {"messages": [{"role": "user", "content": "benchmark"}]}


def _body(model: str, *, stream: bool) -> dict:
    return {**BODY, "model": model, "stream": stream}


async def _timed_post(
    client: httpx.AsyncClient, url: str, body: dict, headers: dict[str, str] | None = None
) -> float:
    started = time.perf_counter()
    response = await client.post(url, json=body, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:500]}")
    return time.perf_counter() - started


async def _warm_up(
    client: httpx.AsyncClient, url: str, body: dict, times: int, headers: dict[str, str] | None = None
) -> None:
    """``times`` answered requests. A gateway that has just started may refuse its first ones with a 503
    (its caches still loading on a busy machine, the fail-closed wait over): it is asked again until it
    answers, which is readiness, not part of any measurement."""
    deadline = time.monotonic() + 120
    answered = 0
    while answered < times:
        response = await client.post(url, json=body, headers=headers)
        if response.status_code == 200:
            answered += 1
        elif response.status_code != 503 or time.monotonic() > deadline:
            raise RuntimeError(f"{url} answered {response.status_code} warming up: {response.text[:500]}")
        else:
            await asyncio.sleep(0.1)


async def interleaved_latencies(
    targets: dict[str, tuple[str, dict] | tuple[str, dict, dict[str, str]]],
    rounds: int,
    per_round: int,
    warmups: int = 5,
) -> dict[str, list[list[float]]]:
    """Non-streamed request latencies, alternating between the targets (URL, body and, if given,
    headers) request by request, after ``warmups`` requests to each."""
    results: dict[str, list[list[float]]] = {name: [] for name in targets}
    async with httpx.AsyncClient(timeout=60) as client:
        for url, body, *headers in targets.values():  # warm up connections and caches
            await _warm_up(client, url, body, warmups, *headers)
        for round_number in range(rounds):
            samples: dict[str, list[float]] = {name: [] for name in targets}
            order = list(targets) if round_number % 2 == 0 else list(reversed(targets))
            for _ in range(per_round):
                for name in order:
                    url, body, *headers = targets[name]
                    samples[name].append(await _timed_post(client, url, body, *headers))
            for name, values in samples.items():
                results[name].append(values)
    return results


def _ratio_rows(
    result: Result,
    rounds: dict[str, list[list[float]]],
    base: str,
    other: str,
    *,
    ratio_target: float,
    added_p99_target_ms: float | None,
    label: str,
    base_row: bool = True,
    added: str = "added",
) -> None:
    p50_ratios = [
        percentile(o, 50) / percentile(b, 50) for b, o in zip(rounds[base], rounds[other], strict=True)
    ]
    p99_ratios = [
        percentile(o, 99) / percentile(b, 99) for b, o in zip(rounds[base], rounds[other], strict=True)
    ]
    added_p50 = [
        1000 * (percentile(o, 50) - percentile(b, 50))
        for b, o in zip(rounds[base], rounds[other], strict=True)
    ]
    added_p99 = [
        1000 * (percentile(o, 99) - percentile(b, 99))
        for b, o in zip(rounds[base], rounds[other], strict=True)
    ]
    base_all = [v for r in rounds[base] for v in r]
    if base_row:
        result.add(
            f"{base} p50 / p99",
            f"{1000 * percentile(base_all, 50):.2f} / {1000 * percentile(base_all, 99):.2f}",
            unit="ms",
        )
    other_all = [v for r in rounds[other] for v in r]
    result.add(
        f"{other} p50 / p99",
        f"{1000 * percentile(other_all, 50):.2f} / {1000 * percentile(other_all, 99):.2f}",
        unit="ms",
    )
    result.add(
        f"{label} p50 ratio (median of rounds)",
        median(p50_ratios),
        f"≤ {ratio_target}",
        median(p50_ratios) <= ratio_target,
    )
    result.add(
        f"{label} p99 ratio (median of rounds)",
        median(p99_ratios),
        f"≤ {ratio_target}" if added_p99_target_ms is None else "",
        (median(p99_ratios) <= ratio_target) if added_p99_target_ms is None else None,
    )
    result.add(f"{added} p50", median(added_p50), unit="ms")
    if added_p99_target_ms is not None:
        result.add(
            f"{added} p99 (median of rounds)",
            median(added_p99),
            f"≤ {added_p99_target_ms} ms",
            median(added_p99) <= added_p99_target_ms,
            unit="ms",
        )


async def bench_nonstream(
    gw: Gateway, upstream: str, *, rounds: int, per_round: int, database: str = "", warmups: int = 5
) -> Result:
    """``database``: what the title says of the gateway's database (`` (PostgreSQL)``; none: SQLite)."""
    result = Result(f"1. Non-streaming call{database}, upstream answers after 50 ms")
    body = _body("bench-delay", stream=False)
    targets: dict[str, tuple[str, dict] | tuple[str, dict, dict[str, str]]] = {
        "direct": (f"{upstream}/delay-50/v1/chat/completions", body),
        "gateway": (f"{gw.url}/api/chat/completions", body),
        "gateway, personal key": (
            f"{gw.url}/api/chat/completions",
            body,
            {"Authorization": f"Bearer {gw.personal_key()}"},
        ),
    }
    rounds_data = await interleaved_latencies(targets, rounds, per_round, warmups)
    _ratio_rows(
        result,
        rounds_data,
        "direct",
        "gateway",
        ratio_target=1.04,
        added_p99_target_ms=5.0,
        label="gateway ÷ direct",
    )
    _ratio_rows(
        result,
        rounds_data,
        "direct",
        "gateway, personal key",
        ratio_target=1.04,
        added_p99_target_ms=5.0,
        label="gateway with a personal key ÷ direct",
        base_row=False,
        added="added with a personal key,",
    )
    result.notes.append(
        f"{rounds} interleaved rounds × {per_round} requests per target, one keep-alive client; "
        "'gateway' calls as a guest, 'personal key' as a signed-in user with an `sk-…` key (issue 18)"
    )
    return result


@dataclass
class StreamTrace:
    started: float
    events: list[float] = field(default_factory=list)  # arrival time of each content event
    error: str | None = None

    @property
    def ttft(self) -> float:
        return self.events[0] - self.started if self.events else float("nan")

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.events, self.events[1:], strict=False)]


async def stream_once(client: httpx.AsyncClient, url: str, body: dict) -> StreamTrace:
    trace = StreamTrace(started=time.perf_counter())
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            now = time.perf_counter()
            chunk = json.loads(line[6:])
            if "error" in chunk:
                trace.error = chunk["error"]["type"]
                continue
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                trace.events.append(now)
    return trace


async def bench_one_stream(
    gw: Gateway, upstream: str, *, rounds: int, chunks: int, ttft_samples: int
) -> Result:
    result = Result(f"2. One stream of {chunks} chunks paced 20 ms")
    scenario = f"slow-20-{chunks}"
    targets = {
        "direct": (
            f"{upstream}/{scenario}/v1/chat/completions",
            _body(f"bench-stream-{chunks}", stream=True),
        ),
        "gateway": (f"{gw.url}/api/chat/completions", _body(f"bench-stream-{chunks}", stream=True)),
    }
    traces: dict[str, list[StreamTrace]] = {name: [] for name in targets}
    async with httpx.AsyncClient(timeout=60) as client:
        for url, body in targets.values():
            await stream_once(client, url, body)  # warm-up
        for round_number in range(rounds):
            order = list(targets) if round_number % 2 == 0 else list(reversed(targets))
            for name in order:
                url, body = targets[name]
                traces[name].append(await stream_once(client, url, body))
        # Time to first token needs more samples than full streams give for a meaningful p99: short
        # streams (two chunks, same pacing), interleaved too.
        first = {
            "direct": (f"{upstream}/slow-20-2/v1/chat/completions", _body("bench-first-token", stream=True)),
            "gateway": (f"{gw.url}/api/chat/completions", _body("bench-first-token", stream=True)),
        }
        for name in first:
            await stream_once(client, *first[name])  # warm-up
        starts: dict[str, list[StreamTrace]] = {name: [] for name in first}
        for sample in range(ttft_samples):
            for name in first if sample % 2 == 0 else reversed(list(first)):
                starts[name].append(await stream_once(client, *first[name]))
    ttft = {name: [t.ttft for t in traces[name] + starts[name]] for name in traces}
    gaps = {name: [g for t in values for g in t.gaps] for name, values in traces.items()}
    added_ttft = 1000 * (percentile(ttft["gateway"], 99) - percentile(ttft["direct"], 99))
    added_gap = 1000 * (percentile(gaps["gateway"], 99) - percentile(gaps["direct"], 99))
    separate = all(len(t.events) == chunks for values in traces.values() for t in values)
    result.add(
        "direct TTFT p50 / p99",
        f"{1000 * percentile(ttft['direct'], 50):.2f} / {1000 * percentile(ttft['direct'], 99):.2f}",
        unit="ms",
    )
    result.add(
        "gateway TTFT p50 / p99",
        f"{1000 * percentile(ttft['gateway'], 50):.2f} / {1000 * percentile(ttft['gateway'], 99):.2f}",
        unit="ms",
    )
    result.add("added time-to-first-token p99", added_ttft, "≤ 5 ms", added_ttft <= 5, unit="ms")
    result.add(
        "direct / gateway gap p99",
        f"{1000 * percentile(gaps['direct'], 99):.2f} / {1000 * percentile(gaps['gateway'], 99):.2f}",
        unit="ms",
    )
    result.add("added gap between chunks p99", added_gap, "≤ 1 ms", added_gap <= 1, unit="ms")
    result.add(
        "every chunk delivered as its own event",
        "yes" if separate else "no",
        f"{chunks} events each",
        separate,
    )
    result.notes.append(
        f"gaps and events: {rounds} interleaved streams per target; time to first token: those and "
        f"{ttft_samples} interleaved two-chunk streams per target"
    )
    return result


async def _concurrent(url: str, body: dict, streams: int) -> tuple[float, list[StreamTrace]]:
    limits = httpx.Limits(max_connections=streams + 4, max_keepalive_connections=streams + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = time.perf_counter()
        traces = await asyncio.gather(*(stream_once(client, url, body) for _ in range(streams)))
        return time.perf_counter() - started, list(traces)


async def bench_concurrent(gw: Gateway, upstream: str, *, streams: int, chunks: int, rounds: int) -> Result:
    result = Result(f"3. {streams} concurrent streams of {chunks} chunks paced 20 ms")
    scenario = f"slow-20-{chunks}"
    targets = {
        "direct": (
            f"{upstream}/{scenario}/v1/chat/completions",
            _body(f"bench-stream-{chunks}", stream=True),
        ),
        "gateway": (f"{gw.url}/api/chat/completions", _body(f"bench-stream-{chunks}", stream=True)),
    }
    rates: dict[str, list[float]] = {name: [] for name in targets}
    max_gap = {name: 0.0 for name in targets}
    lost = {name: 0 for name in targets}
    for url, body in targets.values():  # warm-up: the gateway learns how the channel's answers end
        await _concurrent(url, body, 1)  # (a first stream may be held back, services/reasoning.py)
    for round_number in range(rounds):
        order = list(targets) if round_number % 2 == 0 else list(reversed(targets))
        for name in order:
            url, body = targets[name]
            wall, traces = await _concurrent(url, body, streams)
            delivered = sum(len(t.events) for t in traces)
            rates[name].append(delivered / wall)
            lost[name] += streams * chunks - delivered
            max_gap[name] = max([max_gap[name], *(g for t in traces for g in t.gaps)])
    ratio = median([g / d for d, g in zip(rates["direct"], rates["gateway"], strict=True)])
    result.add(
        "direct / gateway chunks per second",
        f"{median(rates['direct']):.0f} / {median(rates['gateway']):.0f}",
    )
    result.add("gateway ÷ direct chunks/s", ratio, "≥ 0.95", ratio >= 0.95)
    result.add(
        "largest gap between chunks (gateway)",
        1000 * max_gap["gateway"],
        "≤ 200 ms",
        max_gap["gateway"] <= 0.2,
        unit="ms",
    )
    result.add("largest gap between chunks (direct)", 1000 * max_gap["direct"], unit="ms")
    result.add("chunks lost (gateway)", lost["gateway"], "0", lost["gateway"] == 0)
    result.notes.append(
        f"{rounds} interleaved rounds; client, gateway and upstream share the machine's cores"
    )
    return result


async def bench_on_off(
    on: Gateway,
    off: Gateway,
    *,
    what: str,
    number: str,
    rounds: int,
    per_round: int,
    database: str = "",
    warmups: int = 5,
) -> Result:
    where = f"{database.strip()[1:-1]}; " if database else ""  # " (PostgreSQL)" → "PostgreSQL; "
    result = Result(f"{number}. Request latency with {what} on ÷ off ({where}non-streaming, upstream 50 ms)")
    targets = {
        f"{what} off": (f"{off.url}/api/chat/completions", _body("bench-delay", stream=False)),
        f"{what} on": (f"{on.url}/api/chat/completions", _body("bench-delay", stream=False)),
    }
    rounds_data = await interleaved_latencies(targets, rounds, per_round, warmups)
    _ratio_rows(
        result,
        rounds_data,
        f"{what} off",
        f"{what} on",
        ratio_target=1.05,
        added_p99_target_ms=None,
        label="on ÷ off",
    )
    return result
