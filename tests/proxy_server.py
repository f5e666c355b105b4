"""Real proxies on loopback for the upstream-proxy tests, each run as its own process:
``python -m tests.proxy_server --kind connect|socks5 --port N [--user U --password P]``.

``connect``: an HTTP proxy (CONNECT tunnels, and absolute-form requests forwarded); ``socks5``: a SOCKS5
proxy (no auth, or user/password when given). Each prints ``READY`` once listening, then one line
``TUNNEL host:port auth`` per connection it carries, which the test reads to see that the call went
through it. :class:`ProxyProcess` starts one and collects those lines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import socket
import subprocess
import sys
import threading

from tests.helpers import HANG_SECONDS, ROOT, free_port, hung, wait_until


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    await asyncio.gather(_pipe(client[0], upstream[1]), _pipe(upstream[0], client[1]))


def _report(host: str, port: int, auth: str) -> None:
    print(f"TUNNEL {host}:{port} {auth or '-'}", flush=True)


async def _http_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, creds: str) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    auth = ""
    given = headers.get("proxy-authorization", "")
    if given.lower().startswith("basic "):
        auth = base64.b64decode(given[6:]).decode()
    if creds and auth != creds:
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        upstream = await asyncio.open_connection(host, int(port))
        _report(host, int(port), auth)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice((reader, writer), upstream)
        return
    # absolute-form: forward the request (and what follows on the connection) to the origin
    rest = target.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    upstream = await asyncio.open_connection(host, int(port or 80))
    _report(host, int(port or 80), auth)
    upstream[1].write(f"{method} /{path} {version}\r\n".encode() + head.split(b"\r\n", 1)[1])
    await _splice((reader, writer), upstream)


async def _socks5(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, creds: str) -> None:
    version, count = await reader.readexactly(2)
    methods = await reader.readexactly(count)
    auth = ""
    if creds:
        if 2 not in methods or version != 5:
            writer.write(b"\x05\xff")
            writer.close()
            return
        writer.write(b"\x05\x02")
        _, ulen = await reader.readexactly(2)
        user = (await reader.readexactly(ulen)).decode()
        (plen,) = await reader.readexactly(1)
        password = (await reader.readexactly(plen)).decode()
        auth = f"{user}:{password}"
        ok = auth == creds
        writer.write(b"\x01\x00" if ok else b"\x01\x01")
        if not ok:
            writer.close()
            return
    else:
        writer.write(b"\x05\x00")
    _, command, _, kind = await reader.readexactly(4)
    if kind == 1:
        host = socket.inet_ntoa(await reader.readexactly(4))
    elif kind == 3:
        (size,) = await reader.readexactly(1)
        host = (await reader.readexactly(size)).decode()
    else:
        host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
    port = int.from_bytes(await reader.readexactly(2), "big")
    if command != 1:
        writer.write(b"\x05\x07\x00\x01" + bytes(6))
        writer.close()
        return
    upstream = await asyncio.open_connection(host, port)
    _report(host, port, auth)
    writer.write(b"\x05\x00\x00\x01" + bytes(6))
    await writer.drain()
    await _splice((reader, writer), upstream)


async def _serve(kind: str, port: int, creds: str) -> None:
    handler = _http_proxy if kind == "connect" else _socks5

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer, creds)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


class ProxyProcess:
    """A proxy process on a free loopback port; ``tunnels`` lists the ``host:port auth`` it carried."""

    def __init__(self, kind: str, *, user: str = "", password: str = "") -> None:
        self.kind = kind
        self.port = free_port()
        self.tunnels: list[str] = []
        command = [sys.executable, "-m", "tests.proxy_server", "--kind", kind, "--port", str(self.port)]
        if user:
            command += ["--user", user, "--password", password]
        self._process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(HANG_SECONDS):
            self.stop()
            raise RuntimeError(hung("the proxy did not start"))

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("READY"):
                self._ready.set()
            elif line.startswith("TUNNEL "):
                self.tunnels.append(line[7:].strip())

    def carried(self, count: int) -> list[str]:
        """The tunnels once there are ``count``: each line is read from the proxy's output by a thread,
        which may come a moment after the call it carried has ended."""
        wait_until(lambda: len(self.tunnels) >= count, what=f"{count} tunnels through the proxy")
        return self.tunnels

    def url(self, scheme: str | None = None, auth: str = "") -> str:
        scheme = scheme or ("http" if self.kind == "connect" else "socks5")
        return f"{scheme}://{auth + '@' if auth else ''}127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=HANG_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["connect", "socks5"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    creds = f"{args.user}:{args.password}" if args.user else ""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.kind, args.port, creds))


if __name__ == "__main__":
    main()
