"""Talking to upstream channels: the shared HTTP client, SSE parsing, and reasoning normalisation of
chunks and complete answers. Chunks stay plain dicts: no model validation on the hot path."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from services.http_transport import LeanTransport
from services.reasoning import ThinkTagSplitter, split_think_tags

MIB = 1024 * 1024


@dataclass(frozen=True)
class UpstreamTimeouts:
    """Seconds. ``first_byte``: until a stream's first event (or a channel is skipped); ``idle``: the
    longest a stream may go without completing a line, and the whole wait for a non-streamed answer."""

    connect: float = 10.0
    first_byte: float = 60.0
    idle: float = 120.0


class UpstreamProtocolError(Exception):
    """The upstream answered something that is not an OpenAI chat answer (or an error event)."""

    reason = "bad_stream"  # the call log's reason code for a channel that failed this way


class AnswerTooLarge(UpstreamProtocolError):
    """A non-streamed answer, or one line of a stream, over ``MAX_UPSTREAM_BODY_BYTES``."""


class UpstreamClient(httpx.AsyncClient):
    """The one client every upstream call shares: pooled connections over :class:`LeanTransport`, no
    environment proxies, no redirects, and no cookie jar (an upstream's cookies are not replayed on
    later calls, which come from other users).

    Chat calls take :meth:`post_json`, which hands the request straight to the transport. The
    profile of benchmark 1 showed httpx's client layer around it (building the request through the
    client's merging of defaults, auth and redirect handling, and above all cookie extraction through
    urllib's cookie jar, which runs even with a jar that accepts nothing) costing more per call than
    the transport's own work; none of it applies to a POST whose headers are all set here.

    What an answer may make the process hold is bounded by ``max_answer_bytes``: a whole non-streamed
    answer (:meth:`read_answer`) or one line of a stream (:meth:`lines`). Answers are asked for
    uncompressed (``Accept-Encoding: identity``): a compressed one could expand a thousandfold in a
    single read, past any cap checked after it.
    """

    def __init__(self, timeouts: UpstreamTimeouts, *, max_answer_bytes: int = 16 * MIB) -> None:
        timeout = httpx.Timeout(
            connect=timeouts.connect, read=timeouts.idle, write=timeouts.connect, pool=timeouts.connect
        )
        self._lean = LeanTransport(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30)
        super().__init__(
            transport=self._lean,
            timeout=timeout,
            headers={"Accept-Encoding": "identity"},
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            trust_env=False,
            follow_redirects=False,
        )
        self.max_answer_bytes = max_answer_bytes
        self._idle = timeouts.idle
        # the client's own headers (Accept, User-Agent...), names in lower case as httpx keeps them
        self._default_headers = dict(self.headers)
        self._extensions = {"timeout": timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}  # parsed once: httpx parses a URL string in Python

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= 1024:  # channels come and go; keep the memory bounded
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def post_json(self, url: str, payload: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """POST ``payload`` as JSON (encoded as httpx encodes ``json=``) and return the response once its
        head has arrived; the caller reads the body (:meth:`read_answer`, :meth:`lines`) and closes it."""
        content = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        request = httpx.Request(
            "POST",
            self._url(url),
            headers={**self._default_headers, **{name.lower(): value for name, value in headers.items()}},
            content=content,
            extensions=self._extensions,
        )
        response = await self._lean.handle_async_request(request)
        response.request = request
        return response

    async def read_answer(self, response: httpx.Response) -> bytes:
        """The whole body; :class:`AnswerTooLarge` as soon as it is known to be over the cap (from its
        ``Content-Length`` before a byte is read). The caller closes the response on failure."""
        limit = self.max_answer_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise AnswerTooLarge(f"an answer of {declared} bytes, over {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise AnswerTooLarge(f"an answer over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def lines(self, response: httpx.Response) -> AsyncIterator[str]:
        """The body's lines (an SSE stream), each at most ``max_answer_bytes`` (:class:`AnswerTooLarge`).

        A line still unfinished ``idle`` seconds after the previous one ended is a read timeout even
        while bytes trickle in: the transport's read timeout only bounds each silence, which a byte now
        and then resets."""
        limit, idle = self.max_answer_bytes, self._idle
        partial = bytearray()
        line_ended = time.monotonic()
        async for chunk in response.aiter_bytes():
            if b"\n" not in chunk and b"\r" not in chunk:  # the middle of a line
                partial += chunk
                if len(partial) > limit:
                    raise AnswerTooLarge(f"a line over {limit} bytes")
                if time.monotonic() - line_ended > idle:
                    raise httpx.ReadTimeout(f"no line completed within {idle:g} s")
                continue
            if partial:
                partial += chunk
                chunk = bytes(partial)
                partial.clear()
            pieces = chunk.splitlines()
            if not chunk.endswith((b"\n", b"\r")):
                partial += pieces.pop()
            if len(pieces[0]) > limit or len(partial) > limit:
                raise AnswerTooLarge(f"a line over {limit} bytes")
            line_ended = time.monotonic()
            for piece in pieces:
                yield piece.decode("utf-8", "replace")
        if partial:
            yield partial.decode("utf-8", "replace")


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
    event can be forwarded as it is.
    """

    __slots__ = ("_splitter",)

    def __init__(self) -> None:
        self._splitter = ThinkTagSplitter()

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
        if content and not self._splitter.passthrough:
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
        if isinstance(content, str) and content.lstrip().startswith("<think>"):
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
