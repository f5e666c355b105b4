from __future__ import annotations

import pytest

from services import reasoning
from services.reasoning import (
    UNTAGGED_HOLD_CHARS,
    UNTAGGED_HOLD_SECONDS,
    ThinkStyle,
    ThinkTagSplitter,
    split_think_tags,
)
from services.tokens import estimate_prompt_tokens, estimate_text_tokens
from services.upstream import ChunkNormalizer, completion_style, normalize_completion

TEXT = "<think>step one, step two</think>\n\nThe answer is 42."


def stream_through(pieces: list[str]) -> tuple[str, str]:
    splitter = ThinkTagSplitter()
    reasoning, content = [], []
    for piece in pieces:
        r, c = splitter.feed(piece)
        reasoning.append(r)
        content.append(c)
    r, c = splitter.flush()
    return "".join(reasoning) + r, "".join(content) + c


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_tags_split_at_any_point(size: int) -> None:
    pieces = [TEXT[i : i + size] for i in range(0, len(TEXT), size)]
    assert stream_through(pieces) == ("step one, step two", "The answer is 42.")


def test_only_a_leading_block_is_thinking() -> None:
    text = "Use <think> tags like this: <think>x</think>"
    assert stream_through([text[:10], text[10:]]) == ("", text)
    assert split_think_tags("  <think>a</think>b") == ("a", "b")


def test_unfinished_thinking_is_flushed_as_reasoning() -> None:
    assert stream_through(["<think>still thinking </thi"]) == ("still thinking </thi", "")
    assert stream_through(["<thi"]) == ("", "<thi")


def test_normalizer_renames_reasoning_and_keeps_plain_chunks_untouched() -> None:
    normalizer = ChunkNormalizer()
    chunk = {"choices": [{"delta": {"reasoning": "hmm"}}]}
    assert normalizer.normalize(chunk) == (True, "", "hmm")
    assert chunk["choices"][0]["delta"] == {"reasoning_content": "hmm"}
    plain = ChunkNormalizer()
    assert plain.normalize({"choices": [{"delta": {"content": "Hi"}}]}) == (True, "Hi", "")
    assert plain.normalize({"choices": [{"delta": {"content": " there"}}]}) == (False, " there", "")
    assert plain.normalize({"choices": []}) == (False, "", "")


def test_normalize_completion() -> None:
    answer = {"choices": [{"message": {"role": "assistant", "content": TEXT}}]}
    assert normalize_completion(answer) == ("The answer is 42.", "step one, step two")
    assert answer["choices"][0]["message"]["reasoning_content"] == "step one, step two"


def test_token_estimates() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("你好世界") == 4
    assert estimate_text_tokens("abcdefgh") == 2
    assert estimate_text_tokens("你好 world") == 2 + 2
    messages = [
        {"role": "user", "content": "你好"},
        {"role": "user", "content": [{"type": "text", "text": "abcd"}]},
    ]
    assert estimate_prompt_tokens(messages) == (4 + 2) + (4 + 1) + 3


# ---- ``</think>`` without ``<think>`` (vLLM-served R1 distills), by what is known of the channel ----
OPEN_TEXT = "Let me think about it.</think>\n\nThe answer is 42."


def feed_all(splitter: ThinkTagSplitter, pieces: list[str]) -> list[tuple[str, str]]:
    return [splitter.feed(piece) for piece in pieces] + [splitter.flush()]


def joined_parts(parts: list[tuple[str, str]]) -> tuple[str, str]:
    return "".join(r for r, _ in parts), "".join(c for _, c in parts)


@pytest.mark.parametrize("style", ["unknown", "untagged"])
@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_an_untagged_close_over_many_chunks_is_split(style: ThinkStyle, size: int) -> None:
    splitter = ThinkTagSplitter(style)
    parts = feed_all(splitter, [OPEN_TEXT[i : i + size] for i in range(0, len(OPEN_TEXT), size)])
    assert joined_parts(parts) == ("Let me think about it.", "The answer is 42.")
    assert splitter.untagged


def test_a_channel_known_to_think_untagged_streams_its_reasoning_live() -> None:
    splitter = ThinkTagSplitter("untagged")
    assert splitter.feed("\nLet") == ("Let", "")
    assert splitter.feed(" me</thi") == (" me", "")  # only what may begin the tag waits
    assert splitter.feed("nk>\n\nHi") == ("", "Hi")


def test_an_unknown_channel_holds_an_ordinary_answer_only_up_to_the_bound() -> None:
    words = [f"w{i} " for i in range(600)]  # 2,290 characters, no tag
    splitter = ThinkTagSplitter("unknown")
    parts = feed_all(splitter, words)
    first = next(i for i, (_, content) in enumerate(parts) if content)
    assert sum(len(w) for w in words[:first]) <= UNTAGGED_HOLD_CHARS < sum(len(w) for w in words[: first + 1])
    assert all(content == words[i] for i, (_, content) in enumerate(parts[first + 1 : -1], first + 1))
    assert joined_parts(parts) == ("", "".join(words)) and not splitter.untagged


def test_an_unknown_channel_lets_a_quoted_tag_through_and_a_short_answer_out_at_its_end() -> None:
    quoted = "Write <think> first, then </think>."
    assert joined_parts(feed_all(ThinkTagSplitter("unknown"), [quoted[:9], quoted[9:]])) == ("", quoted)
    splitter = ThinkTagSplitter("unknown")
    assert splitter.feed("Hi") == ("", "") and splitter.flush() == ("", "Hi")


def test_an_unknown_channel_stops_holding_after_the_time_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(reasoning.time, "monotonic", lambda: clock[0])
    splitter = ThinkTagSplitter("unknown")
    assert splitter.feed("Slow") == ("", "")
    clock[0] += UNTAGGED_HOLD_SECONDS + 0.1
    assert splitter.feed(" answer") == ("", "Slow answer")


def test_a_plain_channel_waits_for_nothing_but_notices_a_late_untagged_close() -> None:
    splitter = ThinkTagSplitter("plain")
    parts = feed_all(splitter, ["Let me", " think.</th", "ink>\n\nAnswer"])
    assert parts[0] == ("", "Let me")  # not held: the text goes out as it comes
    assert joined_parts(parts) == ("", "Let me think.</think>\n\nAnswer")
    assert splitter.untagged  # the next call on this channel splits it
    normalizer = ChunkNormalizer("plain")
    for text in ["a", "b</", "think>c"]:
        normalizer.normalize({"choices": [{"delta": {"content": text}}]})
    assert normalizer.style_seen() == "untagged"


def test_a_complete_answer_splits_an_untagged_close_wherever_it_is() -> None:
    long_reasoning = "x" * (UNTAGGED_HOLD_CHARS * 3)
    answer = {"choices": [{"message": {"content": long_reasoning + "</think>\n\nDone."}}]}
    assert completion_style(answer) == "untagged"
    assert normalize_completion(answer) == ("Done.", long_reasoning)
    assert completion_style({"choices": [{"message": {"content": "<think>a</think>b"}}]}) == "plain"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 8])
def test_a_plain_channel_notices_an_untagged_close_cut_anywhere(size: int) -> None:
    text = "Answer first, <b>then</b> reasoning closes </think> late."
    splitter = ThinkTagSplitter("plain")
    parts = feed_all(splitter, [text[i : i + size] for i in range(0, len(text), size)])
    assert joined_parts(parts) == ("", text) and splitter.untagged
    quiet = ThinkTagSplitter("plain")
    feed_all(quiet, [text.replace("</think>", "</thin k>")[i : i + size] for i in range(0, len(text), size)])
    assert not quiet.untagged
