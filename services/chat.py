"""One chat call end to end: checks → channel (rotation, failover) → stream or answer → log row.

Both front doors use this module: the REST router relays :attr:`StreamPiece.sse` bytes, the chat page
renders :attr:`StreamPiece.content` / :attr:`StreamPiece.reasoning`. Nothing here touches message
content beyond counting it for token estimates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from app.models import utcnow
from services.channels import ChannelDirectory, ChannelTarget
from services.errors import IPBlocked, ModelNotFound, UpstreamUnavailable
from services.ip_block import BlockList
from services.logs import CallRecord, LogWriter
from services.rate_limit import RateLimiter
from services.settings import SettingsStore
from services.tokens import estimate_prompt_tokens, estimate_text_tokens
from services.upstream import (
    ChunkNormalizer,
    UpstreamClient,
    UpstreamProtocolError,
    UpstreamTimeouts,
    iter_sse_payloads,
    normalize_completion,
    usage_of,
)

log = logging.getLogger("pyaichat.chat")
DONE_EVENT = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the client IP always, the user when logged in."""

    ip: str
    user_id: int | None = None
    username: str | None = None
    path: str = "/api/chat/completions"  # where the call came in, for the blocked-attempts record


@dataclass(slots=True)
class StreamPiece:
    """One event for the client: the SSE bytes to relay, and the text it adds for a page to render."""

    sse: bytes
    content: str = ""
    reasoning: str = ""
    error: UpstreamUnavailable | None = None
    done: bool = False


class _ChannelFailed(Exception):
    def __init__(self, reason: str, *, timeout: bool = False) -> None:
        super().__init__(reason)
        self.timeout = timeout


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class _CallLog:
    """Collects what one call's log row needs and hands it to the writer exactly once."""

    __slots__ = (
        "_written",
        "caller",
        "channel_id",
        "messages",
        "model_id",
        "started",
        "started_at",
        "texts",
        "usage",
        "writer",
    )

    def __init__(
        self, writer: LogWriter, caller: Caller, model_id: str, messages: list[dict[str, Any]]
    ) -> None:
        self.writer = writer
        self.caller = caller
        self.model_id = model_id
        self.messages = messages
        self.started = time.monotonic()
        self.started_at = utcnow()
        self.channel_id: int | None = None
        self.usage: tuple[int, int] | None = None
        self.texts: list[str] = []
        self._written = False

    def write(self, status: str) -> None:
        if self._written:
            return
        self._written = True
        if self.usage is not None:
            prompt, completion, estimated = self.usage[0], self.usage[1], False
        else:
            prompt = estimate_prompt_tokens(self.messages)
            completion = sum(estimate_text_tokens(text) for text in self.texts)
            estimated = True
        self.writer.record(
            CallRecord(
                user_id=self.caller.user_id,
                username=self.caller.username,
                ip_address=self.caller.ip,
                channel_id=self.channel_id,
                model_id=self.model_id,
                prompt_tokens=prompt,
                completion_tokens=completion,
                created_at=self.started_at,
                status=status,
                tokens_estimated=estimated,
                duration_ms=int((time.monotonic() - self.started) * 1000),
            )
        )


class ChatStream:
    """An upstream stream that has produced its first event; iterate :meth:`pieces` once.

    Closing it early (client gone, Stop pressed) closes the upstream request and logs ``client_aborted``.
    """

    def __init__(
        self,
        *,
        response: httpx.Response,
        events: AsyncIterator[tuple[str, dict[str, Any]]],
        first: tuple[str, dict[str, Any]],
        call: _CallLog,
        include_usage: bool,
        target: ChannelTarget,
    ) -> None:
        self._response = response
        self._events = events
        self._first = first
        self._call = call
        self._include_usage = include_usage
        self.channel = target
        self._pieces: AsyncIterator[StreamPiece] | None = None

    def pieces(self) -> AsyncIterator[StreamPiece]:
        if self._pieces is None:
            self._pieces = self._generate()
        return self._pieces

    async def aclose(self) -> None:
        if self._pieces is not None:
            await self._pieces.aclose()  # type: ignore[attr-defined]
        else:
            await self._close_upstream()
            self._call.write("client_aborted")

    async def _close_upstream(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._response.aclose()

    def _piece(self, data: str, chunk: dict[str, Any], normalizer: ChunkNormalizer) -> StreamPiece | None:
        usage = usage_of(chunk)
        if usage is not None:
            self._call.usage = usage
            if not chunk.get("choices") and not self._include_usage:
                return None  # the client did not ask for the usage chunk
        changed, content, reasoning = normalizer.normalize(chunk)
        if content:
            self._call.texts.append(content)
        if reasoning:
            self._call.texts.append(reasoning)
        sse = _sse(chunk) if changed else b"data: " + data.encode() + b"\n\n"
        return StreamPiece(sse=sse, content=content, reasoning=reasoning)

    async def _generate(self) -> AsyncIterator[StreamPiece]:
        status = "client_aborted"
        normalizer = ChunkNormalizer()
        try:
            try:
                piece = self._piece(*self._first, normalizer)
                if piece is not None:
                    yield piece
                async for data, chunk in self._events:
                    piece = self._piece(data, chunk, normalizer)
                    if piece is not None:
                        yield piece
                reasoning, content = normalizer.flush()
                if reasoning or content:
                    self._call.texts.append(reasoning + content)
                    delta = {k: v for k, v in (("reasoning_content", reasoning), ("content", content)) if v}
                    tail = {
                        "object": "chat.completion.chunk",
                        "model": self.channel.model_id,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                    }
                    yield StreamPiece(sse=_sse(tail), content=content, reasoning=reasoning)
            except (httpx.TimeoutException, TimeoutError):
                status = "timeout"
            except (httpx.HTTPError, UpstreamProtocolError):
                status = "upstream_error"
            else:
                status = "ok"
                yield StreamPiece(sse=DONE_EVENT, done=True)
                return
            log.warning("channel %s failed mid-stream (%s)", self.channel.id, status)
            error = UpstreamUnavailable()
            yield StreamPiece(sse=_sse(error.body()), error=error)
        finally:
            await self._close_upstream()
            self._call.write(status)


class ChatService:
    """Runs chat calls against the enabled channels of a model."""

    def __init__(
        self,
        *,
        directory: ChannelDirectory,
        client: UpstreamClient,
        log_writer: LogWriter,
        timeouts: UpstreamTimeouts,
        limiter: RateLimiter,
        settings: SettingsStore,
        block_list: BlockList,
    ) -> None:
        self.directory = directory
        self.client = client
        self.log_writer = log_writer
        self.timeouts = timeouts
        self.limiter = limiter
        self.settings = settings
        self.block_list = block_list

    async def _admit(self, model: str, caller: Caller) -> list[ChannelTarget]:
        """The checks before any upstream work: IP block, model, the caller's rate limit (atomic hit).

        A request refused here never reaches an upstream and is not logged as a call.
        """
        rule = self.block_list.match(caller.ip)
        if rule is not None:
            self.block_list.record_attempt(ip=caller.ip, path=caller.path, rule=rule)
            raise IPBlocked()
        candidates = self.directory.candidates(model)
        if not candidates:
            raise ModelNotFound()
        limits = self.settings.current()
        if caller.user_id is not None:
            await self.limiter.hit_or_raise(f"user:{caller.user_id}", limits.user_rpm)
        else:
            await self.limiter.hit_or_raise(f"guest:{caller.ip}", limits.guest_rpm)
        return candidates

    async def _take_channel_slot(self, target: ChannelTarget) -> bool:
        return await self.limiter.try_hit(f"channel:{target.id}", target.rpm_limit)

    async def _all_busy(self, candidates: list[ChannelTarget]) -> UpstreamUnavailable:
        """Every channel is at its RPM: 503 with the wait until the first of them frees a slot."""
        waits = [await self.limiter.retry_after(f"channel:{t.id}", t.rpm_limit) for t in candidates]
        return UpstreamUnavailable(retry_after=min(waits))

    @staticmethod
    def _payload(body: dict[str, Any], target: ChannelTarget, *, stream: bool) -> dict[str, Any]:
        payload = {**body, "model": target.model_id, "stream": stream}
        if stream:
            options = payload.get("stream_options")
            payload["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        else:
            payload.pop("stream_options", None)
        return payload

    @staticmethod
    def _headers(target: ChannelTarget, *, stream: bool) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {target.api_key}", "Content-Type": "application/json"}
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers

    async def open_stream(self, *, body: dict[str, Any], caller: Caller) -> ChatStream:
        """Start a streamed call: returns once a channel has sent its first event.

        Channels failing before that (refused, timeout, 5xx, 429, garbage) are skipped for the next one;
        when none can serve, the call is logged and :class:`UpstreamUnavailable` raised.
        """
        model = str(body.get("model", ""))
        candidates = await self._admit(model, caller)
        call = _CallLog(self.log_writer, caller, model, body.get("messages") or [])
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        all_timeouts = True
        tried = False
        for target in candidates:
            if not await self._take_channel_slot(target):
                continue
            tried = True
            call.channel_id = target.id
            response: httpx.Response | None = None
            try:
                async with asyncio.timeout(self.timeouts.first_byte):
                    response = await self.client.post_json(
                        target.completions_url,
                        self._payload(body, target, stream=True),
                        self._headers(target, stream=True),
                        stream=True,
                    )
                    if response.status_code != 200:
                        raise _ChannelFailed(f"HTTP {response.status_code}")
                    events = iter_sse_payloads(response.aiter_lines())
                    first = await anext(events)
            except (httpx.TimeoutException, TimeoutError):
                failure = "timeout"
            except (httpx.HTTPError, UpstreamProtocolError, StopAsyncIteration) as exc:
                failure, all_timeouts = type(exc).__name__, False
            except _ChannelFailed as exc:
                failure, all_timeouts = str(exc), False
            else:
                return ChatStream(
                    response=response,
                    events=events,
                    first=first,
                    call=call,
                    include_usage=include_usage,
                    target=target,
                )
            if response is not None:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
            log.warning("channel %s (%s) skipped: %s", target.id, target.name, failure)
        if not tried:
            raise await self._all_busy(candidates)
        call.write("timeout" if all_timeouts else "upstream_error")
        raise UpstreamUnavailable()

    async def complete(self, *, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """A non-streamed call: the upstream's ``chat.completion`` with reasoning normalised."""
        model = str(body.get("model", ""))
        candidates = await self._admit(model, caller)
        call = _CallLog(self.log_writer, caller, model, body.get("messages") or [])
        all_timeouts = True
        tried = False
        try:
            for target in candidates:
                if not await self._take_channel_slot(target):
                    continue
                tried = True
                call.channel_id = target.id
                try:
                    response = await self.client.post_json(
                        target.completions_url,
                        self._payload(body, target, stream=False),
                        self._headers(target, stream=False),
                        stream=False,
                    )
                    if response.status_code != 200:
                        raise _ChannelFailed(f"HTTP {response.status_code}")
                    answer = response.json()
                    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
                        raise _ChannelFailed("not a chat completion")
                except httpx.TimeoutException:
                    log.warning("channel %s (%s) skipped: timeout", target.id, target.name)
                    continue
                except (httpx.HTTPError, ValueError, _ChannelFailed) as exc:
                    all_timeouts = False
                    log.warning("channel %s (%s) skipped: %s", target.id, target.name, _describe(exc))
                    continue
                content, reasoning = normalize_completion(answer)
                call.usage = usage_of(answer)
                call.texts += [content, reasoning]
                call.write("ok")
                return answer
        except BaseException:
            call.write("client_aborted")
            raise
        if not tried:
            raise await self._all_busy(candidates)
        call.write("timeout" if all_timeouts else "upstream_error")
        raise UpstreamUnavailable()

    def model_names(self) -> list[tuple[str, str]]:
        return [(info.id, info.name) for info in self.directory.models()]


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, _ChannelFailed) else type(exc).__name__
