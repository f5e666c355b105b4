"""What an upstream may make the gateway hold or wait for, through the API (docs/behaviour.md#timeouts,
docs/behaviour.md#request-limits): answers over MAX_UPSTREAM_BODY_BYTES, a drip, a client that leaves."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chat_helpers import add_channel, chat_body, joined, log_rows, read_sse, unique_model
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, production_env, run_app, wait_until
from tests.upstream_server import ANSWER_WORDS, UpstreamServer

ANSWER = "".join(ANSWER_WORDS)
UPSTREAM_ERROR = {"error": {"type": "upstream_error", "message": "上游渠道暂时不可用，请稍后再试"}}


@pytest.fixture
def channel_for(client: httpx.Client, admin_headers: dict, upstream: UpstreamServer):
    def make(scenario: str, model: str) -> dict:
        return add_channel(client, admin_headers, base_url=upstream.base_url(scenario), model=model)

    return make


def _ends(upstream: UpstreamServer, model: str, scenario: str, count: int = 1) -> list[bool]:
    """Whether each of ``model``'s answers from ``scenario`` was cut off, once ``count`` have ended."""

    def ends() -> list[bool]:
        return [end.cancelled for end in upstream.ends_of(model) if end.scenario == scenario]

    wait_until(lambda: len(ends()) >= count, what=f"{count} ends of {model}'s {scenario} answers")
    return ends()


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_over_the_cap_is_skipped_for_the_next_channel(
    client: httpx.Client, channel_for, live_app: RunningApp, upstream: UpstreamServer, stream: bool
) -> None:
    """64 MiB against the default cap of 16 MiB: a JSON answer, or a stream's first line."""
    model = unique_model("huge")
    huge = channel_for("huge-64", model)
    good = channel_for("ok", model)
    response = client.post("/api/chat/completions", json=chat_body(model, stream=stream))
    assert response.status_code == 200
    if stream:
        assert joined(read_sse(response), "content") == ANSWER
    else:
        assert response.json()["choices"][0]["message"]["content"] == ANSWER
    [row] = log_rows(live_app.db_path, model)
    assert (row["status"], row["channel_id"]) == ("ok", good["id"])
    assert _ends(upstream, model, "huge") == [True]
    assert f"channel {huge['id']} (channel for {model}) skipped: bad_stream" in live_app.log_text()


def test_a_line_over_the_cap_mid_stream_ends_the_stream_with_the_error_event(
    client: httpx.Client, channel_for, live_app: RunningApp, upstream: UpstreamServer
) -> None:
    model = unique_model("hugelate")
    channel_for("hugelate-64", model)
    with client.stream("POST", "/api/chat/completions", json=chat_body(model, stream=True)) as response:
        events = read_sse(response)
    assert joined(events, "content") == "first" and events[-1] == UPSTREAM_ERROR
    [row] = log_rows(live_app.db_path, model)
    assert row["status"] == "upstream_error"
    assert _ends(upstream, model, "hugelate") == [True]


def test_a_dripping_answer_is_bounded_by_the_idle_timeout(
    client: httpx.Client, channel_for, live_app: RunningApp, upstream: UpstreamServer
) -> None:
    """A byte every 0.5 s keeps every read shorter than the idle timeout (3 s here); the whole wait for
    the non-streamed answer is bounded by it all the same."""
    model = unique_model("drip")
    channel_for("drip-500", model)
    response = client.post("/api/chat/completions", json=chat_body(model, stream=False))
    assert (response.status_code, response.json()) == (503, UPSTREAM_ERROR)
    [row] = log_rows(live_app.db_path, model)
    assert row["status"] == "timeout"
    assert _ends(upstream, model, "drip") == [True]


@pytest.fixture(scope="module")
def patient_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """An app whose upstream timeouts are far longer than any test: only a client leaving can end a
    call early, so a closed upstream connection is the client's doing, whatever the machine's load."""
    data_dir: Path = tmp_path_factory.mktemp("patient")
    env = production_env(
        data_dir, GUEST_RPM="1000000", UPSTREAM_FIRST_BYTE_TIMEOUT="3600", UPSTREAM_IDLE_TIMEOUT="3600"
    )
    with run_app(env, log_path=data_dir / "app.log") as app:
        yield app


def _admin_headers(http: httpx.Client) -> dict[str, str]:
    login = http.post("/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _request(body: dict) -> bytes:
    raw = json.dumps(body).encode()
    head = "POST /api/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(raw)}\r\n\r\n".encode() + raw


def _read_until(sock: socket.socket, marker: bytes) -> None:
    received = b""
    while marker not in received:
        piece = sock.recv(65536)
        assert piece, f"closed before {marker!r} came: {received[:200]!r}"
        received += piece


def _leave(
    app: RunningApp, upstream: UpstreamServer, scenario: str, bodies: list[dict], *, after: bytes
) -> None:
    """Send each body on its own connection; once the upstream has every request (and, if ``after`` is
    given, each client has read it from the answer), close the connections without reading on."""
    host, port = app.base_url.removeprefix("http://").split(":")
    models = {body["model"] for body in bodies}
    sockets = []
    try:
        for body in bodies:
            sock = socket.create_connection((host, int(port)), timeout=HANG_SECONDS)
            sockets.append(sock)
            sock.sendall(_request(body))
        wait_until(
            lambda: (
                sum(r.body.get("model") in models for r in upstream.requests_for(scenario)) >= len(bodies)
            ),
            what="the requests upstream",
        )
        for sock in sockets:
            if after:
                _read_until(sock, after)
    finally:
        for sock in sockets:
            sock.close()


# (scenario, stream, what the client waits for before it leaves): no answer yet (a non-streamed one,
# or a stream's first event), a non-streamed answer arriving a byte at a time, a stream after its first event
LEAVINGS = [
    pytest.param("silent", False, b"", id="before-the-answer"),
    pytest.param("silent", True, b"", id="before-the-first-event"),
    pytest.param("drip-200", False, b"", id="while-a-non-streamed-answer-arrives"),
    pytest.param("drip-200", True, b'"first"', id="mid-stream"),
]


@pytest.mark.parametrize(("scenario", "stream", "after"), LEAVINGS)
def test_clients_that_leave_close_their_upstream_connections(
    patient_app: RunningApp, upstream: UpstreamServer, scenario: str, stream: bool, after: bytes
) -> None:
    """Five clients leave while their calls are under way. The upstream server sees each of their
    connections closed (it no longer holds them) and each answer cut off, and each call is logged
    ``client_aborted``: with upstream timeouts of an hour nothing else could have ended them."""
    model = unique_model("leaving")
    with httpx.Client(base_url=patient_app.base_url, timeout=HANG_SECONDS) as http:
        add_channel(http, _admin_headers(http), base_url=upstream.base_url(scenario), model=model)
    _leave(patient_app, upstream, scenario, [chat_body(model, stream=stream)] * 5, after=after)
    peers = [r.peer for r in upstream.requests_for(scenario) if r.body.get("model") == model]
    assert len(peers) == 5 and None not in peers
    wait_until(lambda: not upstream.open_peers() & set(peers), what="the upstream connections closed")
    assert _ends(upstream, model, scenario.split("-")[0], count=5) == [True] * 5
    rows = log_rows(patient_app.db_path, model, expect=5)
    assert [row["status"] for row in rows] == ["client_aborted"] * 5
