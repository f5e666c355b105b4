"""The admin's "test" button (and the re-test of a paused channel): a minimal plain call, then a minimal
streamed one, to a channel's first model, reporting latency or which of the two failed and why."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace

import anyio
import httpx

from app.models import Channel
from services.channel_fields import completions_url, load_map
from services.channels import channel_models, decrypt_headers
from services.security import KeyCipher, mask_key
from services.upstream import AnswerTooLarge, UpstreamClient, UpstreamProtocolError, iter_sse_payloads

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


def _scrub(text: str, secrets: list[str]) -> str:
    text = " ".join(text.split())[:MAX_ERROR_CHARS]
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, mask_key(secret))
    return text


async def _plain(call: _Call, client: UpstreamClient, wait: float, secrets: list[str]) -> ProbeResult:
    payload = {"model": call.model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    started = time.monotonic()
    response: httpx.Response | None = None
    try:
        async with asyncio.timeout(wait):
            response = await client.post_json(call.url, {**payload, "stream": False}, call.headers)
            body = await client.read_answer(response)
    except (httpx.TimeoutException, TimeoutError):
        return ProbeResult(ok=False, error=f"超时（{wait:g} 秒内没有响应）")
    except AnswerTooLarge:
        status = response.status_code if response is not None else None
        return ProbeResult(ok=False, status_code=status, error=f"响应超过 {client.max_answer_bytes} 字节")
    except httpx.HTTPError as exc:
        return ProbeResult(ok=False, error=f"无法连接：{type(exc).__name__}")
    finally:
        if response is not None:
            with anyio.CancelScope(shield=True):
                await response.aclose()
    latency = int((time.monotonic() - started) * 1000)
    if response.status_code != 200:
        detail = _scrub(body.decode("utf-8", "replace"), secrets)
        error = f"HTTP {response.status_code}: {detail}" if detail else f"HTTP {response.status_code}"
        return ProbeResult(ok=False, latency_ms=latency, status_code=response.status_code, error=error)
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
    response: httpx.Response | None = None
    try:
        async with asyncio.timeout(wait):
            response = await client.post_json(
                call.url, payload, {**call.headers, "Accept": "text/event-stream"}
            )
            if response.status_code != 200:
                body = await client.read_answer(response)
                detail = _scrub(body.decode("utf-8", "replace"), secrets)
                return f"HTTP {response.status_code}: {detail}" if detail else f"HTTP {response.status_code}"
            first = await anext(iter_sse_payloads(client.lines(response)), None)
            if first is None:
                return "没有收到任何 SSE 事件（上游可能不支持 stream: true）"
    except (httpx.TimeoutException, TimeoutError):
        return f"超时（{wait:g} 秒内没有收到第一个事件）"
    except (AnswerTooLarge, UpstreamProtocolError) as exc:
        return f"流格式错误：{type(exc).__name__}"
    except httpx.HTTPError as exc:
        return f"无法连接：{type(exc).__name__}"
    finally:
        if response is not None:
            with anyio.CancelScope(shield=True):
                await response.aclose()
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
    first = channel_models(channel)[0]
    call = _Call(
        url=completions_url(channel.base_url),
        model=load_map(channel.model_map).get(first, first),
        headers={**extra, "Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        key=key,
    )
    secrets = [key, *extra.values()]
    plain = await _plain(call, client, wait_seconds, secrets)
    if not plain.ok:
        return replace(plain, error=f"非流式调用失败：{plain.error}")
    stream_error = await _streamed(call, client, wait_seconds, secrets)
    if stream_error is not None:
        return replace(plain, ok=False, stream_ok=False, error=f"流式调用失败：{stream_error}")
    return replace(plain, stream_ok=True)
