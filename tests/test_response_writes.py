"""A response's head leaves with its first body bytes, in one write (app/http_protocol.py): uvicorn
writes them separately, which costs a system call and, on loopback, a wake-up of the client per
response. Driven through the real protocol class with a transport that records each write."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from app.http_protocol import guarded_protocol

POST = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "a write after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def _serve(app: Any, request: bytes, transport: RecordingTransport | None = None) -> RecordingTransport:
    """Feed ``request`` to the protocol on one connection; the transport once the app has finished and
    the loop has run what it scheduled."""
    config = Config(app=app, lifespan="off", log_level="warning")
    config.load()
    protocol = guarded_protocol(10.0)(config=config, server_state=ServerState(), app_state={})
    transport = transport or RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    await asyncio.wait_for(asyncio.gather(*protocol.tasks), timeout=10)
    await asyncio.sleep(0)  # what the app's last step scheduled
    return transport


async def _json(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def test_a_whole_response_is_one_write() -> None:
    transport = await _serve(_json, POST)
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n{}")


async def test_a_head_request_gets_its_head() -> None:
    transport = await _serve(_json, b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and transport.writes[0].endswith(
        b"\r\n\r\n"
    )


async def test_a_stream_head_is_not_held_while_its_first_chunk_is_awaited() -> None:
    release = asyncio.Event()
    seen: list[list[bytes]] = []
    transport = RecordingTransport()

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0)  # a loop iteration passes: the head must be out by now
        seen.append(list(transport.writes))
        await release.wait()
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    asyncio.get_running_loop().call_later(0.05, release.set)
    await _serve(stream, POST, transport)
    assert len(seen[0]) == 1 and seen[0][0].endswith(b"transfer-encoding: chunked\r\n\r\n")
    assert transport.writes[1:] == [b"1\r\na\r\n", b"0\r\n\r\n"]


async def test_a_head_and_chunk_sent_together_leave_together() -> None:
    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    transport = await _serve(stream, POST)
    assert len(transport.writes) == 2
    assert transport.writes[0].endswith(b"\r\n\r\n1\r\na\r\n")


async def test_100_continue_is_not_held() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await _json(scope, _nothing, send)

    request = b"POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    config = Config(app=app, lifespan="off", log_level="warning")
    config.load()
    protocol = guarded_protocol(10.0)(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    await asyncio.sleep(0.01)
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    protocol.data_received(b"hi")
    await asyncio.wait_for(asyncio.gather(*protocol.tasks), timeout=10)
    assert len(transport.writes) == 2 and transport.writes[1].endswith(b"\r\n\r\n{}")


async def _nothing() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_a_head_is_sent_before_the_connection_closes_on_a_failure() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"9")]})
        raise RuntimeError("the app failed after its head")

    transport = await _serve(failing, POST)
    assert transport.closed
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
