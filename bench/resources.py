"""``python -m bench.resources``: the gateway's peak memory while it is fed oversized things.

Each probe runs against one real gateway (``bench.serve``) and the loopback upstream in its own
process; before each, the gateway's peak-RSS mark is reset (``/proc/PID/clear_refs``), so a row's figure
is how far that one request lifted the peak above the resident size just before it. The figures for
docs/reliability/caps.md come from here. ``--env MAX_BODY_BYTES=…`` and the like run the same probes
with other caps (the largest allowed, for a figure of what the caps save).
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.harness import Gateway, gateway, peak_rss_mb, rss_mb, upstream_process
from tests.helpers import HANG_SECONDS

MIB = 1024 * 1024
BLOCK = b"x" * MIB


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)


def post_raw(base_url: str, path: str, size: int, *, chunked: bool) -> tuple[str, int]:
    """POST ``size`` bytes of body, stopping as soon as the server answers or closes; returns the status
    line (or what happened instead) and the bytes of body the server let in."""
    host, port = base_url.removeprefix("http://").split(":")
    framing = b"Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}".encode()
    head = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing
    sent = 0
    with socket.create_connection((host, int(port)), timeout=HANG_SECONDS) as sock:
        sock.sendall(head + b"\r\n\r\n")
        try:
            while sent < size and not select.select([sock], [], [], 0)[0]:
                piece = BLOCK[: min(MIB, size - sent)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked and sent >= size:
                sock.sendall(b"0\r\n\r\n")
        except OSError as exc:
            failed = f"sending failed ({type(exc).__name__}), "
        else:
            failed = ""
        try:  # after a failed send too: the server may have answered before it closed
            answer = sock.recv(65536)
        except OSError as exc:
            return f"{failed}reading failed: {type(exc).__name__}", sent
    return failed + (answer.split(b"\r\n", 1)[0].decode() if answer else "closed without an answer"), sent


def chat(gw: Gateway, model: str, *, stream: bool) -> str:
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    with (
        httpx.Client(timeout=HANG_SECONDS) as client,
        client.stream("POST", f"{gw.url}/api/chat/completions", json=body) as response,
    ):
        if not stream or response.status_code != 200:
            return f"{response.status_code} ({len(response.read()) / MIB:.1f} MiB)"
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    last = events[-1][6:] if events else ""
    ending = "[DONE]" if last == "[DONE]" else json.loads(last).get("error", {}).get("type", "?")
    return f"200, {len(events)} events, ending {ending}"


def measure(
    upstream: str,
    scenarios: tuple[str, ...],
    work: Path,
    what: str,
    probe: Callable[[Gateway], object],
    env: dict[str, str],
) -> str:
    """One probe on a gateway of its own: the allocator keeps what an earlier probe took, which would
    hide the next one's peak."""
    with gateway(work / str(time.monotonic_ns()), **{"UPSTREAM_IDLE_TIMEOUT": "600", **env}) as gw:
        for scenario in scenarios:
            gw.add_channel(scenario, f"{upstream}/{scenario}/v1")
        chat(gw, "ok", stream=False)  # warm up
        before = rss_mb(gw.pid)
        reset_peak(gw.pid)
        started = time.monotonic()
        outcome = probe(gw)
        seconds = time.monotonic() - started
        peak = peak_rss_mb(gw.pid)
    return f"| {what} | {outcome} | {before:.0f} | {peak:.0f} | +{peak - before:.0f} | {seconds:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--request-mib", type=int, default=300, help="size of the oversized request bodies")
    parser.add_argument("--answer-mib", type=int, default=200, help="size of the oversized upstream answers")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateways")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    req, ans = args.request_mib, args.answer_mib
    scenarios = ("ok", f"huge-{ans}", f"hugelen-{ans}", f"hugelate-{ans}")
    probes: list[tuple[str, Callable[[Gateway], object]]] = [
        ("ordinary non-streamed call", lambda gw: chat(gw, "ok", stream=False)),
        (
            f"{req} MiB body to /api/auth/register (Content-Length)",
            lambda gw: post_raw(gw.url, "/api/auth/register", req * MIB, chunked=False),
        ),
        (
            f"{req} MiB body to /api/auth/register (chunked)",
            lambda gw: post_raw(gw.url, "/api/auth/register", req * MIB, chunked=True),
        ),
        (
            f"{req} MiB body to /api/chat/completions (chunked)",
            lambda gw: post_raw(gw.url, "/api/chat/completions", req * MIB, chunked=True),
        ),
        (f"{ans} MiB JSON answer, chunked", lambda gw: chat(gw, f"huge-{ans}", stream=False)),
        (f"{ans} MiB JSON answer, Content-Length", lambda gw: chat(gw, f"hugelen-{ans}", stream=False)),
        (f"{ans} MiB SSE line as the first event", lambda gw: chat(gw, f"huge-{ans}", stream=True)),
        (f"{ans} MiB SSE line after the first event", lambda gw: chat(gw, f"hugelate-{ans}", stream=True)),
    ]
    with tempfile.TemporaryDirectory() as work, upstream_process() as upstream:
        rows = [measure(upstream, scenarios, Path(work), what, probe, env) for what, probe in probes]
    print(f"gateway environment: {env or 'defaults'}")
    print("| probe | outcome | RSS before (MB) | peak (MB) | peak − before | seconds |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
