"""NiceGUI's WebSocket answers pages of this site only (app/api/origin.py)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.api.origin import SocketOriginCheck, normalize_origin
from tests.helpers import HANG_SECONDS, RunningApp

POLLING = "/_nicegui_ws/socket.io/?EIO=4&transport=polling"
WEBSOCKET = "/_nicegui_ws/socket.io/?EIO=4&transport=websocket"
LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]


def handshake(base_url: str, headers: dict[str, str]) -> int:
    """The status of a WebSocket handshake (101 when accepted), as a browser sends it."""
    parts = urlsplit(base_url)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {WEBSOCKET} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection((parts.hostname, parts.port), timeout=HANG_SECONDS) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = connection.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_the_websocket_refuses_another_sites_page(client: httpx.Client) -> None:
    own = str(client.base_url).rstrip("/")
    assert handshake(own, {"Origin": own}) == 101
    assert handshake(own, {}) == 101, "no Origin: no browser, nothing to protect"
    for origin in ("http://evil.test", "null", f"{own}.evil.test", "http://localhost:1"):
        assert handshake(own, {"Origin": origin}) == 403, origin
    tls_ended_by_a_proxy = "https://" + own.split("://")[1]
    assert handshake(own, {"Origin": tls_ended_by_a_proxy}) == 101


def test_the_polling_transport_refuses_another_sites_page(client: httpx.Client) -> None:
    own = str(client.base_url).rstrip("/")
    response = client.get(POLLING, headers={"Origin": own})
    assert response.status_code == 200 and response.text.startswith("0{")
    assert "access-control-allow-origin" not in response.headers, "a same-origin page needs no CORS"
    for method in ("GET", "POST", "OPTIONS"):
        refused = client.request(method, POLLING, headers={"Origin": "http://evil.test"})
        assert refused.status_code == 403, method
        assert "access-control-allow-origin" not in refused.headers


def test_behind_a_trusted_proxy_the_forwarded_host_counts(limited_app: RunningApp) -> None:
    """limited_app trusts 127.0.0.1 as a proxy; the app in ``client`` trusts none."""
    forwarded = {"X-Forwarded-Host": "chat.example.com", "X-Forwarded-Proto": "https"}
    own = limited_app.base_url
    assert handshake(own, {"Origin": "https://chat.example.com", **forwarded}) == 101
    assert handshake(own, {"Origin": "https://chat.example.com"}) == 403
    assert handshake(own, {"Origin": "http://chat.example.com", **forwarded}) == 403, "the scheme counts"


def test_an_untrusted_peer_cannot_forward_a_host(client: httpx.Client) -> None:
    forwarded = {"X-Forwarded-Host": "chat.example.com", "X-Forwarded-Proto": "https"}
    assert handshake(str(client.base_url), {"Origin": "https://chat.example.com", **forwarded}) == 403


# ---- the check on its own --------------------------------------------------------------------------
def scope(origin: str | None, *, peer: str = "203.0.113.5", **headers: str) -> dict[str, Any]:
    raw = [(b"host", b"chat.example.com")]
    raw += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    if origin is not None:
        raw.append((b"origin", origin.encode()))
    return {
        "type": "websocket",
        "scheme": "wss",
        "path": "/_nicegui_ws/socket.io/",
        "headers": raw,
        "client": (peer, 1),
    }


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (None, True),
        ("https://chat.example.com", True),
        ("https://CHAT.example.com:443", True),
        ("https://chat.example.com/", True),
        ("http://chat.example.com", False),  # a plain-HTTP page for a request that came over TLS
        ("https://chat.example.com:8443", False),
        ("https://chat.example.com.evil.test", False),
        ("null", False),
        ("", False),
        ("https://user@chat.example.com", False),
    ],
)
def test_same_origin_is_the_requests_own_scheme_and_host(origin: str | None, accepted: bool) -> None:
    check = SocketOriginCheck(_noop, trusted=[])
    assert check.accepts(scope(origin)) is accepted


def test_behind_a_proxy_that_ended_tls_the_https_origin_of_the_host_is_the_sites() -> None:
    check = SocketOriginCheck(_noop, trusted=[])
    plain = {**scope("https://chat.example.com"), "scheme": "ws"}
    assert check.accepts(plain)
    assert not check.accepts({**scope("https://other.example.com"), "scheme": "ws"})


def test_configured_origins_are_accepted_too() -> None:
    check = SocketOriginCheck(_noop, trusted=[], allowed=["https://chat.example.org", "not an origin"])
    assert check.accepts(scope("https://chat.example.org"))
    assert not check.accepts(scope("https://other.example.org"))


def test_forwarded_headers_count_only_from_a_trusted_proxy() -> None:
    forwarded = {"x_forwarded_host": "chat.example.org, inner.example", "x_forwarded_proto": "https"}
    trusting = SocketOriginCheck(_noop, trusted=LOOPBACK)
    assert trusting.accepts(scope("https://chat.example.org", peer="127.0.0.1", **forwarded))
    assert not trusting.accepts(scope("https://chat.example.org", peer="203.0.113.5", **forwarded))
    assert not SocketOriginCheck(_noop, trusted=[]).accepts(
        scope("https://chat.example.org", peer="127.0.0.1", **forwarded)
    )


def test_a_refused_websocket_is_closed_before_it_is_accepted() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("socket.io must not see it")

    asyncio.run(SocketOriginCheck(app, trusted=[])(scope("http://evil.test"), _noop, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_origins_are_normalised() -> None:
    assert normalize_origin("HTTP://Example.COM:80") == "http://example.com"
    assert normalize_origin("wss://example.com:443") == "https://example.com"
    assert normalize_origin("http://[::1]:8000") == "http://[::1]:8000"
    assert normalize_origin("http://example.com/path") is None
    assert normalize_origin("ftp://example.com") is None
