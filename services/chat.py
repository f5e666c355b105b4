"""One chat call end to end: checks → channel (rotation, failover) → stream or answer → log row.

Both front doors use this module: :class:`ChatService` admits the call, picks and fails over the model's
channels, and either hands back a :class:`~services.chat_stream.ChatStream` that has its first event (the
streamed answer itself is ``services.chat_stream``'s) or returns the whole answer. Nothing here touches
message content beyond counting it for token estimates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from services.call_log import Caller, CallLog
from services.channel_directory import ChannelDirectory, ChannelTarget
from services.channel_health import ChannelHealth
from services.chat_stream import ChatStream
from services.errors import (
    AuthenticationRequired,
    DomainError,
    ImagesNotSupported,
    IPBlocked,
    ModelNotFound,
    RateLimited,
    ShuttingDown,
    UpstreamUnavailable,
)
from services.images import has_images
from services.ip_block import BlockList
from services.logs import LogWriter
from services.model_settings import ModelSettingsStore
from services.open_calls import OpenCalls
from services.rate_limit import RateLimiter
from services.reasoning import ThinkStyle
from services.reasons import reason_for_status, stored
from services.settings import SettingsStore
from services.stats_counters import REFUSAL_CHANNEL, REFUSAL_GUEST, REFUSAL_USER, DailyCounters
from services.upstream import (
    UpstreamClient,
    UpstreamFailure,
    UpstreamProtocolError,
    UpstreamTimeouts,
    completion_as_events,
    completion_style,
    iter_sse_payloads,
    normalize_completion,
    usage_of,
)

log = logging.getLogger("pyaichat.chat")
ALL_BUSY_MESSAGE = "errors.all_busy"


_T = TypeVar("_T")
# what counts as a channel's success: the response (status 200), its channel, the call's log row
_Accept = Callable[[aiohttp.ClientResponse, ChannelTarget, "CallLog"], Awaitable[_T]]
# how many bytes of a refusal are read to see whether it names ``stream_options``
_REFUSAL_BYTES = 64 * 1024
# statuses that say the request was wrong, not the channel: they never count against its health
_CALLER_STATUSES = frozenset({400, 413, 422, 429})
_MAX_STYLES = 10_000  # channel × model × URL combinations remembered (a bound against endless edits)


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
        calls: OpenCalls | None = None,
        health: ChannelHealth | None = None,
        counters: DailyCounters | None = None,
        model_settings: ModelSettingsStore | None = None,
    ) -> None:
        self.model_settings = model_settings  # which models take images (None: every model does)
        self.health = health
        self.counters = counters  # refusals per day for the dashboard
        self.calls = OpenCalls() if calls is None else calls  # (an empty one is falsy)
        self.directory = directory
        self.client = client
        self.log_writer = log_writer
        self.timeouts = timeouts
        self.limiter = limiter
        self.settings = settings
        self.block_list = block_list
        # how each channel's model closes its reasoning (services/reasoning.py), learnt from answers
        self._think_styles: dict[tuple[int, str, str], ThinkStyle] = {}

    @staticmethod
    def _style_key(target: ChannelTarget) -> tuple[int, str, str]:
        return (target.id, target.completions_url, target.model_id)  # a changed channel is learnt anew

    def think_style(self, target: ChannelTarget) -> ThinkStyle:
        return self._think_styles.get(self._style_key(target), "unknown")

    def _learn_style(self, target: ChannelTarget, style: ThinkStyle) -> None:
        if len(self._think_styles) >= _MAX_STYLES:
            self._think_styles.clear()
        self._think_styles[self._style_key(target)] = style

    async def _admit(self, model: str, caller: Caller, *, images: bool = False) -> list[ChannelTarget]:
        """The checks before any upstream work: IP block, guests allowed, model, the caller's rate limit
        (atomic hit; a user's own RPM when the admin set one, else ``user_rpm``).

        A request refused here never reaches an upstream and is not logged as a call; so is every
        request once the instance is shutting down. None of these decisions is taken on a value older
        than its cache's period (docs/behaviour.md#shared-state).
        """
        if self.calls.draining:
            raise ShuttingDown()
        await self.block_list.refresher.until_fresh()
        await self.directory.refresher.until_fresh()
        rule = self.block_list.match(caller.ip)
        if rule is not None:
            self.block_list.record_attempt(ip=caller.ip, path=caller.path, rule=rule)
            raise IPBlocked()
        limits = await self.settings.for_decision()
        if caller.user_id is None and not limits.guest_enabled:
            raise AuthenticationRequired()
        candidates = self.directory.candidates(model)
        if not candidates and not self.directory.is_paused(model):
            raise ModelNotFound()  # (a model whose every channel is auto-paused is busy: ``all_busy``)
        if images and self.model_settings and not (await self.model_settings.for_decision(model)).vision:
            raise ImagesNotSupported()
        try:
            if caller.user_id is not None:
                rpm = limits.user_rpm if caller.rpm_limit is None else caller.rpm_limit
                await self.limiter.hit_or_raise(f"user:{caller.user_id}", rpm)
            else:
                await self.limiter.hit_or_raise(f"guest:{caller.ip}", limits.guest_rpm)
        except RateLimited:
            if self.counters is not None:
                self.counters.add(REFUSAL_GUEST if caller.user_id is None else REFUSAL_USER)
            raise
        return candidates

    async def _take_channel_slot(self, target: ChannelTarget) -> bool:
        return await self.limiter.try_hit(f"channel:{target.id}", target.rpm_limit)

    async def _all_busy(self, candidates: list[ChannelTarget], call: CallLog) -> UpstreamUnavailable:
        """Every channel is at its RPM (or auto-paused): one ``all_busy`` row, and a 503 that says the
        model is busy, with the wait until the first channel frees a slot (none while all are paused).
        No upstream saw the prompt, so the row counts no tokens."""
        call.usage = (0, 0)
        call.write("upstream_error", "all_busy")
        if self.counters is not None:
            self.counters.add(REFUSAL_CHANNEL)
        waits = [await self.limiter.retry_after(f"channel:{t.id}", t.rpm_limit) for t in candidates]
        return UpstreamUnavailable(
            ALL_BUSY_MESSAGE, retry_after=min(waits) if waits else None, reason="all_busy"
        )

    @staticmethod
    def _payload(body: dict[str, Any], target: ChannelTarget, *, stream: bool) -> dict[str, Any]:
        payload = {**body, "model": target.model_id, "stream": stream}
        if stream and target.stream_options_unsupported:
            payload.pop("stream_options", None)
        elif stream:
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
        headers = {
            **target.headers,  # the channel's extra headers (never one of the gateway's own)
            "Authorization": f"Bearer {target.api_key}",
            "Content-Type": "application/json",
        }
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers

    async def open_stream(self, *, body: dict[str, Any], caller: Caller) -> ChatStream:
        """Start a streamed call: returns once a channel has sent its first event.

        Channels failing before that (refused, timeout, 5xx, 429, garbage) are skipped for the next one;
        when none can serve, the call is logged and :class:`UpstreamUnavailable` raised.
        """
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        async def first_event(
            response: aiohttp.ClientResponse, target: ChannelTarget, call: CallLog
        ) -> ChatStream:
            events: AsyncIterator[tuple[str, dict[str, Any]]]
            if response.content_type == "application/json":  # an upstream that ignores ``stream: true``
                events = completion_as_events(_completion(await self.client.read_answer(response)))
            else:
                events = iter_sse_payloads(self.client.lines(response))
            first = await anext(events, None)
            if first is None:
                raise UpstreamProtocolError("the stream ended before its first event")
            call.first_event()
            return ChatStream(
                response=response,
                close=self.client.close,
                events=events,
                first=first,
                call=call,
                include_usage=include_usage,
                target=target,
                think_style=self.think_style(target),
                learn=lambda style: self._learn_style(target, style),
            )

        return await self._failover(body, caller, stream=True, accept=first_event)

    async def complete(self, *, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """A non-streamed call: the upstream's ``chat.completion`` with reasoning normalised."""

        async def whole_answer(
            response: aiohttp.ClientResponse, target: ChannelTarget, call: CallLog
        ) -> dict[str, Any]:
            answer = _completion(await self.client.read_answer(response))
            self._learn_style(target, completion_style(answer))
            content, reasoning = normalize_completion(answer)
            call.usage = usage_of(answer)
            call.texts += [content, reasoning]
            call.write("ok")
            return answer

        return await self._failover(body, caller, stream=False, accept=whole_answer)

    async def _failover(
        self, body: dict[str, Any], caller: Caller, *, stream: bool, accept: _Accept[_T]
    ) -> _T:
        """One call of either kind: the checks, then the model's channels in rotation until one gives
        what ``accept`` takes for a success (a stream's first event, a whole answer).

        A channel without a free RPM slot is passed over; one that fails (refused, timeout, an HTTP
        status other than 200, garbage) is logged and skipped. Outcomes: ``accept``'s result (the row is
        then written by it or by the stream); 503 "the model is busy" with the wait for a slot after an
        ``all_busy`` row when no channel had a slot or every one is auto-paused; 503 after a ``timeout``
        row when every channel tried timed out, an ``upstream_error`` row otherwise, and also when
        anything unforeseen is raised meanwhile; a ``client_aborted`` row when the caller goes away
        (cancelled); a ``server_shutdown`` row and :class:`ShuttingDown` when a shutdown cuts the call,
        or when it is cancelled during one.
        """
        model = str(body.get("model", ""))
        candidates = await self._admit(model, caller, images=has_images(body.get("messages")))
        call = CallLog(self.log_writer, caller, model, body.get("messages") or [], self.calls)
        task = asyncio.current_task()
        if task is not None:
            call.on_cut(lambda: _cancel(task))
        all_timeouts = True
        tried = False
        reason = ""
        try:
            for target in candidates:
                if not await self._take_channel_slot(target):
                    continue
                tried = True
                call.channel_id = target.id
                started = time.monotonic()
                try:
                    result = await self._try_channel(target, body, call, stream=stream, accept=accept)
                except UpstreamFailure as exc:
                    reason, failure, status, timed_out = exc.reason, str(exc), exc.status, exc.timed_out
                else:
                    if self.health is not None:
                        self.health.success(target, int((time.monotonic() - started) * 1000))
                    return result
                all_timeouts = all_timeouts and timed_out
                if self.health is not None and status not in _CALLER_STATUSES:
                    self.health.failure(target, stored(reason, status))
                log.warning("channel %s (%s) skipped: %s", target.id, target.name, failure)
        except DomainError as exc:  # e.g. the shared limiter's store is down: an answered state, no bug
            log.warning("chat call refused on our side: %s", exc.message)
            call.write("upstream_error", "server_error")
            raise
        except Exception:
            log.exception("chat call failed on our side")
            call.write("upstream_error", "server_error")  # a fault of ours, answered as a 500 by the caller
            raise
        except asyncio.CancelledError:
            if call.is_cut() and task is not None:  # our own cut: answered, not propagated
                task.uncancel()
                if call.cut_error is not None:  # the caller's access was revoked meanwhile
                    call.write("client_aborted")
                    raise call.cut_error from None
                call.write("server_shutdown")
                raise ShuttingDown() from None
            call.write("server_shutdown" if self.calls.draining else "client_aborted")  # or: the caller left
            raise
        except BaseException:
            call.write("client_aborted")
            raise
        if not tried:
            raise await self._all_busy(candidates, call)
        call.write("timeout" if all_timeouts else "upstream_error", reason)
        raise UpstreamUnavailable(reason=reason)

    async def _try_channel(
        self,
        target: ChannelTarget,
        body: dict[str, Any],
        call: CallLog,
        *,
        stream: bool,
        accept: _Accept[_T],
    ) -> _T:
        """Post to one channel and hand a 200 to ``accept``; a stream must send its first event within
        ``first_byte`` seconds, a whole answer must have arrived within ``idle`` seconds (the whole wait,
        however the bytes trickle in). The response is closed on any failure or cancellation, which
        ends the upstream request at once (closing is synchronous: no await a cancellation could cut).

        A stream refused with a 4xx that names ``stream_options`` is asked again once without it, and
        the channel remembers to leave it out (older vLLM, some Azure deployments)."""
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(self.timeouts.first_byte if stream else self.timeouts.idle):
                payload = self._payload(body, target, stream=stream)
                headers = self._headers(target, stream=stream)
                response = await self.client.post_json(
                    target.completions_url, payload, headers, proxy=target.proxy
                )
                if (
                    response.status != 200
                    and stream
                    and "stream_options" in payload
                    and await self._refuses_stream_options(response)
                ):
                    self.client.close(response)
                    response = None
                    await asyncio.to_thread(self.directory.remember_stream_options_unsupported, target.id)
                    payload.pop("stream_options")
                    response = await self.client.post_json(
                        target.completions_url, payload, headers, proxy=target.proxy
                    )
                if response.status != 200:
                    raise UpstreamFailure(
                        reason_for_status(response.status), f"HTTP {response.status}", status=response.status
                    )
                result = await accept(response, target, call)
        except TimeoutError as exc:  # our own deadline (the client's own timeouts arrive as failures)
            if response is not None:
                self.client.close(response)
            raise UpstreamFailure("timeout_first_event" if stream else "timeout_idle", "deadline") from exc
        except BaseException:
            if response is not None:
                self.client.close(response)
            raise
        if not stream:  # read to its end: the connection is back in the pool
            self.client.close(response)
        return result

    async def _refuses_stream_options(self, response: aiohttp.ClientResponse) -> bool:
        if not 400 <= response.status < 500 or response.status in (401, 403, 429):
            return False
        try:
            head = await response.content.read(_REFUSAL_BYTES)
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False
        return b"stream_options" in head

    def model_names(self) -> list[tuple[str, str]]:
        return [(info.id, info.name) for info in self.directory.models()]


def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()


def _completion(raw: bytes) -> dict[str, Any]:
    """A whole ``chat.completion``, or :class:`UpstreamProtocolError`."""
    try:
        answer = json.loads(raw)
    except ValueError:
        raise UpstreamProtocolError("not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
        raise UpstreamProtocolError("not a chat completion")
    return answer
