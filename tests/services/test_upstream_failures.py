"""Why a call failed (the reason code in its row and in the 503), what the gateway does with upstreams
that stream in their own way, and that cancelling at any moment leaves nothing open upstream."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from app.models import Channel
from services.call_log import Caller
from services.call_record import CallRecord, decode_line, encode_fields
from services.errors import UpstreamUnavailable
from services.upstream import UpstreamTimeouts
from tests.helpers import free_port, wait_until_async
from tests.services.test_chat import ANSWER, MODES, Harness
from tests.upstream_server import THINKING_WORDS, UpstreamServer

BODY = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def harness(tmp_path: Path, upstream: UpstreamServer) -> AsyncIterator[Harness]:
    made = Harness(tmp_path, upstream)
    yield made
    await made.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("scenario", "status", "reason"),
    [
        ("error500", "upstream_error", "http_5xx"),
        ("error401", "upstream_error", "http_401"),
        ("error429", "upstream_error", "http_429"),
        ("error404", "upstream_error", "http_4xx"),
        ("hang", "timeout", None),
    ],
)
async def test_a_failed_call_carries_its_reason(
    harness: Harness, mode: str, scenario: str, status: str, reason: str | None
) -> None:
    harness.add(scenario, "m")
    with pytest.raises(UpstreamUnavailable) as raised:
        await harness.call(mode, "m")
    expected = reason or ("timeout_first_event" if mode == "stream" else "timeout_idle")
    assert raised.value.reason == expected
    assert [(row.status, row.error) for row in harness.rows("m")] == [(status, expected)]


@pytest.mark.parametrize("mode", MODES)
async def test_a_refused_connection_is_timeout_connect_without_a_timeout_status(
    harness: Harness, mode: str
) -> None:
    channel_id = harness.add("ok", "m")
    with Session(harness.engine) as session:
        channel = session.get(Channel, channel_id)
        assert channel is not None
        channel.base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
        session.add(channel)
        session.commit()
    harness.directory.refresher.changed()
    with pytest.raises(UpstreamUnavailable) as raised:
        await harness.call(mode, "m")
    assert raised.value.reason == "timeout_connect"  # SPEC §5's name for "no connection could be made"
    assert [(row.status, row.error) for row in harness.rows("m")] == [("upstream_error", "timeout_connect")]


@pytest.mark.parametrize("mode", MODES)
async def test_a_fault_of_ours_is_server_error(
    harness: Harness, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.add("ok", "m")

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(harness.client, "post_json", broken)
    with pytest.raises(RuntimeError):
        await harness.call(mode, "m")
    assert [(row.status, row.error) for row in harness.rows("m")] == [("upstream_error", "server_error")]


def test_journal_lines_from_before_the_error_field_still_read() -> None:
    record = CallRecord(
        user_id=None,
        username=None,
        ip_address="192.0.2.1",
        channel_id=3,
        model_id="m",
        prompt_tokens=1,
        completion_tokens=2,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        status="upstream_error",
        tokens_estimated=False,
        duration_ms=5,
        error="tls",
    )

    def line(fields: bytes) -> bytes:
        body = b"7\t" + fields
        return f"{zlib.crc32(body):08x}\t".encode() + body + b"\n"

    new = line(encode_fields(record))
    assert decode_line(new) == (7, record)
    old_fields = encode_fields(record).rsplit(b"\t", 3)[0]  # an 11-field line, as written before
    decoded = decode_line(line(old_fields))
    assert decoded is not None and decoded[1].error is None and decoded[1].duration_ms == 5


@pytest.fixture
async def patient_harness(tmp_path: Path, upstream: UpstreamServer) -> AsyncIterator[Harness]:
    """Timeouts far beyond the test: on a busy machine the usual 0.5 s could end a call by itself."""
    made = Harness(tmp_path, upstream, UpstreamTimeouts(connect=30, first_byte=300, idle=300))
    yield made
    await made.close()


async def test_an_upstream_refusing_stream_options_is_asked_again_without_and_remembered(
    patient_harness: Harness, upstream: UpstreamServer
) -> None:
    harness = patient_harness
    channel_id = harness.add("nostreamoptions", "m")
    before = len(upstream.requests_for("nostreamoptions"))
    assert await harness.call("stream", "m") == ANSWER
    asked = [r.body for r in upstream.requests_for("nostreamoptions")[before:]]
    assert ["stream_options" in body for body in asked] == [True, False]
    with Session(harness.engine) as session:
        channel = session.get(Channel, channel_id)
        assert channel is not None and channel.stream_options_unsupported
    assert await harness.call("stream", "m") == ANSWER  # asked once, without
    asked = [r.body for r in upstream.requests_for("nostreamoptions")[before:]]
    assert ["stream_options" in body for body in asked] == [True, False, False]
    assert [row.status for row in harness.rows("m")] == ["ok", "ok"]


async def test_a_json_answer_to_a_stream_becomes_events(harness: Harness) -> None:
    harness.add("jsonstream", "m")
    stream = await harness.service.open_stream(body={**BODY, "model": "m"}, caller=Caller(ip="192.0.2.1"))
    try:
        pieces = [piece async for piece in stream.pieces()]
    finally:
        await stream.aclose()
    assert "".join(p.content for p in pieces) == ANSWER
    assert pieces[-1].done and all(p.sse.startswith(b"data: ") for p in pieces)
    [row] = harness.rows("m")
    assert (row.status, row.prompt_tokens, row.tokens_estimated) == ("ok", 11, False)


async def test_reasoning_without_an_opening_tag_is_split(harness: Harness) -> None:
    harness.add("thinkopen", "m")
    answer = await harness.service.complete(body={**BODY, "model": "m"}, caller=Caller(ip="192.0.2.1"))
    message = answer["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == ("".join(THINKING_WORDS), ANSWER)
    stream = await harness.service.open_stream(body={**BODY, "model": "m"}, caller=Caller(ip="192.0.2.1"))
    try:
        pieces = [piece async for piece in stream.pieces()]
    finally:
        await stream.aclose()
    assert "".join(p.reasoning for p in pieces) == "Let me think."
    assert "".join(p.content for p in pieces) == "Hello there."


CANCELS = 200


async def test_cancelling_at_any_moment_leaves_nothing_open(
    patient_harness: Harness, upstream: UpstreamServer
) -> None:
    """200 calls cancelled while waiting for the first event, mid-stream, and in a non-streamed call:
    every upstream connection they used is closed, the client holds no response, each call has one
    ``client_aborted`` row. (Timeouts far beyond the test: on a busy machine the 0.5 s of the usual
    harness could end a call before its cancel does.)"""
    await _cancel_at_any_moment(patient_harness, upstream)


async def _cancel_at_any_moment(harness: Harness, upstream: UpstreamServer) -> None:
    harness.add("hang", "wait")  # no response at all: cancelled before the first event / the answer
    harness.add("stall", "mid")  # one event, then nothing: cancelled mid-stream
    first_request = len(upstream.received)

    async def mid_stream() -> None:
        stream = await harness.service.open_stream(
            body={**BODY, "model": "mid"}, caller=Caller(ip="192.0.2.9")
        )
        try:
            async for _piece in stream.pieces():
                await asyncio.sleep(3600)  # a reader that is still busy when Stop is pressed
        finally:
            await stream.aclose()

    for index in range(CANCELS):
        kind = index % 3
        asked = len(upstream.received)
        if kind == 0:
            call = harness.call("stream", "wait")
        elif kind == 1:
            call = harness.call("complete", "wait")
        else:
            call = mid_stream()
        task = asyncio.create_task(call)
        await wait_until_async(
            lambda asked=asked: len(upstream.received) > asked, what="the request upstream"
        )
        if kind == 2:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    peers = {r.peer for r in upstream.received[first_request:] if r.peer is not None}
    await wait_until_async(
        lambda: not (peers & upstream.open_peers()), what="every upstream connection closed"
    )
    assert harness.client.open_responses == 0
    rows = harness.rows("wait") + harness.rows("mid")
    assert len(rows) == CANCELS and {row.status for row in rows} == {"client_aborted"}
    assert {row.error for row in rows} == {None}


async def test_a_channels_headers_are_sent_with_the_key(harness: Harness, upstream: UpstreamServer) -> None:
    import json

    from services.security import KeyCipher

    channel_id = harness.add("ok", "hdr")
    headers = {"api-key": "azure-secret", "HTTP-Referer": "https://chat.example"}
    with Session(harness.engine) as session:
        channel = session.get(Channel, channel_id)
        assert channel is not None
        channel.headers = KeyCipher("test-encryption-key").encrypt(json.dumps(headers))
        session.add(channel)
        session.commit()
    harness.directory.refresher.changed()
    before = len(upstream.requests_for("ok"))
    assert await harness.call("complete", "hdr") == ANSWER
    [sent] = upstream.requests_for("ok")[before:]
    assert (
        sent.headers["api-key"] == "azure-secret" and sent.headers["http-referer"] == "https://chat.example"
    )
    assert sent.headers["authorization"] == "Bearer sk-test-1"
