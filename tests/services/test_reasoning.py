from __future__ import annotations

import pytest

from services.reasoning import ThinkTagSplitter, split_think_tags
from services.tokens import estimate_prompt_tokens, estimate_text_tokens
from services.upstream import ChunkNormalizer, normalize_completion

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
