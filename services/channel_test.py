"""The admin's "test" button: one minimal request to a channel, reporting latency or what went wrong."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import anyio
import httpx

from app.models import Channel
from services.security import KeyCipher, mask_key
from services.upstream import AnswerTooLarge, UpstreamClient

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
    started = time.monotonic()
    response: httpx.Response | None = None
    try:
        async with asyncio.timeout(wait_seconds):
            response = await client.post_json(f"{channel.base_url}/chat/completions", payload, headers)
            body = await client.read_answer(response)
    except (httpx.TimeoutException, TimeoutError):
        return ProbeResult(ok=False, error=f"超时（{wait_seconds:g} 秒内没有响应）")
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
        detail = _scrub(body.decode("utf-8", "replace"), key)
        return ProbeResult(
            ok=False,
            latency_ms=latency,
            status_code=response.status_code,
            error=f"HTTP {response.status_code}: {detail}" if detail else f"HTTP {response.status_code}",
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
