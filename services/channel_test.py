"""The admin's "test" button (and the re-test of a paused channel): a minimal plain call, then a minimal
streamed one, to a channel's first model, reporting latency or which of the two failed and why."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace

import aiohttp

from app.models import Channel
from services.channel_fields import completions_url, load_map
from services.channels import channel_models, decrypt_headers, decrypt_proxy
from services.i18n import FALLBACK, translate
from services.reasons import kind_of, reason_for_status, stored
from services.security import KeyCipher, mask_key
from services.upstream import AnswerTooLarge, UpstreamClient, UpstreamFailure, iter_sse_payloads

log = logging.getLogger("pyaichat.channels")
# a failure to reach the upstream, in words (its reason code in brackets, as the call log has it)
_FAILURE_WORDS = {"tls": "channel_test.tls", "proxy": "channel_test.proxy"}


@dataclass(frozen=True, slots=True)
class Words:
    """What a test found, as a catalogue key and its fields (a field may be Words itself): put in words
    in the reader's language (:meth:`text`), so that the service never needs to know it."""

    key: str
    fields: dict[str, object] = field(default_factory=dict)

    def text(self, language: str = FALLBACK) -> str:
        values = {
            name: value.text(language) if isinstance(value, Words) else value
            for name, value in self.fields.items()
        }
        return translate(self.key, language, **values)


def _words(key: str, **fields: object) -> Words:
    return Words(key, fields)


def _connect_words(exc: UpstreamFailure) -> Words:
    return _words("channel_test.connect_timeout" if exc.timed_out else "channel_test.connect_refused")


def _unreachable(exc: UpstreamFailure, channel_id: int | None) -> Words:
    log.warning("channel %s test failed: %s (%s)", channel_id, exc.reason, kind_of(exc.reason))
    if exc.reason == "timeout_connect":
        return _connect_words(exc)
    if exc.reason in _FAILURE_WORDS:
        return _words(_FAILURE_WORDS[exc.reason])
    return _words("channel_test.unreachable", reason=exc.reason)


def _http(status: int, detail: str) -> Words:
    return (
        _words("channel_test.http_detail", status=status, detail=detail)
        if detail
        else _words("channel_test.http", status=status)
    )


MAX_ERROR_CHARS = 300

# what a failure found is, as a reason code (services/reasons.py), by its words' key; an HTTP status and
# channel_test.unreachable carry theirs in their fields
_REASON_OF = {
    "channel_test.timeout": "timeout_first_event",
    "channel_test.first_event_timeout": "timeout_first_event",
    "channel_test.connect_timeout": "timeout_connect",
    "channel_test.connect_refused": "timeout_connect",
    "channel_test.tls": "tls",
    "channel_test.proxy": "proxy",
    "channel_test.too_large": "bad_stream",
    "channel_test.not_openai": "bad_stream",
    "channel_test.no_events": "bad_stream",
    "channel_test.bad_stream": "bad_stream",
    "channel_test.key_undecryptable": "key_undecryptable",
    "channel_test.headers_undecryptable": "headers_undecryptable",
    "channel_test.proxy_undecryptable": "proxy_undecryptable",
}


def stored_reason(words: Words) -> str:
    """What a test found in the language-neutral form a channel's ``last_error`` keeps
    (``services.reasons.stored``): the reason code and the HTTP status if any."""
    inner = words.fields.get("error")
    if isinstance(inner, Words):  # "the plain call failed: …", "the streamed call failed: …"
        return stored_reason(inner)
    status = words.fields.get("status")
    if isinstance(status, int):
        return stored(reason_for_status(status), status)
    reason = words.fields.get("reason")
    if isinstance(reason, str):
        return stored(reason)
    return _REASON_OF.get(words.key, "server_error")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the test found: the API returns it as ``app.schemas.ChannelTestResult``, the page as a notice."""

    ok: bool
    latency_ms: int | None = None
    status_code: int | None = None
    words: Words | None = None  # what went wrong
    stream_ok: bool | None = None  # None: the streamed call was not tried (the plain one failed first)

    @property
    def error(self) -> str | None:
        """What went wrong, as a channel's last error keeps it (a re-test stores it): a reason code and
        the HTTP status if any, put in words when read (``services.reasons.stored_in_words``)."""
        return None if self.words is None else stored_reason(self.words)

    def error_text(self, language: str = FALLBACK) -> str | None:
        return None if self.words is None else self.words.text(language)


@dataclass(frozen=True, slots=True)
class _Call:
    url: str
    model: str
    headers: dict[str, str]
    key: str
    proxy: str | None = None
    channel_id: int | None = None


def _scrub(text: str, secrets: list[str]) -> str:
    text = " ".join(text.split())[:MAX_ERROR_CHARS]
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, mask_key(secret))
    return text


async def _plain(call: _Call, client: UpstreamClient, wait: float, secrets: list[str]) -> ProbeResult:
    payload = {"model": call.model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    started = time.monotonic()
    response: aiohttp.ClientResponse | None = None
    try:
        async with asyncio.timeout(wait):
            response = await client.post_json(
                call.url, {**payload, "stream": False}, call.headers, proxy=call.proxy
            )
            body = await client.read_answer(response)
    except TimeoutError:
        return ProbeResult(ok=False, words=_words("channel_test.timeout", seconds=f"{wait:g}"))
    except AnswerTooLarge:
        status = response.status if response is not None else None
        too_large = _words("channel_test.too_large", limit=client.max_answer_bytes)
        return ProbeResult(ok=False, status_code=status, words=too_large)
    except UpstreamFailure as exc:
        return ProbeResult(ok=False, words=_unreachable(exc, call.channel_id))
    finally:
        if response is not None:
            client.close(response)
    latency = int((time.monotonic() - started) * 1000)
    if response.status != 200:
        detail = _scrub(body.decode("utf-8", "replace"), secrets)
        error = _http(response.status, detail)
        return ProbeResult(ok=False, latency_ms=latency, status_code=response.status, words=error)
    try:
        answer = json.loads(body)
        valid = isinstance(answer, dict) and isinstance(answer.get("choices"), list)
    except ValueError:
        valid = False
    if not valid:
        return ProbeResult(
            ok=False, latency_ms=latency, status_code=200, words=_words("channel_test.not_openai")
        )
    return ProbeResult(ok=True, latency_ms=latency, status_code=200)


async def _streamed(call: _Call, client: UpstreamClient, wait: float, secrets: list[str]) -> Words | None:
    """None when a streamed call gives its first event within ``wait``, else what went wrong."""
    payload = {
        "model": call.model,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response: aiohttp.ClientResponse | None = None
    try:
        async with asyncio.timeout(wait):
            response = await client.post_json(
                call.url, payload, {**call.headers, "Accept": "text/event-stream"}, proxy=call.proxy
            )
            if response.status != 200:
                body = await client.read_answer(response)
                detail = _scrub(body.decode("utf-8", "replace"), secrets)
                return _http(response.status, detail)
            first = await anext(iter_sse_payloads(client.lines(response)), None)
            if first is None:
                return _words("channel_test.no_events")
    except TimeoutError:
        return _words("channel_test.first_event_timeout", seconds=f"{wait:g}")
    except UpstreamFailure as exc:
        if exc.reason == "bad_stream":
            return _words("channel_test.bad_stream", detail=exc.detail or type(exc).__name__)
        return _unreachable(exc, call.channel_id)
    finally:
        if response is not None:
            client.close(response)
    return None


async def probe_channel(
    *, channel: Channel, cipher: KeyCipher, client: UpstreamClient, wait_seconds: float
) -> ProbeResult:
    """``wait_seconds`` bounds each of the two exchanges, connection to the last byte (or first event)."""
    key = cipher.decrypt(channel.api_key)
    if key is None:
        return ProbeResult(ok=False, words=_words("channel_test.key_undecryptable"))
    extra = decrypt_headers(channel, cipher)
    if extra is None:
        return ProbeResult(ok=False, words=_words("channel_test.headers_undecryptable"))
    try:
        proxy = decrypt_proxy(channel, cipher)
    except ValueError:
        return ProbeResult(ok=False, words=_words("channel_test.proxy_undecryptable"))
    first = channel_models(channel)[0]
    call = _Call(
        url=completions_url(channel.base_url),
        model=load_map(channel.model_map).get(first, first),
        headers={**extra, "Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        key=key,
        proxy=proxy,
        channel_id=channel.id,
    )
    secrets = [key, *extra.values()]
    plain = await _plain(call, client, wait_seconds, secrets)
    if not plain.ok:
        return replace(plain, words=_words("channel_test.plain_failed", error=plain.words))
    stream_error = await _streamed(call, client, wait_seconds, secrets)
    if stream_error is not None:
        stream_failed = _words("channel_test.stream_failed", error=stream_error)
        return replace(plain, ok=False, stream_ok=False, words=stream_failed)
    return replace(plain, stream_ok=True)
