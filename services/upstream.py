"""Talking to upstream channels: the shared HTTP client (services/upstream_client.py), SSE parsing, and
reasoning normalisation of chunks and complete answers.
Chunks stay plain dicts: no model validation on the hot path."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from services.reasoning import ThinkStyle, ThinkTagSplitter, split_think_tags, untagged_close
from services.upstream_client import MIB, UpstreamClient
from services.upstream_errors import AnswerTooLarge, UpstreamFailure, UpstreamProtocolError, UpstreamTimeouts

__all__ = [
    "MIB",
    "AnswerTooLarge",
    "UpstreamClient",
    "UpstreamFailure",
    "UpstreamProtocolError",
    "UpstreamTimeouts",
]


async def iter_sse_payloads(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(raw data, parsed chunk)`` for each ``data:`` event until ``[DONE]``; other lines and
    malformed JSON are skipped. An ``error`` event raises :class:`UpstreamProtocolError`."""
    async for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if not data:
            continue
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            continue
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk and not chunk.get("choices"):
            raise UpstreamProtocolError("error event from upstream")
        yield data, chunk


class ChunkNormalizer:
    """Rewrites one stream's chunks so reasoning always arrives as ``delta.reasoning_content``.

    ``normalize`` returns ``(changed, content, reasoning)``; when ``changed`` is False the raw upstream
    event can be forwarded as it is. ``style``: what is known of the channel's ``</think>`` habit
    (services/reasoning.py); :meth:`style_seen` what this stream showed.
    """

    __slots__ = ("_splitter",)

    def __init__(self, style: ThinkStyle = "plain") -> None:
        self._splitter = ThinkTagSplitter(style)

    def hold_left(self) -> float | None:
        return self._splitter.hold_left()

    def release(self) -> str:
        return self._splitter.release()

    def style_seen(self) -> ThinkStyle:
        return "untagged" if self._splitter.untagged else "plain"

    def normalize(self, chunk: dict[str, Any]) -> tuple[bool, str, str]:
        choices = chunk.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return False, "", ""
        delta = choices[0].get("delta")
        if not isinstance(delta, dict):
            return False, "", ""
        changed = False
        reasoning = delta.get("reasoning_content") or ""
        if "reasoning" in delta:
            reasoning = reasoning or delta.pop("reasoning") or ""
            delta.pop("reasoning", None)
            if reasoning:
                delta["reasoning_content"] = reasoning
            changed = True
        content = delta.get("content") or ""
        if content and self._splitter.passthrough:
            if isinstance(content, str):
                self._splitter.watch(content)
        elif content:
            thought, content = self._splitter.feed(content)
            delta["content"] = content
            if thought:
                reasoning = (reasoning if isinstance(reasoning, str) else "") + thought
                delta["reasoning_content"] = reasoning
            changed = True
        if not isinstance(reasoning, str):
            reasoning = ""
        if not isinstance(content, str):
            content = ""
        return changed, content, reasoning

    def flush(self) -> tuple[str, str]:
        """``(reasoning, content)`` still held back at the end of the stream."""
        return self._splitter.flush()


def completion_style(answer: dict[str, Any]) -> ThinkStyle:
    """Whether a complete answer closes its reasoning without opening it (read before normalising)."""
    for choice in answer.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str) and untagged_close(content) >= 0:
            return "untagged"
    return "plain"


def normalize_completion(answer: dict[str, Any]) -> tuple[str, str]:
    """Normalise a complete ``chat.completion`` in place; returns ``(content, reasoning)``."""
    content_parts: list[str] = []
    reasoning_parts: list[str] = []
    for choice in answer.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        reasoning = message.pop("reasoning", None) if "reasoning" in message else None
        reasoning = message.get("reasoning_content") or reasoning or ""
        content = message.get("content") or ""
        if isinstance(content, str) and ("<think>" in content or "</think>" in content):
            thought, content = split_think_tags(content)
            reasoning = f"{reasoning}{thought}" if isinstance(reasoning, str) else thought
            message["content"] = content
        if reasoning:
            message["reasoning_content"] = reasoning
        content_parts.append(content if isinstance(content, str) else "")
        reasoning_parts.append(reasoning if isinstance(reasoning, str) else "")
    return "".join(content_parts), "".join(reasoning_parts)


def usage_of(payload: dict[str, Any]) -> tuple[int, int] | None:
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


async def completion_as_events(answer: dict[str, Any]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A whole ``chat.completion`` (from an upstream that answered JSON to ``stream: true``) as the
    chunks a stream would have sent: one delta per choice, then the usage, as ``(raw data, chunk)``."""
    base = {
        "id": answer.get("id", ""),
        "object": "chat.completion.chunk",
        "created": answer.get("created", 0),
        "model": answer.get("model", ""),
    }
    for index, choice in enumerate(answer.get("choices") or []):
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        delta = {"role": "assistant"}
        for key in ("reasoning_content", "reasoning", "content", "tool_calls"):
            if message.get(key):
                delta[key] = message[key]
        chunk = {
            **base,
            "choices": [
                {
                    "index": choice.get("index", index),
                    "delta": delta,
                    "finish_reason": choice.get("finish_reason"),
                }
            ],
        }
        yield json.dumps(chunk, ensure_ascii=False, separators=(",", ":")), chunk
    if isinstance(answer.get("usage"), dict):
        chunk = {**base, "choices": [], "usage": answer["usage"]}
        yield json.dumps(chunk, ensure_ascii=False, separators=(",", ":")), chunk
