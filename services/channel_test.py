"""The admin's "test" button (and the re-test of a paused channel): a minimal plain call, then a minimal
streamed one, to a channel's first model, reporting latency or which of the two failed and why."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, replace

import aiohttp

from app.models import Channel
from services.channel_fields import completions_url, load_map
from services.channels import channel_models, decrypt_headers, decrypt_proxy
from services.reasons import kind_of
from services.security import KeyCipher, mask_key
from services.upstream import AnswerTooLarge, UpstreamClient, UpstreamFailure, iter_sse_payloads

log = logging.getLogger("pyaichat.channels")
# a failure to reach the upstream, in words (its reason code in brackets, as the call log has it)
_FAILURE_WORDS = {
    "tls": "TLS 证书校验失败（tls）：上游证书不受信任，可用 UPSTREAM_CA_BUNDLE 信任私有 CA",
    "proxy": "代理不可用（proxy）：无法通过代理连接上游",
}


def _connect_words(exc: UpstreamFailure) -> str:
    if exc.timed_out:
        return "连接超时（timeout_connect）"
    return "无法连接上游（timeout_connect）：连接被拒绝或域名无法解析"


def _unreachable(exc: UpstreamFailure, channel_id: int | None) -> str:
    log.warning("channel %s test failed: %s (%s)", channel_id, exc.reason, kind_of(exc.reason))
    if exc.reason == "timeout_connect":
        return _connect_words(exc)
    return _FAILURE_WORDS.get(exc.reason, f"无法连接（{exc.reason}）")


MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the test found: the API returns it as ``app.schemas.ChannelTestResult``, the page as a notice."""

    ok: bool
    latency_ms: int | None = None
    status_code: int | None = None
    error: str | None = None
    stream_ok: bool | None = None  # None: the streamed call was not tried (the plain one failed first)


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
        return ProbeResult(ok=False, error=f"超时（{wait:g} 秒内没有响应）")
    except AnswerTooLarge:
        status = response.status if response is not None else None
        return ProbeResult(ok=False, status_code=status, error=f"响应超过 {client.max_answer_bytes} 字节")
    except UpstreamFailure as exc:
        return ProbeResult(ok=False, error=_unreachable(exc, call.channel_id))
    finally:
        if response is not None:
            client.close(response)
    latency = int((time.monotonic() - started) * 1000)
    if response.status != 200:
        detail = _scrub(body.decode("utf-8", "replace"), secrets)
        error = f"HTTP {response.status}: {detail}" if detail else f"HTTP {response.status}"
        return ProbeResult(ok=False, latency_ms=latency, status_code=response.status, error=error)
    try:
        answer = json.loads(body)
        valid = isinstance(answer, dict) and isinstance(answer.get("choices"), list)
    except ValueError:
        valid = False
    if not valid:
        return ProbeResult(
            ok=False, latency_ms=latency, status_code=200, error="响应不是 OpenAI chat.completion 格式"
        )
    return ProbeResult(ok=True, latency_ms=latency, status_code=200)


async def _streamed(call: _Call, client: UpstreamClient, wait: float, secrets: list[str]) -> str | None:
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
                return f"HTTP {response.status}: {detail}" if detail else f"HTTP {response.status}"
            first = await anext(iter_sse_payloads(client.lines(response)), None)
            if first is None:
                return "没有收到任何 SSE 事件（上游可能不支持 stream: true）"
    except TimeoutError:
        return f"超时（{wait:g} 秒内没有收到第一个事件）"
    except UpstreamFailure as exc:
        if exc.reason == "bad_stream":
            return f"流格式错误（bad_stream）：{exc.detail or type(exc).__name__}"
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
        return ProbeResult(
            ok=False, error="API Key 无法解密：ENCRYPTION_KEY 与保存时不同，请重新填写 API Key"
        )
    extra = decrypt_headers(channel, cipher)
    if extra is None:
        return ProbeResult(ok=False, error="自定义请求头无法解密：ENCRYPTION_KEY 与保存时不同，请重新填写")
    try:
        proxy = decrypt_proxy(channel, cipher)
    except ValueError:
        return ProbeResult(ok=False, error="代理地址无法解密：ENCRYPTION_KEY 与保存时不同，请重新填写代理")
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
        return replace(plain, error=f"非流式调用失败：{plain.error}")
    stream_error = await _streamed(call, client, wait_seconds, secrets)
    if stream_error is not None:
        return replace(plain, ok=False, stream_ok=False, error=f"流式调用失败：{stream_error}")
    return replace(plain, stream_ok=True)
