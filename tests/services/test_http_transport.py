"""The upstream client's HTTP/1.1 transport against scripted servers on loopback: keep-alive, chunked
and close-delimited bodies, streaming, stale connections, timeouts, broken peers, back-pressure, TLS."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.http_transport import LeanTransport
from services.upstream import UpstreamClient, UpstreamTimeouts

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server whose connections are served by ``handler``; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def start(self, tls: ssl.SSLContext | None = None) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The request line + headers, and the body (Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def reply(body: bytes, *, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def keep_alive(answer: Callable[[bytes, bytes], bytes]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer(head, body))
            await writer.drain()

    return handler


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler, tls: ssl.SSLContext | None = None) -> Server:
        server = await Server(handler).start(tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def client(**options: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=LeanTransport(**options), timeout=5)  # type: ignore[arg-type]


async def test_keep_alive_reuses_one_connection_and_sends_the_request_as_given(serve) -> None:
    seen: list[tuple[bytes, bytes]] = []

    def answer(head: bytes, body: bytes) -> bytes:
        seen.append((head, body))
        return reply(b'{"ok": true}')

    server = await serve(keep_alive(answer))
    async with client() as http:
        for n in range(5):
            response = await http.post(
                f"http://127.0.0.1:{server.port}/v1/chat/completions?x={n}",
                json={"n": n},
                headers={"Authorization": "Bearer sk-test"},
            )
            assert response.status_code == 200 and response.json() == {"ok": True}
    assert server.connections == 1
    head, body = seen[3]
    assert head.startswith(b"POST /v1/chat/completions?x=3 HTTP/1.1\r\n")
    assert b"\r\nauthorization: Bearer sk-test\r\n" in head.lower().replace(b"bearer", b"Bearer")
    assert b"\r\nhost: 127.0.0.1:" in head.lower()
    assert body == b'{"n":3}'


async def test_chunked_stream_arrives_piece_by_piece(serve) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        writer.write(chunk(b'data: {"n": 1}\n\n'))
        await writer.drain()
        await release.wait()  # the second event is only sent once the first has been received
        writer.write(chunk(b'data: {"n": 2}\n\n') + chunk(b""))
        await writer.drain()
        await reader.read()

    server = await serve(handler)
    async with client() as http:
        request = http.build_request("POST", f"http://127.0.0.1:{server.port}/", json={})
        response = await http.send(request, stream=True)
        lines = response.aiter_lines()
        assert await anext(lines) == 'data: {"n": 1}'
        release.set()
        rest = [line async for line in lines]
        assert rest == ["", 'data: {"n": 2}', ""]
        await response.aclose()


async def test_close_delimited_body(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()

    server = await serve(handler)
    async with client() as http:
        for _ in range(2):  # the closed connection is not reused
            assert (await http.get(f"http://127.0.0.1:{server.port}/")).text == "all of it"
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply(b"{}"))
        await writer.drain()  # then close: the client still holds it as idle

    server = await serve(handler)
    async with client() as http:
        for _ in range(3):
            assert (await http.post(f"http://127.0.0.1:{server.port}/", json={})).status_code == 200
            await asyncio.sleep(0.05)
    assert server.connections == 3


async def test_idle_connections_expire(serve) -> None:
    server = await serve(keep_alive(lambda head, body: reply(b"{}")))
    async with client(keepalive_expiry=0.05) as http:
        await http.get(f"http://127.0.0.1:{server.port}/")
        await asyncio.sleep(0.1)
        await http.get(f"http://127.0.0.1:{server.port}/")
    assert server.connections == 2


async def test_closing_a_stream_early_drops_its_connection(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            if b"/long" in head:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
            else:
                writer.write(reply(b"short"))
            await writer.drain()

    server = await serve(handler)
    async with client() as http:
        long = http.build_request("GET", f"http://127.0.0.1:{server.port}/long")
        response = await http.send(long, stream=True)
        assert await anext(response.aiter_raw()) == b"x" * 10
        await response.aclose()  # 990 bytes never read: that connection cannot carry another request
        assert (await http.get(f"http://127.0.0.1:{server.port}/short")).text == "short"
    assert server.connections == 2


async def test_timeouts_and_refused_connections_raise_httpx_errors(serve) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    async def stalls_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        await asyncio.sleep(10)

    quiet, stalling = await serve(silent), await serve(stalls_mid_body)
    async with httpx.AsyncClient(transport=LeanTransport(), timeout=httpx.Timeout(5, read=0.2)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"http://127.0.0.1:{quiet.port}/")
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"http://127.0.0.1:{stalling.port}/")
        await quiet.stop()
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{quiet.port}/")


async def test_broken_responses_are_protocol_errors(serve) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()

    async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async def cut_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()

    async with client() as http:
        for handler in (garbage, hangs_up, cut_body):
            server = await serve(handler)
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(f"http://127.0.0.1:{server.port}/")


async def test_connection_cap_waits_then_times_out_on_the_pool(serve) -> None:
    server = await serve(keep_alive(lambda head, body: reply(b"{}")))
    transport = LeanTransport(max_connections=1)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, pool=0.1)) as http:
        held = await http.send(http.build_request("GET", f"http://127.0.0.1:{server.port}/"), stream=True)
        with pytest.raises(httpx.PoolTimeout):
            await http.get(f"http://127.0.0.1:{server.port}/")
        await held.aread()  # reading to the end frees the slot
        assert (await http.get(f"http://127.0.0.1:{server.port}/")).status_code == 200
    assert server.connections == 1


async def test_large_body_with_a_slow_reader(serve) -> None:
    payload = bytes(range(256)) * 40_000  # 10 MB: more than the transport buffers before pausing

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
        writer.write(payload)
        await writer.drain()
        await reader.read()

    server = await serve(handler)
    async with client() as http:
        response = await http.send(http.build_request("GET", f"http://127.0.0.1:{server.port}/"), stream=True)
        received = bytearray()
        async for piece in response.aiter_raw():
            received += piece
            await asyncio.sleep(0)
        assert bytes(received) == payload


async def test_compressed_bodies_are_decoded_by_httpx(serve) -> None:
    packed = gzip.compress(b'{"hello": "world"}')
    server = await serve(keep_alive(lambda head, body: reply(packed, extra=b"Content-Encoding: gzip\r\n")))
    async with client() as http:
        assert (await http.get(f"http://127.0.0.1:{server.port}/")).json() == {"hello": "world"}


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert_path, key_path)
    client_side = ssl.create_default_context(cafile=str(cert_path))
    return server_side, client_side


async def test_tls_verifies_the_server(serve, tmp_path: Path) -> None:
    server_side, client_side = _self_signed(tmp_path)
    server = await serve(keep_alive(lambda head, body: reply(b'{"tls": true}')), server_side)
    url = f"https://127.0.0.1:{server.port}/"
    async with client(ssl_context=client_side) as http:
        assert (await http.get(url)).json() == {"tls": True}
        assert (await http.get(url)).json() == {"tls": True}
    assert server.connections == 1
    async with client() as http:  # the default context does not trust a self-signed certificate
        with pytest.raises(httpx.ConnectError):
            await http.get(url)


async def test_the_upstream_client_keeps_no_cookies(serve) -> None:
    seen: list[bytes] = []

    def answer(head: bytes, body: bytes) -> bytes:
        seen.append(head)
        return reply(b"{}", extra=b"Set-Cookie: session=abc; Path=/\r\n")

    server = await serve(keep_alive(answer))
    http = UpstreamClient(UpstreamTimeouts())
    async with http:
        await http.get(f"http://127.0.0.1:{server.port}/")
        await http.get(f"http://127.0.0.1:{server.port}/")
    assert all(b"cookie" not in head.lower() for head in seen)


async def test_post_json_sends_what_the_client_would_and_reuses_the_connection(serve) -> None:
    seen: list[tuple[bytes, bytes]] = []

    def answer(head: bytes, body: bytes) -> bytes:
        seen.append((head, body))
        if b"\r\naccept: text/event-stream\r\n" in head.lower():
            events = chunk(b'data: {"n": 1}\n\n') + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
            return (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                + events
            )
        return reply(b'{"ok": true}')

    server = await serve(keep_alive(answer))
    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    headers = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
    async with UpstreamClient(UpstreamTimeouts()) as http:
        done = await http.post_json(url, {"text": "é", "n": [1, 2]}, headers)
        assert done.status_code == 200 and await http.read_answer(done) == b'{"ok": true}' and done.is_closed
        streamed = await http.post_json(url, {"stream": True}, {**headers, "Accept": "text/event-stream"})
        assert [line async for line in http.lines(streamed) if line] == ['data: {"n": 1}', "data: [DONE]"]
        await streamed.aclose()
        again = await http.post_json(url, {}, headers)
        assert await http.read_answer(again) == b'{"ok": true}' and again.request.url == url
    assert server.connections == 1
    (head, body), (stream_head, _), _ = seen
    names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")[1:] if line]
    assert len(names) == len(set(names)), head  # no header twice
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    lower = head.lower()
    for expected in (
        b"authorization: bearer sk-test",
        b"content-type: application/json",
        b"accept: */*",
        b"accept-encoding: identity",  # a compressed answer could expand past the cap in one read
    ):
        assert b"\r\n" + expected + b"\r\n" in lower
    assert b"\r\nuser-agent: python-httpx/" in lower and b"\r\nhost: 127.0.0.1:" in lower
    assert body == '{"text":"é","n":[1,2]}'.encode()  # as httpx encodes json=
    assert b"\r\naccept: text/event-stream\r\n" in stream_head.lower() and b"*/*" not in stream_head
