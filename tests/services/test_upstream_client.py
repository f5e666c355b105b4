"""The upstream client against scripted HTTP servers on loopback: what the home-made transport it
replaced got wrong (informational responses, dead idle connections) and what it must never do
(follow redirects, keep cookies, ask for compressed answers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from services.upstream import UpstreamClient, UpstreamFailure, UpstreamTimeouts
from tests.helpers import wait_until_async

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # True: keep the connection open


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[str, list[bytes]]]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> tuple[str, list[bytes]]:
        heads: list[bytes] = []

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(
                        (
                            int(line.split(b":")[1])
                            for line in head.lower().split(b"\r\n")
                            if line.startswith(b"content-length:")
                        ),
                        0,
                    )
                    await reader.readexactly(length)
                    heads.append(head)
                    if not await handler(head, writer):
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()
            heads.append(b"closed")

        server = await asyncio.start_server(connection, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions", heads

    yield start
    for server in servers:
        server.close()


def idle_connections(client: UpstreamClient) -> int:
    """Live idle connections in the client's pools (aiohttp's own record; a dead one is skipped)."""
    return sum(
        1
        for session in client._sessions.values()
        for idle in session.connector._conns.values()  # type: ignore[union-attr]
        for protocol, _since in idle
        if protocol.is_connected()
    )


def _ok(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body),
        extra,
        body,
    )


async def test_an_informational_response_is_not_the_answer(serve) -> None:  # type: ignore[no-untyped-def]
    async def early_hints(_head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + _ok(b'{"a":1}'))
        return True

    url, _ = await serve(early_hints)
    async with UpstreamClient(UpstreamTimeouts()) as client:
        response = await client.post_json(url, {}, {})
        assert (response.status, await client.read_answer(response)) == (200, b'{"a":1}')
        client.close(response)
        assert client.open_responses == 0


async def test_a_connection_the_server_closed_while_idle_is_not_reused(serve) -> None:  # type: ignore[no-untyped-def]
    async def once(_head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(_ok())  # keep-alive announced, then closed: a dead idle connection in the pool
        await writer.drain()
        return False

    url, heads = await serve(once)
    async with UpstreamClient(UpstreamTimeouts()) as client:
        for count in range(1, 4):
            response = await client.post_json(url, {}, {})
            assert await client.read_answer(response) == b"{}"
            client.close(response)
            await wait_until_async(lambda count=count: heads.count(b"closed") == count, poll=0.001)
            # the server's close reaches the client's pool, which drops the connection (aiohttp's own
            # record of its idle connections; the replaced transport kept such a dead one forever)
            await wait_until_async(lambda: not idle_connections(client), poll=0.001)
    assert heads.count(b"closed") == 3


async def test_no_redirects_no_cookies_no_compression(serve) -> None:  # type: ignore[no-untyped-def]
    async def redirect_with_cookie(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/again" in head.split(b"\r\n")[0]:
            writer.write(_ok())
        else:
            writer.write(
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /again\r\nSet-Cookie: s=1\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
        return True

    url, heads = await serve(redirect_with_cookie)
    async with UpstreamClient(UpstreamTimeouts()) as client:
        response = await client.post_json(url, {"x": "é"}, {"Authorization": "Bearer k"})
        assert response.status == 307
        client.close(response)
        response = await client.post_json(url.replace("/v1/chat/completions", "/again"), {}, {})
        assert response.status == 200
        client.close(response)
    first, second = (head.lower() for head in heads if head != b"closed")
    assert b"accept-encoding: identity" in first and b"authorization: bearer k" in first
    assert b"cookie:" not in second


async def test_an_answer_over_the_cap_is_bad_stream(serve) -> None:  # type: ignore[no-untyped-def]
    async def big(_head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(_ok(b"x" * 70_000))
        return True

    url, _ = await serve(big)
    async with UpstreamClient(UpstreamTimeouts(), max_answer_bytes=65_536) as client:
        response = await client.post_json(url, {}, {})
        with pytest.raises(UpstreamFailure) as raised:
            await client.read_answer(response)
        client.close(response)
    assert raised.value.reason == "bad_stream"
