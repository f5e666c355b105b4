"""The gateway's CPU per non-streamed call, optionally against another checkout's, and profiles of it.

``python -m bench.profile_call`` starts the loopback upstream and the benchmark gateway (``bench.serve``),
then sends ``--calls`` sequential non-streamed calls on one keep-alive connection against a channel
whose upstream answers at once (``delay-0``; ``--stream``: streams of 64 chunks sent without pauses),
and prints the gateway's CPU time per call (from /proc/<pid>/stat, user + system, every thread). CPU
time per call is what this measures because it moves far less than wall-clock ratios with the load
other processes put on a shared machine (it still moves: compare checkouts with ``--against``).

``--against DIR`` runs a second gateway from another checkout (e.g. ``git archive HEAD~1 | tar -x -C
DIR``) at the same time, and alternates batches of calls between the two, so that both see the same
load; it prints each one's median and the ratio. ``--py-spy FILE`` records this checkout's gateway with
py-spy (``--gil``: samples of the thread holding the GIL) and ``--yappi FILE`` profiles its CPU time
per function with yappi (pstats); neither tool is a dependency: ``pip install py-spy yappi`` into the
virtual environment first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.harness import Gateway, cpu_seconds, gateway, median, upstream_process
from tests.helpers import ROOT

STREAM_CHUNKS = 64
BODY = {"messages": [{"role": "user", "content": "benchmark"}], "stream": False}


async def _call(client: httpx.AsyncClient, url: str, *, stream: bool) -> None:
    if not stream:
        (await client.post(url, json={**BODY, "model": "bench-fast"})).raise_for_status()
        return
    body = {**BODY, "model": "bench-chunks", "stream": True}
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for _ in response.aiter_lines():
            pass


async def _calls(url: str, count: int, warmed: int | None = None, *, stream: bool = False) -> float:
    """``count`` sequential calls on one connection; the wall-clock seconds they took. ``warmed``: a
    process to send SIGUSR1 once the warm-up calls are done (it starts yappi's measurement)."""
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(20):  # warm-up: connections, caches
            await _call(client, url, stream=stream)
        if warmed is not None:
            os.kill(warmed, signal.SIGUSR1)
        started = time.perf_counter()
        for _ in range(count):
            await _call(client, url, stream=stream)
        return time.perf_counter() - started


def _measure(
    gw: Gateway, count: int, warmed: int | None = None, *, stream: bool = False
) -> tuple[float, float]:
    """CPU seconds and wall-clock seconds per call of ``count`` calls."""
    before = cpu_seconds(gw.pid)
    wall = asyncio.run(_calls(f"{gw.url}/api/chat/completions", count, warmed, stream=stream))
    return (cpu_seconds(gw.pid) - before) / count, wall / count


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per batch")
    parser.add_argument("--repeats", type=int, default=3, help="batches per gateway (medians are printed)")
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    parser.add_argument("--this", type=Path, default=ROOT, help="the checkout measured (this one)")
    parser.add_argument("--py-spy", dest="py_spy", type=Path, help="record the gateway to this file")
    parser.add_argument("--format", default="raw", help="py-spy's output format")
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument(
        "--stream", action="store_true", help=f"streamed calls of {STREAM_CHUNKS} chunks sent at once instead"
    )
    parser.add_argument("--yappi", type=Path, help="profile the gateway with yappi into this pstats file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, upstream_process() as upstream, ExitStack() as stack:
        checkouts = {"this": args.this.resolve()} | (
            {"other": args.against.resolve()} if args.against else {}
        )
        gateways: dict[str, Gateway] = {}
        for name, checkout in checkouts.items():
            flags = ("--profile", str(args.yappi.resolve())) if args.yappi and name == "this" else ()
            gw = stack.enter_context(
                gateway(Path(work) / name, *flags, cwd=checkout, TRUSTED_PROXIES="127.0.0.1/32")
            )
            gw.add_channel("bench-fast", f"{upstream}/delay-0/v1")
            gw.add_channel("bench-chunks", f"{upstream}/slow-0-{STREAM_CHUNKS}/v1")
            gateways[name] = gw
        spy: subprocess.Popen[bytes] | None = None
        if args.py_spy is not None:
            exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
            command = [exe, "record", "--pid", str(gateways["this"].pid), "--output", str(args.py_spy)]
            command += ["--format", args.format, "--rate", str(args.rate), "--nonblocking", "--gil"]
            spy = subprocess.Popen(command)
            time.sleep(1.0)  # let it attach
        cpu: dict[str, list[float]] = {name: [] for name in gateways}
        wall: dict[str, list[float]] = {name: [] for name in gateways}
        warmed = gateways["this"].pid if args.yappi else None
        for repeat in range(args.repeats):
            order = list(gateways) if repeat % 2 == 0 else list(reversed(gateways))
            for name in order:
                per_call, per_call_wall = _measure(
                    gateways[name], args.calls, warmed if name == "this" else None
                )
                cpu[name].append(per_call)
                wall[name].append(per_call_wall)
                print(
                    f"  {name}: {1000 * per_call:.3f} ms CPU per call, load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        if args.yappi is not None:
            os.kill(gateways["this"].pid, signal.SIGUSR2)
            deadline = time.monotonic() + 120
            while not args.yappi.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name, checkout in checkouts.items():
        print(
            f"{name} ({checkout}): gateway CPU per call {1000 * median(cpu[name]):.3f} ms (batches: "
            + ", ".join(f"{1000 * v:.3f}" for v in cpu[name])
            + f"), wall-clock per call {1000 * median(wall[name]):.3f} ms"
        )
    if args.against:
        ratios = [t / o for t, o in zip(cpu["this"], cpu["other"], strict=True)]
        print(
            f"this ÷ other CPU per call: median {median(ratios):.3f} (batches: "
            + ", ".join(f"{r:.3f}" for r in ratios)
            + ")"
        )


if __name__ == "__main__":
    main()
