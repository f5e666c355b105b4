"""The streamed answer of one chat call: :class:`ChatStream` relays an upstream stream that has already
produced its first event, as :class:`StreamPiece` events.

Each piece carries the SSE bytes the REST router relays and the text (:attr:`StreamPiece.content` /
:attr:`StreamPiece.reasoning`) the chat page renders. Opening the stream (admission, channel choice,
failover) is ``services.chat``'s; this module only reads it to its end, or to a cut, and writes its row.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.call_log import CallLog
from services.channel_directory import ChannelTarget
from services.errors import DomainError, ShuttingDown, UpstreamUnavailable
from services.reasoning import ThinkStyle
from services.upstream import ChunkNormalizer, UpstreamFailure, usage_of

log = logging.getLogger("pyaichat.chat")
DONE_EVENT = b"data: [DONE]\n\n"


@dataclass(slots=True)
class StreamPiece:
    """One event for the client: the SSE bytes to relay, and the text it adds for a page to render."""

    sse: bytes
    content: str = ""
    reasoning: str = ""
    error: DomainError | None = None
    done: bool = False


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


_CUT: tuple[str, dict[str, Any]] = ("", {})  # what _next_event returns once a shutdown cut the stream
_HELD: tuple[str, dict[str, Any]] = ("", {})  # what it returns when held text has waited long enough


class ChatStream:
    """An upstream stream that has produced its first event; iterate :meth:`pieces` once.

    Closing it early (client gone, Stop pressed) closes the upstream request and logs ``client_aborted``.
    A shutdown's cut ends it with an error event and logs ``server_shutdown``. The row is written
    before the last event goes out, so a crash after the client has its answer cannot lose it.
    """

    def __init__(
        self,
        *,
        response: aiohttp.ClientResponse,
        close: Callable[[aiohttp.ClientResponse], None],
        events: AsyncIterator[tuple[str, dict[str, Any]]],
        first: tuple[str, dict[str, Any]],
        call: CallLog,
        include_usage: bool,
        target: ChannelTarget,
        think_style: ThinkStyle = "plain",
        learn: Callable[[ThinkStyle], None] | None = None,
    ) -> None:
        self._response = response
        self._think_style = think_style
        self._learn = learn
        self._close = close
        self._events = events
        self._first = first
        self._call = call
        self._include_usage = include_usage
        self.channel = target
        self._pieces: AsyncGenerator[StreamPiece] | None = None
        self._started = False  # whether the generator's body (and so its ``finally``) has run
        self._waiting: asyncio.Task[Any] | None = None  # the task awaiting the upstream's next event
        # the next event, read in a task of its own while held text may have to go out before it comes
        self._pending: asyncio.Future[tuple[str, dict[str, Any]] | None] | None = None
        call.on_cut(self._interrupt)

    def pieces(self) -> AsyncIterator[StreamPiece]:
        if self._pieces is None:
            self._pieces = self._generate()
        return self._pieces

    async def aclose(self) -> None:
        """Idempotent. A generator closed before its first step never runs its body, so a stream whose
        pieces were never read is closed and logged here."""
        if self._pieces is not None:
            await self._pieces.aclose()
        if not self._started:
            self._started = True
            await self._close_upstream()
            self._call.write("client_aborted")

    def cut(self) -> None:
        """End the stream because the server is stopping (a chat page whose connection the shutdown
        closed); its row says ``server_shutdown``."""
        self._call.cut()

    def _cut_status(self) -> tuple[str, str]:
        if self._call.cut_error is not None:
            return "client_aborted", f"access revoked ({self._call.cut_error.type})"
        return "server_shutdown", "cut by the shutdown"

    def _interrupt(self) -> None:
        """The cut while the stream waits for the upstream: the wait is cancelled, and
        :meth:`_next_event` takes that cancellation back. At a ``yield`` it is noticed at the next event."""
        if self._waiting is not None:
            self._waiting.cancel()

    async def _next_event(self, hold: float | None = None) -> tuple[str, dict[str, Any]] | None:
        """The upstream's next event, None at its end, ``_CUT`` once cut, ``_HELD`` when ``hold``
        seconds (the time text held back may still wait, services/reasoning.py) passed without it."""
        if self._call.is_cut():
            return _CUT
        task = self._waiting = asyncio.current_task()
        try:
            if hold is None and self._pending is None:  # the common path: no task of its own
                return await anext(self._events, None)
            if self._pending is None:
                self._pending = asyncio.ensure_future(anext(self._events, None))
            if hold is not None:
                done, _ = await asyncio.wait({self._pending}, timeout=hold)
                if not done:
                    return _HELD
            pending, self._pending = self._pending, None
            return await pending
        except asyncio.CancelledError:
            if not self._call.is_cut() or task is None:
                raise
            task.uncancel()
            return _CUT
        finally:
            self._waiting = None

    async def _close_upstream(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._close(self._response)  # synchronous: nothing a cancellation could interrupt

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

    def _released(self, normalizer: ChunkNormalizer) -> StreamPiece | None:
        """Text held back while looking for ``</think>`` whose time ran out, as a chunk of the answer."""
        content = normalizer.release()
        return self._extra(content=content) if content else None

    def _tail(self, normalizer: ChunkNormalizer) -> StreamPiece | None:
        """Text the normalizer still holds (a possible ``<think>`` tag) as one last chunk."""
        reasoning, content = normalizer.flush()
        return self._extra(reasoning=reasoning, content=content) if reasoning or content else None

    def _extra(self, *, reasoning: str = "", content: str = "") -> StreamPiece:
        """A chunk of our own carrying text the normalizer held back."""
        self._call.texts.append(reasoning + content)
        delta = {k: v for k, v in (("reasoning_content", reasoning), ("content", content)) if v}
        tail = {
            "object": "chat.completion.chunk",
            "model": self.channel.model_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        return StreamPiece(sse=_sse(tail), content=content, reasoning=reasoning)

    async def _generate(self) -> AsyncGenerator[StreamPiece]:
        self._started = True
        status, reason = "client_aborted", ""
        normalizer = ChunkNormalizer(self._think_style)
        try:
            try:
                piece = self._piece(*self._first, normalizer)
                if piece is not None:
                    yield piece
                while True:
                    event = await self._next_event(normalizer.hold_left())
                    if event is _HELD:
                        piece = self._released(normalizer)
                        if piece is not None:
                            yield piece
                        continue
                    if event is None or event is _CUT:
                        break
                    piece = self._piece(*event, normalizer)
                    if piece is not None:
                        yield piece
            except UpstreamFailure as exc:
                status, reason = ("timeout" if exc.timed_out else "upstream_error"), exc.reason
            except Exception:
                log.exception("channel %s: the stream failed on our side", self.channel.id)
                status, reason = "upstream_error", "server_error"
            else:
                status, reason = ("ok", "") if event is None else self._cut_status()
            tail = self._tail(normalizer)  # text still held back goes out before the end, whatever it is
            last: list[StreamPiece] = [tail] if tail else []  # sent once the row is written
            if status == "ok":
                if self._learn is not None:  # only a whole answer tells how the channel thinks
                    self._learn(normalizer.style_seen())
                last.append(StreamPiece(sse=DONE_EVENT, done=True))
            else:
                log.warning("channel %s: the stream ended early (%s: %s)", self.channel.id, status, reason)
                error: DomainError = (
                    self._call.cut_error or ShuttingDown()
                    if self._call.is_cut()
                    else UpstreamUnavailable(reason=reason)
                )
                last.append(StreamPiece(sse=_sse(error.body()), error=error))
            self._call.write(status, None if self._call.is_cut() or status == "ok" else reason)
            for piece in last:
                yield piece
        finally:
            await self._close_upstream()
            self._call.write(status)
