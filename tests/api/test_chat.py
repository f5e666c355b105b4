"""POST /api/chat/completions and the model lists against the loopback upstream (docs/api.md#chat)."""

from __future__ import annotations

import json
import socket

import httpx
import openai
import pytest

from tests.chat_helpers import add_channel, chat_body, joined, log_rows, read_sse, unique_model
from tests.helpers import HANG_SECONDS, RunningApp, wait_until
from tests.upstream_server import ANSWER_WORDS, UPSTREAM_ERROR_BODY, UpstreamServer

ANSWER = "".join(ANSWER_WORDS)
THINKING = "Let me think about it."


@pytest.fixture
def channel_for(client: httpx.Client, admin_headers: dict, upstream: UpstreamServer):
    def make(scenario: str = "ok", model: str | None = None, **extra) -> dict:
        return add_channel(
            client,
            admin_headers,
            base_url=upstream.base_url(scenario),
            model=model or unique_model(scenario),
            **extra,
        )

    return make


def assert_upstream_error(response: httpx.Response) -> None:
    assert response.status_code in (502, 503), response.text
    assert response.json() == {
        "error": {"type": "upstream_error", "message": "上游渠道暂时不可用，请稍后再试"}
    }


def test_models_lists_enabled_channels_once_per_model(client: httpx.Client, channel_for) -> None:
    model = unique_model("listed")
    channel_for(model=model, name="Primary")
    channel_for(model=model, name="Secondary")
    hidden = channel_for(is_enabled=False)
    models = client.get("/api/chat/models").json()
    # shown by the public name, never a channel's name (issue 17)
    assert [m for m in models if m["id"] == model] == [{"id": model, "name": model}]
    assert all(m["id"] != hidden["model_id"] for m in models)
    openai_list = client.get("/api/models").json()
    assert openai_list["object"] == "list"
    assert sum(1 for m in openai_list["data"] if m["id"] == model) == 1


def test_stream_relays_chunks_and_sends_the_key_upstream(
    client: httpx.Client, channel_for, upstream: UpstreamServer, live_app: RunningApp
) -> None:
    channel = channel_for("ok")
    with client.stream(
        "POST", "/api/chat/completions", json=chat_body(channel["model_id"], stream=True)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        events = read_sse(response)
    assert events[-1] == "[DONE]"
    assert joined(events, "content") == ANSWER
    assert not any(isinstance(e, dict) and e.get("usage") for e in events), "usage only when the client asks"
    sent = upstream.requests_for("ok")[-1]
    assert sent.headers["authorization"] == f"Bearer {channel['plain_key']}"
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["model"] == channel["model_id"]
    [row] = log_rows(live_app.db_path, channel["model_id"])
    assert row["status"] == "ok" and row["tokens_estimated"] == 0
    assert (row["prompt_tokens"], row["completion_tokens"]) == (11, len(ANSWER_WORDS))
    assert row["channel_id"] == channel["id"] and row["ip_address"] == "127.0.0.1" and row["user_id"] is None
    assert row["duration_ms"] >= 0


def test_stream_passes_usage_and_sampling_fields_when_asked(
    client: httpx.Client, channel_for, upstream: UpstreamServer
) -> None:
    channel = channel_for("ok")
    body = chat_body(
        channel["model_id"],
        stream=True,
        temperature=0.3,
        max_tokens=50,
        stream_options={"include_usage": True},
    )
    with client.stream("POST", "/api/chat/completions", json=body) as response:
        events = read_sse(response)
    usage = [e["usage"] for e in events if isinstance(e, dict) and e.get("usage")]
    assert usage == [{"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17}]
    sent = upstream.requests_for("ok")[-1].body
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 50


@pytest.mark.parametrize("scenario", ["reasoning_content", "reasoning", "think"])
def test_reasoning_is_normalised_in_streams(client: httpx.Client, channel_for, scenario: str) -> None:
    channel = channel_for(scenario)
    with client.stream(
        "POST", "/api/chat/completions", json=chat_body(channel["model_id"], stream=True)
    ) as response:
        events = read_sse(response)
    assert joined(events, "reasoning_content") == THINKING
    expected_answer = "Hello there." if scenario == "think" else ANSWER
    assert joined(events, "content") == expected_answer
    for event in events:
        if isinstance(event, dict) and event.get("choices"):
            delta = event["choices"][0]["delta"]
            assert "reasoning" not in delta
            assert "<think>" not in (delta.get("content") or "") and "</think>" not in (
                delta.get("content") or ""
            )


def test_an_untagged_close_cut_across_chunks_is_split_in_streams_and_answers(
    client: httpx.Client, channel_for
) -> None:
    """R1 distills served by vLLM: ``…</`` + ``thi`` + ``nk>`` with no ``<think>``, first and second
    stream on the channel (the second delivers the reasoning live), and a non-streamed answer."""
    channel = channel_for("thinkopen-3")
    for _ in range(2):
        with client.stream(
            "POST", "/api/chat/completions", json=chat_body(channel["model_id"], stream=True)
        ) as response:
            events = read_sse(response)
        assert (joined(events, "reasoning_content"), joined(events, "content")) == (THINKING, ANSWER)
        assert events[-1] == "[DONE]"
    answer = client.post("/api/chat/completions", json=chat_body(channel["model_id"], stream=False))
    message = answer.json()["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == (THINKING, ANSWER)


@pytest.mark.parametrize("scenario", ["ok", "reasoning_content", "reasoning", "think"])
def test_non_stream_answers(client: httpx.Client, channel_for, scenario: str) -> None:
    channel = channel_for(scenario)
    response = client.post("/api/chat/completions", json=chat_body(channel["model_id"], stream=False))
    assert response.status_code == 200
    answer = response.json()
    message = answer["choices"][0]["message"]
    assert answer["object"] == "chat.completion"
    assert message["content"] == ANSWER
    assert message.get("reasoning_content") == (None if scenario == "ok" else THINKING)
    assert "reasoning" not in message


def test_openai_sdk(live_app: RunningApp, client: httpx.Client, channel_for, unique_email: str) -> None:
    """SDK clients pass a user token as their API key; the gateway logs the calls as that user."""
    channel = channel_for("reasoning_content")
    client.post("/api/auth/register", json={"email": unique_email, "password": "password-1"})
    token = client.post("/api/auth/login", json={"email": unique_email, "password": "password-1"}).json()
    sdk = openai.OpenAI(base_url=f"{live_app.base_url}/api", api_key=token["access_token"], max_retries=0)
    assert channel["model_id"] in [model.id for model in sdk.models.list()]

    stream = sdk.chat.completions.create(
        model=channel["model_id"], messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    thinking = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert thinking == THINKING

    completion = sdk.chat.completions.create(
        model=channel["model_id"], messages=[{"role": "user", "content": "hi"}], stream=False
    )
    assert completion.choices[0].message.content == ANSWER
    assert completion.usage is not None and completion.usage.completion_tokens == 6

    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    rows = log_rows(live_app.db_path, channel["model_id"], expect=2)
    assert [row["username"] for row in rows] == [unique_email, unique_email]
    assert all(row["user_id"] for row in rows)


def test_unknown_or_disabled_model_is_404(client: httpx.Client, channel_for) -> None:
    for model in ("no-such-model", channel_for(is_enabled=False)["model_id"]):
        response = client.post("/api/chat/completions", json=chat_body(model, stream=True))
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "model_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": []},
        {"model": "m"},
        {"messages": [{"role": "user", "content": "x"}]},
        {"model": "m", "messages": [{"role": "wizard", "content": "x"}]},
        {"model": "m", "messages": "hi"},
    ],
)
def test_malformed_chat_bodies_are_422(client: httpx.Client, body: dict) -> None:
    response = client.post("/api/chat/completions", json=body)
    assert response.status_code == 422 and response.json()["error"]["type"] == "validation_error"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "请求体不是有效的 JSON"),
        (b"", "请求体不是有效的 JSON"),
        (b'["model", "m"]', "Input should be an object"),
        (b'{"model": "m", "messages": [{"content": "x"}]}', "messages.0.role: Field required"),
    ],
)
def test_unparsable_chat_bodies_are_readable_422s(client: httpx.Client, raw: bytes, message: str) -> None:
    response = client.post("/api/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error" and error["message"] == message
    assert all(detail["loc"][0] == "body" for detail in error["details"])


@pytest.mark.parametrize("stream", ["true", "false"])
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('"temperature": NaN', "temperature: NaN 与 Infinity 不是 JSON 数值"),
        ('"logit_bias": {"50256": -Infinity}', "logit_bias.50256: NaN 与 Infinity 不是 JSON 数值"),
        ('"tools": [{"x": [1, Infinity]}]', "tools.0.x.1: NaN 与 Infinity 不是 JSON 数值"),
        # valid JSON, but beyond what the upstream call's encoder carries (found by schemathesis: a 500)
        ('"seed": 100000000000000000000000000000', "seed: 整数超出 64 位范围"),
        ('"tools": [{"x": [-9223372036854775809]}]', "tools.0.x.0: 整数超出 64 位范围"),
    ],
)
def test_nan_and_infinity_are_readable_422s(
    client: httpx.Client, channel_for, stream: str, extra: str, message: str
) -> None:
    model = channel_for()["model_id"]
    messages = '[{"role": "user", "content": "x"}]'
    raw = f'{{"model": "{model}", "stream": {stream}, "messages": {messages}, {extra}}}'
    response = client.post("/api/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == message


def test_the_words_nan_and_infinity_in_text_pass(client: httpx.Client, channel_for) -> None:
    body = chat_body(channel_for()["model_id"], stream=False)
    body["messages"][0]["content"] = "NaN, Infinity and -Infinity are not JSON numbers"
    body["user"] = "NaN"
    body["seed"] = 18446744073709551615  # the largest 64-bit integer still goes through
    body["metadata"] = {"order": "12345678901234567890123"}  # and long digit runs in text
    response = client.post("/api/chat/completions", json=body)
    assert response.status_code == 200, response.text


def test_oversized_chat_body_is_413(client: httpx.Client) -> None:
    huge = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * (33 * 1024 * 1024) + b'"}]}'
    response = client.post("/api/chat/completions", content=huge)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"


def test_chat_completions_answers_cors(client: httpx.Client, channel_for) -> None:
    channel = channel_for()
    origin = {"Origin": "https://app.example"}
    preflight = client.options(
        "/api/chat/completions",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]
    response = client.post(
        "/api/chat/completions", json=chat_body(channel["model_id"], stream=False), headers=origin
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()


def test_invalid_token_is_401_not_guest(client: httpx.Client, channel_for) -> None:
    channel = channel_for()
    response = client.post(
        "/api/chat/completions",
        json=chat_body(channel["model_id"], stream=False),
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize("stream", [True, False])
def test_failing_upstream_gives_upstream_error_without_its_body(
    client: httpx.Client, channel_for, live_app: RunningApp, stream: bool
) -> None:
    channel = channel_for("error500")
    response = client.post("/api/chat/completions", json=chat_body(channel["model_id"], stream=stream))
    assert_upstream_error(response)
    for secret in (UPSTREAM_ERROR_BODY, "hunter2", channel["plain_key"], "127.0.0.1:"):
        assert secret not in response.text
    [row] = log_rows(live_app.db_path, channel["model_id"])
    assert row["status"] == "upstream_error" and row["channel_id"] == channel["id"]


def test_failover_skips_failing_channels(
    client: httpx.Client, channel_for, live_app: RunningApp, upstream: UpstreamServer
) -> None:
    model = unique_model("failover")
    broken = [
        channel_for("error500", model=model),
        channel_for("error429", model=model),
        channel_for("ok", model=model),
    ]
    for stream in (True, False, True, False):
        response = client.post("/api/chat/completions", json=chat_body(model, stream=stream))
        assert response.status_code == 200, response.text
    rows = log_rows(live_app.db_path, model, expect=4)
    assert [row["status"] for row in rows] == ["ok"] * 4
    assert {row["channel_id"] for row in rows} == {broken[2]["id"]}


def test_failover_on_refused_connection_and_first_byte_timeout(
    client: httpx.Client, admin_headers: dict, channel_for, live_app: RunningApp
) -> None:
    model = unique_model("failover2")
    add_channel(client, admin_headers, base_url="http://127.0.0.1:9/v1", model=model)  # nothing listens on 9
    channel_for("hang", model=model)
    good = channel_for("ok", model=model)
    for _ in range(3):  # each rotation start: refused, hang (2 s first-byte timeout) or ok
        with client.stream("POST", "/api/chat/completions", json=chat_body(model, stream=True)) as response:
            assert response.status_code == 200
            assert joined(read_sse(response), "content") == ANSWER
    assert {row["channel_id"] for row in log_rows(live_app.db_path, model, expect=3)} == {good["id"]}


def test_channels_of_one_model_share_traffic(client: httpx.Client, channel_for, live_app: RunningApp) -> None:
    model = unique_model("shared")
    first, second = channel_for("ok", model=model), channel_for("nousage", model=model)
    for _ in range(6):
        assert client.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code == 200
    rows = log_rows(live_app.db_path, model, expect=6)
    counts = {cid: sum(1 for r in rows if r["channel_id"] == cid) for cid in (first["id"], second["id"])}
    assert counts == {first["id"]: 3, second["id"]: 3}


def test_error_mid_stream_becomes_a_final_error_event(
    client: httpx.Client, channel_for, live_app: RunningApp
) -> None:
    channel = channel_for("midfail")
    with client.stream(
        "POST", "/api/chat/completions", json=chat_body(channel["model_id"], stream=True)
    ) as response:
        assert response.status_code == 200
        events = read_sse(response)
    assert joined(events, "content") == "Hello there"
    assert events[-1] == {"error": {"type": "upstream_error", "message": "上游渠道暂时不可用，请稍后再试"}}
    [row] = log_rows(live_app.db_path, channel["model_id"])
    assert row["status"] == "upstream_error"


def test_stall_after_first_chunk_times_out(client: httpx.Client, channel_for, live_app: RunningApp) -> None:
    channel = channel_for("stall")
    with client.stream(
        "POST", "/api/chat/completions", json=chat_body(channel["model_id"], stream=True)
    ) as response:
        events = read_sse(response)
    assert joined(events, "content") == "first"
    assert events[-1]["error"]["type"] == "upstream_error"
    [row] = log_rows(live_app.db_path, channel["model_id"])
    assert row["status"] == "timeout"


def test_malformed_sse_lines_are_skipped(client: httpx.Client, channel_for) -> None:
    channel = channel_for("malformed")
    with client.stream(
        "POST", "/api/chat/completions", json=chat_body(channel["model_id"], stream=True)
    ) as response:
        events = read_sse(response)
    assert joined(events, "content") == ANSWER and events[-1] == "[DONE]"


def test_client_disconnect_ends_the_upstream_request(
    live_app: RunningApp, channel_for, upstream: UpstreamServer
) -> None:
    """The stalled upstream request ends when the client leaves, not later at the idle timeout (3 s): the
    log says which of the two ended it."""
    channel = channel_for("stall")
    model = channel["model_id"]
    with (
        httpx.Client(base_url=live_app.base_url, timeout=HANG_SECONDS) as http,
        http.stream("POST", "/api/chat/completions", json=chat_body(model, stream=True)) as response,
    ):
        for line in response.iter_lines():
            if '"first"' in line:
                break
    wait_until(lambda: upstream.ends_of(model), what="the end of the upstream stream")
    assert [end.cancelled for end in upstream.ends_of(model)] == [True]
    [row] = log_rows(live_app.db_path, model)
    assert row["status"] == "client_aborted", "ended by the client leaving, not by the idle timeout"


def test_a_client_gone_before_the_first_event_ends_the_upstream_request(
    live_app: RunningApp, channel_for, upstream: UpstreamServer
) -> None:
    """The client leaves while the gateway waits for the upstream's first event; the event comes after
    all. Nobody reads the stream then, yet the upstream request is closed and the call logged."""
    channel = channel_for("latefirst-800")
    model = channel["model_id"]
    host, port = live_app.base_url.removeprefix("http://").split(":")
    body = json.dumps(chat_body(model, stream=True)).encode()
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(
            b"POST /api/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        wait_until(
            lambda: any(r.body.get("model") == model for r in upstream.requests_for("latefirst-800")),
            what="the request upstream",
        )
    wait_until(lambda: upstream.ends_of(model), what="the end of the upstream stream")
    assert [end.cancelled for end in upstream.ends_of(model)] == [True]
    [row] = log_rows(live_app.db_path, model)
    assert row["status"] == "client_aborted"


def test_tokens_are_estimated_without_usage(client: httpx.Client, channel_for, live_app: RunningApp) -> None:
    channel = channel_for("cjk")
    body = chat_body(channel["model_id"], stream=True, content="请用中文回答这个问题")
    with client.stream("POST", "/api/chat/completions", json=body) as response:
        assert joined(read_sse(response), "content") == "你好，我是上游服务器。"
    [row] = log_rows(live_app.db_path, channel["model_id"])
    assert row["tokens_estimated"] == 1
    assert row["completion_tokens"] == 11  # one per CJK character
    assert 10 <= row["prompt_tokens"] <= 20


def test_logs_and_app_log_hold_no_content_or_key(
    client: httpx.Client, channel_for, live_app: RunningApp
) -> None:
    channel = channel_for("error500", model=unique_model("secretive"))
    channel_for("ok", model=channel["model_id"])
    secret_question = "my-very-private-question-42"
    client.post(
        "/api/chat/completions", json=chat_body(channel["model_id"], stream=False, content=secret_question)
    )
    rows = log_rows(live_app.db_path, channel["model_id"])
    assert rows and secret_question not in str(rows) and ANSWER not in str(rows)
    app_log = live_app.log_text()
    assert channel["plain_key"] not in app_log and secret_question not in app_log
    assert UPSTREAM_ERROR_BODY not in app_log
