"""A lean HTTP/1.1 transport for the shared ``httpx.AsyncClient`` that talks to upstream channels.

httpx stays the client the gateway programs against (requests, streamed responses, timeouts,
exceptions); this module replaces only what sits under it, httpcore + h11 + anyio, which the profile of
benchmark 1 showed as about half of the gateway's CPU time per call. Each connection is an
``asyncio.Protocol`` whose bytes go straight into httptools' C parser (the one uvicorn uses); body
pieces are handed to the reader as they arrive, so a streamed answer is relayed event by event.

Semantics kept from httpcore: keep-alive pooling per origin with an idle expiry, a cap on open
connections (``pool`` timeout), ``connect`` / ``read`` / ``write`` timeouts per operation from the
request's timeout extension, TLS with httpx's default context, and httpx's exception types, so the
chat service's failover logic sees exactly what it saw before. HTTP/2, proxies and upgrades are not
needed by an upstream client and are not offered.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import httptools
import httpx

READ_HIGH_WATER = 256 * 1024  # bytes of body held for a slow reader before the socket is paused
_NO_BODY_STATUS = frozenset({204, 304})


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one request at a time."""

    def __init__(self, origin: tuple[bytes, str, int]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.idle_since = 0.0
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused = False
        self._reset()

    def _reset(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.eof = False
        self.error: Exception | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0

    # ---- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.parser is None:  # bytes while idle: the connection is out of step, never reuse it
            self.error = httpx.RemoteProtocolError("unexpected data on an idle connection")
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = httpx.RemoteProtocolError(f"invalid HTTP response: {exc}")
        if self.buffered > READ_HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.eof = True
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # ---- httptools callbacks ------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True  # llhttp resets its state after this callback: ask about keep-alive now
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()

    # ---- used by the transport ----------------------------------------------------------------------
    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, seconds: float | None) -> None:
        """Until more bytes, the end of the message, EOF or an error; TimeoutError after ``seconds``."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(seconds):
                await self._waiter
        finally:
            self._waiter = None

    def take(self) -> bytes:
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self._paused and self.buffered <= READ_HIGH_WATER // 4 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    async def send(self, data: bytes, seconds: float | None) -> None:
        assert self.transport is not None
        self._reset()
        self.parser = httptools.HttpResponseParser(self)
        self.transport.write(data)
        if self._drained is not None:
            async with asyncio.timeout(seconds):
                await self._drained

    def reusable(self, now: float, expiry: float) -> bool:
        return (
            not self.closed
            and not self.eof
            and self.error is None
            and self.transport is not None
            and not self.transport.is_closing()
            and now - self.idle_since < expiry
        )

    def close(self) -> None:
        self.closed = True
        self.parser = None
        if self.transport is not None:
            self.transport.close()


class _ResponseBody(httpx.AsyncByteStream):
    """The body as it arrives; the connection goes back to the pool once the message is complete."""

    def __init__(
        self,
        transport: LeanTransport,
        connection: _Connection,
        read_seconds: float | None,
        *,
        until_eof: bool,
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._read_seconds = read_seconds
        self._until_eof = until_eof
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while not self._done:
            if connection.chunks:
                yield connection.take()
                continue
            if connection.error is not None:
                self._finish(reuse=False)
                raise connection.error
            if connection.complete:
                self._finish(reuse=connection.keep_alive)
                return
            if connection.eof:
                self._finish(reuse=False)
                if self._until_eof:
                    return
                raise httpx.RemoteProtocolError("peer closed the connection before the end of the body")
            try:
                await connection.wait(self._read_seconds)
            except TimeoutError:
                self._finish(reuse=False)
                raise httpx.ReadTimeout("timed out reading the response body") from None

    def _finish(self, *, reuse: bool) -> None:
        if not self._done:
            self._done = True
            self._transport._release(self._connection, reuse=reuse)

    async def aclose(self) -> None:
        self._finish(reuse=False)  # closed before the end: the rest of the body is still on the wire


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        max_connections: int = 512,
        max_keepalive_connections: int = 128,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_keepalive = max_keepalive_connections
        self._expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[tuple[bytes, str, int], list[_Connection]] = {}
        self._idle_count = 0
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    # ---- pool ---------------------------------------------------------------------------------------
    def _reuse(self, origin: tuple[bytes, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.reusable(now, self._expiry):
                return connection
            connection.close()
        return None

    def _release(self, connection: _Connection, *, reuse: bool) -> None:
        self._slots.release()
        connection.parser = None
        if not reuse or self._closed or self._idle_count >= self._max_keepalive or connection.chunks:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_count += 1

    async def _connect(self, origin: tuple[bytes, str, int], seconds: float | None) -> _Connection:
        scheme, host, port = origin
        tls: ssl.SSLContext | None = None
        if scheme == b"https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            tls = self._ssl_context
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin), host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc.__class__.__name__}") from None
        return connection

    # ---- httpx.AsyncBaseTransport -------------------------------------------------------------------
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        url = request.url
        origin = (url.raw_scheme, url.host, url.port or (443 if url.raw_scheme == b"https" else 80))
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection to the upstream") from None
        try:
            connection = self._reuse(origin) or await self._connect(origin, timeouts.get("connect"))
        except BaseException:
            self._slots.release()
            raise
        try:
            return await self._exchange(connection, request, timeouts)
        except BaseException:
            connection.close()
            self._slots.release()
            raise

    async def _exchange(
        self, connection: _Connection, request: httpx.Request, timeouts: dict[str, Any]
    ) -> httpx.Response:
        content = await request.aread()
        head = [request.method.encode(), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        try:
            await connection.send(b"".join(head) + content, timeouts.get("write"))
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request") from None
        read_timeout = timeouts.get("read")
        while not connection.headers_done:
            if connection.error is not None:
                raise connection.error
            if connection.eof:
                raise httpx.RemoteProtocolError("server disconnected without sending a response")
            try:
                await connection.wait(read_timeout)
            except TimeoutError:
                raise httpx.ReadTimeout("timed out waiting for the response") from None
        assert connection.parser is not None
        status = connection.parser.get_status_code()
        names = {name.lower() for name, _ in connection.headers}
        until_eof = b"content-length" not in names and b"transfer-encoding" not in names
        if request.method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200:
            connection.complete, until_eof = True, False
        body = _ResponseBody(self, connection, read_timeout, until_eof=until_eof)
        return httpx.Response(
            status,
            headers=connection.headers,
            stream=body,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": b""},
        )

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        self._idle_count = 0
