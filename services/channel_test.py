"""The admin's "test" button: one minimal request to a channel, reporting latency or what went wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import aiohttp

from app.models import Channel
from services.reasons import kind_of
from services.security import KeyCipher, mask_key
from services.upstream import AnswerTooLarge, UpstreamClient, UpstreamFailure

log = logging.getLogger("pyaichat.channels")
_FAILURE_WORDS = {
    "tls": "TLS 证书校验失败（tls）：上游证书不受信任，可用 UPSTREAM_CA_BUNDLE 信任私有 CA",
    "proxy": "代理不可用（proxy）：无法通过代理连接上游",
    "timeout_connect": "连接超时（timeout_connect）",
    "connect": "无法连接上游（connect）",
}

MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the test found: the API returns it as ``app.schemas.ChannelTestResult``, the page as a notice."""

    ok: bool
    latency_ms: int | None = None
    status_code: int | None = None
    error: str | None = None


def _scrub(text: str, key: str) -> str:
    text = " ".join(text.split())[:MAX_ERROR_CHARS]
    return text.replace(key, mask_key(key)) if key else text


async def probe_channel(
    *, channel: Channel, cipher: KeyCipher, client: UpstreamClient, wait_seconds: float
) -> ProbeResult:
    """``wait_seconds`` bounds the whole exchange, connection to the last byte of the answer."""
    key = cipher.decrypt(channel.api_key)
    if key is None:
        return ProbeResult(
            ok=False, error="API Key 无法解密：ENCRYPTION_KEY 与保存时不同，请重新填写 API Key"
        )
    payload = {
        "model": channel.model_id,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
        "stream": False,
    }
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    proxy = cipher.decrypt(channel.proxy) if channel.proxy is not None else None
    if channel.proxy is not None and proxy is None:
        return ProbeResult(ok=False, error="代理地址无法解密：ENCRYPTION_KEY 与保存时不同，请重新填写代理")
    started = time.monotonic()
    response: aiohttp.ClientResponse | None = None
    try:
        async with asyncio.timeout(wait_seconds):
            response = await client.post_json(
                f"{channel.base_url}/chat/completions", payload, headers, proxy=proxy
            )
            body = await client.read_answer(response)
    except TimeoutError:
        return ProbeResult(ok=False, error=f"超时（{wait_seconds:g} 秒内没有响应）")
    except AnswerTooLarge:
        status = response.status if response is not None else None
        return ProbeResult(ok=False, status_code=status, error=f"响应超过 {client.max_answer_bytes} 字节")
    except UpstreamFailure as exc:
        log.warning("channel %s test failed: %s (%s)", channel.id, exc.reason, kind_of(exc.reason))
        return ProbeResult(ok=False, error=_FAILURE_WORDS.get(exc.reason, f"无法连接（{exc.reason}）"))
    finally:
        if response is not None:
            client.close(response)
    latency = int((time.monotonic() - started) * 1000)
    if response.status != 200:
        detail = _scrub(body.decode("utf-8", "replace"), key)
        return ProbeResult(
            ok=False,
            latency_ms=latency,
            status_code=response.status,
            error=f"HTTP {response.status}: {detail}" if detail else f"HTTP {response.status}",
        )
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
