"""``python -m bench.slow_sockets``: what a crowd of slow sockets does to one gateway.

The gateway (``bench.serve``) gets a soft open-files limit (``--nofile``, as a container's ``ulimit``
would set it), then ``--sockets`` connections that never finish a request: a third send nothing, a
third send a request line a byte a second, a third send a complete head for a chat request and then
its body a byte a second. While they are open, an ordinary client asks ``GET /api/health`` again and
again (a failed attempt is retried at once) for up to ``--window`` seconds. The figures for
docs/reliability/caps.md come from here: whether and when the ordinary request was served, how many
slow sockets the server closed and when, the descriptors and the resident memory it held.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import gateway, rss_mb

KINDS = ("silent", "head", "body")
BODY_HEAD = (
    b"POST /api/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100000\r\n\r\n"
)


async def slow_client(host: str, port: int, kind: str, window: float, started: float) -> float | None:
    """One slow socket; the seconds after ``started`` at which the server closed it, or None if it was
    still open at the end of the window (or never connected)."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return None
    ended = asyncio.ensure_future(reader.read())
    try:
        writer.write({"silent": b"", "head": b"GET /", "body": BODY_HEAD}[kind])
        while not ended.done() and time.monotonic() - started < window:
            await asyncio.wait([ended], timeout=1)
            if kind != "silent" and not ended.done():
                writer.write(b" " if kind == "body" else b"a")
        return time.monotonic() - started if ended.done() else None
    except OSError:
        return time.monotonic() - started
    finally:
        ended.cancel()
        writer.close()


async def ordinary_request(url: str, window: float, started: float) -> tuple[str, float | None]:
    """``GET /api/health`` retried until it is answered or the window ends: the answer and when."""
    failures = 0
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() - started < window:
            try:
                response = await http.get(f"{url}/api/health")
                return f"{response.status_code} after {failures} failed attempts", time.monotonic() - started
            except httpx.TransportError:
                failures += 1
                await asyncio.sleep(0.05)
    return f"not served ({failures} failed attempts)", None


def descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def crowd(url: str, pid: int, sockets: int, window: float) -> dict[str, object]:
    host, port = url.removeprefix("http://").split(":")
    before = rss_mb(pid)
    started = time.monotonic()
    slow = [
        asyncio.ensure_future(slow_client(host, int(port), KINDS[i % 3], window, started))
        for i in range(sockets)
    ]
    await asyncio.sleep(1)  # let the crowd connect before the ordinary client asks (a bench, not a test)
    held = descriptors(pid)
    answer, served_at = await ordinary_request(url, window, started)
    closes = await asyncio.gather(*slow)
    closed = sorted(at for at in closes if at is not None)
    return {
        "ordinary request": answer,
        "served after (s)": "—" if served_at is None else f"{served_at:.1f}",
        "descriptors held 1 s in": held,
        "slow sockets closed by the server": f"{len(closed)} of {sockets}",
        "closed after (s, median / max)": (
            f"{statistics.median(closed):.1f} / {closed[-1]:.1f}" if closed else "—"
        ),
        "RSS before → after (MB)": f"{before:.0f} → {rss_mb(pid):.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--nofile", type=int, default=1024, help="the gateway's soft open-files limit")
    parser.add_argument("--window", type=float, default=60, help="seconds to watch")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.sockets + 100:  # this process holds the crowd's other ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.sockets + 1000), hard))
    with tempfile.TemporaryDirectory() as work, gateway(Path(work) / "gw", **env) as gw:
        _, gateway_hard = resource.prlimit(gw.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(gw.pid, resource.RLIMIT_NOFILE, (args.nofile, gateway_hard))
        figures = asyncio.run(crowd(gw.url, gw.pid, args.sockets, args.window))
    print(f"{args.sockets} slow sockets, nofile {args.nofile}, window {args.window:.0f} s, env {env or '-'}")
    for name, value in figures.items():
        print(f"  {name}: {value}")


if __name__ == "__main__":
    main()
