"""Request bodies are capped on every route (docs/behaviour.md#request-limits): a 413 JSON error that
comes without the server reading past the cap, and the connection closed after it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_security_headers import COMMON
from tests.chat_helpers import add_channel, chat_body, unique_model
from tests.helpers import HANG_SECONDS, RunningApp, production_env, read_until_closed, run_app
from tests.upstream_server import UpstreamServer

MIB = 1024 * 1024
TOO_LARGE = {"error": {"type": "payload_too_large", "message": "请求体过大（上限 1 MiB）"}}
# API routes, a page, NiceGUI's own endpoints (socket.io's long-polling), an unknown path; uploads (the
# chat page's image attachments) have their own cap, tested below
ROUTES = [
    "/api/auth/register",
    "/api/auth/login",
    "/api/admin/channels",
    "/api/no-such-route",
    "/login",
    "/_nicegui_ws/socket.io/?EIO=4&transport=polling",
]


def _connect(app: RunningApp) -> socket.socket:
    host, port = app.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=HANG_SECONDS)
    return sock


def _answer(raw: bytes) -> tuple[int, dict[str, str], object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.parametrize("path", ROUTES)
def test_a_declared_length_over_the_cap_is_refused_before_the_body(live_app: RunningApp, path: str) -> None:
    """The client sends the head only: the 413 comes without a byte of the body, then the close."""
    with _connect(live_app) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {300 * MIB}\r\n\r\n".encode()
        )
        status, headers, body = _answer(read_until_closed(sock))
    assert (status, body) == (413, TOO_LARGE)
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert headers.items() >= COMMON.items()  # the security headers, though the cap is outside their layer


def test_an_upload_takes_one_image_attachment_and_no_more(live_app: RunningApp) -> None:
    """NiceGUI's upload route takes an image of up to 10 MiB and its form (11 MiB), nothing larger."""
    with _connect(live_app) as sock:
        sock.sendall(
            f"POST /_nicegui/client/x/upload/y HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\n"
            f"Content-Length: {11 * MIB + 1}\r\n\r\n".encode()
        )
        status, _headers, body = _answer(read_until_closed(sock))
    assert (status, body) == (
        413,
        {"error": {"type": "payload_too_large", "message": "请求体过大（上限 11 MiB）"}},
    )


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/admin/channels"])
def test_a_chunked_body_is_refused_once_it_crosses_the_cap(live_app: RunningApp, path: str) -> None:
    """The client sends just over the cap and then waits, its body unfinished: the server has stopped
    reading and answers."""
    with _connect(live_app) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        for size in (MIB // 2, MIB // 2, 1):
            sock.sendall(b"%x\r\n%s\r\n" % (size, b"x" * size))
        status, headers, body = _answer(read_until_closed(sock))
    assert (status, body) == (413, TOO_LARGE)
    assert headers["connection"] == "close"


def test_httpx_gets_the_413_while_it_sends_the_rest(live_app: RunningApp) -> None:
    """A client that writes its whole body before reading (httpx, requests) still reads the answer."""
    with httpx.Client(base_url=live_app.base_url, timeout=HANG_SECONDS) as http:
        declared = http.post("/api/auth/register", content=b"x" * (40 * MIB))
        chunked = http.post("/api/auth/register", content=(b"x" * MIB for _ in range(40)))
    for response in (declared, chunked):
        assert (response.status_code, response.json()) == (413, TOO_LARGE)


def test_bodies_within_the_cap_pass(client: httpx.Client, unique_email: str) -> None:
    padding = " " * (MIB - 200)
    raw = f'{{"email": "{unique_email}", "password": "password-123"}}{padding}'.encode()
    assert len(raw) <= MIB
    response = client.post("/api/auth/register", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    streamed = client.post(
        "/api/auth/register",
        content=iter([raw[: MIB // 2], raw[MIB // 2 :]]),
        headers={"Content-Type": "application/json"},
    )
    assert streamed.status_code == 409, streamed.text  # read whole: the e-mail now exists


def test_chat_takes_bodies_up_to_its_own_cap(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    model = unique_model("big-body")
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model)
    body = chat_body(model, stream=False, content="x" * (2 * MIB))
    assert client.post("/api/chat/completions", json=body).status_code == 200
    chunked = json.dumps(body).encode()
    response = client.post("/api/chat/completions", content=iter([chunked[:MIB], chunked[MIB:]]))
    assert response.status_code == 200
    assert len(upstream.requests_for("ok")[-1].body["messages"][0]["content"]) == 2 * MIB
    over = b'{"messages": [{"role": "user", "content": "' + b"x" * (32 * MIB) + b'"}]}'
    for content in (over, iter([over[: 16 * MIB], over[16 * MIB :]])):
        response = client.post("/api/chat/completions", content=content)
        assert response.status_code == 413
        assert response.json()["error"] == {
            "type": "payload_too_large",
            "message": "请求体过大（上限 32 MiB）",
        }


@pytest.fixture(scope="module")
def small_caps_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data_dir: Path = tmp_path_factory.mktemp("small-caps")
    env = production_env(data_dir, MAX_BODY_BYTES="2048", MAX_CHAT_BODY_BYTES="4096")
    with run_app(env, log_path=data_dir / "app.log") as app:
        yield app


def test_the_caps_are_configurable(small_caps_app: RunningApp) -> None:
    with httpx.Client(base_url=small_caps_app.base_url, timeout=HANG_SECONDS) as http:
        register = http.post("/api/auth/register", content=b" " * 2049)
        chat_within = http.post("/api/chat/completions", content=b" " * 4096)
        chat_over = http.post("/api/chat/completions", content=b" " * 4097)
    assert register.status_code == 413
    assert register.json()["error"]["message"] == "请求体过大（上限 2 KiB）"
    assert chat_within.status_code == 422  # read and parsed: blank is not JSON
    assert chat_over.status_code == 413
    assert chat_over.json()["error"]["message"] == "请求体过大（上限 4 KiB）"
