"""``</think>`` without ``<think>`` (vLLM-served R1 distills) over many chunks, streamed and not, and what
an ordinary answer pays for the look-out: a first token at most ``UNTAGGED_HOLD_*`` late, once per
channel (services/reasoning.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.call_log import Caller
from services.chat_stream import StreamPiece
from services.reasoning import UNTAGGED_HOLD_CHARS
from tests.services.test_chat import ANSWER, Harness
from tests.upstream_server import THINKING_WORDS, UpstreamServer, thinkopen_text

THINKING = "".join(THINKING_WORDS)
CALLER = Caller(ip="192.0.2.1")


@pytest.fixture
async def harness(tmp_path: Path, upstream: UpstreamServer) -> AsyncIterator[Harness]:
    made = Harness(tmp_path, upstream)
    yield made
    await made.close()


async def streamed(harness: Harness, model: str) -> list[StreamPiece]:
    stream = await harness.service.open_stream(
        body={"model": model, "messages": [{"role": "user", "content": "hi"}]}, caller=CALLER
    )
    try:
        return [piece async for piece in stream.pieces()]
    finally:
        await stream.aclose()


def texts(pieces: list[StreamPiece]) -> tuple[str, str]:
    return "".join(p.reasoning for p in pieces), "".join(p.content for p in pieces)


def style_of(harness: Harness, model: str) -> str:
    [target] = harness.directory.candidates(model)
    return harness.service.think_style(target)


@pytest.mark.parametrize("size", [1, 3, 4, 9])
async def test_a_stream_split_over_many_chunks_is_reasoning_then_answer(harness: Harness, size: int) -> None:
    """Size 3 cuts the tag as ``…</`` + ``thi`` + ``nk>``, 4 as ``</th`` + ``ink>``."""
    harness.add(f"thinkopen-{size}", "m")
    assert style_of(harness, "m") == "unknown"
    assert texts(await streamed(harness, "m")) == (THINKING, ANSWER)
    assert style_of(harness, "m") == "untagged"
    pieces = await streamed(harness, "m")  # known now: the reasoning goes out as it comes
    assert texts(pieces) == (THINKING, ANSWER)
    first = next(p for p in pieces if p.reasoning)
    assert len(first.reasoning) <= size
    [row, _] = harness.rows("m")
    assert (row.status, row.error) == ("ok", None)


async def test_a_non_streamed_answer_is_split_and_teaches_the_stream(harness: Harness) -> None:
    harness.add("thinkopen-3-60", "m")  # 1,320 characters of reasoning: more than a first stream holds
    answer = await harness.service.complete(
        body={"model": "m", "messages": [{"role": "user", "content": "hi"}]}, caller=CALLER
    )
    message = answer["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == (THINKING * 60, ANSWER)
    assert texts(await streamed(harness, "m")) == (THINKING * 60, ANSWER)


async def test_reasoning_longer_than_the_hold_is_caught_from_the_next_call_on(harness: Harness) -> None:
    assert len(THINKING * 60) > UNTAGGED_HOLD_CHARS
    harness.add("thinkopen-5-60", "m")
    assert texts(await streamed(harness, "m")) == (
        "",
        thinkopen_text(60),
    )  # let through: cannot be taken back
    assert style_of(harness, "m") == "untagged"
    assert texts(await streamed(harness, "m")) == (THINKING * 60, ANSWER)


async def test_an_ordinary_stream_is_not_held_for_the_whole_answer(
    harness: Harness, upstream: UpstreamServer
) -> None:
    """An answer that never ends (until the test ends it) must show text before it ends: the hold has a
    bound. Once the answer is over the channel is known to be plain, and nothing is held any more."""
    harness.add("open-2", "m")
    for call in range(2):
        stream = await harness.service.open_stream(
            body={"model": "m", "messages": [{"role": "user", "content": "hi"}]}, caller=CALLER
        )
        pieces = stream.pieces()
        try:
            first = await anext(p async for p in pieces if p.content)
            if call == 0:
                assert first.content.startswith("w0 w1 ")  # the held text, released by its bound
            else:
                assert first.content == "w0 "  # no hold at all
            upstream.end_open_streams()
            rest = [piece async for piece in pieces]
        finally:
            await stream.aclose()
        assert rest[-1].done and not any(p.reasoning for p in rest)
        assert style_of(harness, "m") == "plain"
