"""What an upstream may make the gateway hold or wait for, through the API (docs/behaviour.md#timeouts,
docs/behaviour.md#request-limits): answers over MAX_UPSTREAM_BODY_BYTES, a drip, a client that leaves."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.chat_helpers import add_channel, chat_body, joined, log_rows, read_sse, unique_model
from tests.helpers import RunningApp, wait_until
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


def _leave_after_upstream_asked(app: RunningApp, upstream: UpstreamServer, bodies: list[dict]) -> None:
    """Send each body on its own connection, wait until the upstream has every request, then close
    the connections without reading an answer."""
    host, port = app.base_url.removeprefix("http://").split(":")
    sockets = []
    try:
        for body in bodies:
            raw = json.dumps(body).encode()
            sock = socket.create_connection((host, int(port)))
            sockets.append(sock)
            sock.sendall(
                b"POST /api/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(raw)}\r\n\r\n".encode()
                + raw
            )
        models = {body["model"] for body in bodies}
        wait_until(
            lambda: (
                sum(r.body.get("model") in models for r in upstream.requests_for("silent")) >= len(bodies)
            ),
            what="the requests upstream",
        )
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.parametrize("stream", [False, True])
def test_clients_that_leave_while_the_upstream_is_silent_close_its_connections(
    channel_for, live_app: RunningApp, upstream: UpstreamServer, stream: bool
) -> None:
    """Five clients leave while the gateway waits for an upstream that has not answered (a non-streamed
    answer, or a stream's first event). Each upstream connection is closed when its client leaves, not
    at a timeout: each call is logged ``client_aborted`` (a timeout would log ``timeout``)."""
    model = unique_model("silent")
    channel_for("silent", model)
    _leave_after_upstream_asked(live_app, upstream, [chat_body(model, stream=stream)] * 5)
    assert _ends(upstream, model, "silent", count=5) == [True] * 5
    rows = log_rows(live_app.db_path, model, expect=5)
    assert [row["status"] for row in rows] == ["client_aborted"] * 5
