"""Why an upstream call failed, as one reason code (``chat_logs.error``, the admin log table, the CSV, the
server log) and, for the person chatting, as words that tell whether the model is overloaded,
misconfigured or unreachable, without any upstream detail.

A reason is a word from :data:`REASONS`, never a body, a URL or a key.
"""

from __future__ import annotations

from typing import Literal

REASONS = (
    "http_401",  # the upstream refused the key (401/403)
    "http_4xx",  # another 4xx: the request or the channel's model is wrong for this upstream
    "http_429",  # the upstream is rate limiting or overloaded
    "http_5xx",  # the upstream failed
    "tls",  # a certificate or TLS handshake failure
    "proxy",  # the proxy was unreachable or refused to connect us
    "timeout_connect",  # no connection: refused, name not resolved, or none within the connect timeout
    "timeout_first_event",  # a stream sent no first event within the first-byte timeout
    "timeout_idle",  # an answer stalled longer than the idle timeout
    "bad_stream",  # not an OpenAI answer, too large, or cut mid-answer
    "server_error",  # a fault of ours
    "all_busy",  # every channel of the model was at its RPM limit or paused: no upstream was asked
)
# SPEC §5's list is closed: a refused connection or an unknown host is ``timeout_connect`` (no
# connection could be made), its row's status ``upstream_error`` unless a deadline ran out

Kind = Literal["overloaded", "misconfigured", "unreachable"]

_KIND: dict[str, Kind] = {
    "http_401": "misconfigured",
    "http_4xx": "misconfigured",
    "tls": "misconfigured",
    "bad_stream": "misconfigured",
    "http_429": "overloaded",
    "all_busy": "overloaded",
    "http_5xx": "unreachable",
    "proxy": "unreachable",
    "timeout_connect": "unreachable",
    "timeout_first_event": "overloaded",
    "timeout_idle": "overloaded",
    "server_error": "unreachable",
}

WORDS: dict[Kind, str] = {
    "overloaded": "模型当前繁忙（上游过载或限流），请稍后再试。",
    "misconfigured": "模型的上游配置有误，请联系管理员检查渠道设置。",
    "unreachable": "暂时无法连接到模型服务，请稍后再试。",
}


def reason_for_status(status: int) -> str:
    if status in (401, 403):
        return "http_401"
    if status == 429:
        return "http_429"
    if status >= 500:
        return "http_5xx"
    return "http_4xx"


def kind_of(reason: str | None) -> Kind:
    return _KIND.get(reason or "", "unreachable")


_ADMIN_WORDS = {
    "http_401": "API Key 无效或没有权限",
    "http_4xx": "上游拒绝了请求（模型或地址不对？）",
    "http_429": "上游限流或过载",
    "http_5xx": "上游服务器出错",
    "tls": "TLS 证书校验失败（可用 UPSTREAM_CA_BUNDLE 信任私有 CA）",
    "proxy": "代理不可用",
    "timeout_connect": "无法连接上游（连接被拒绝、域名无法解析或连接超时）",
    "timeout_first_event": "上游在时限内没有响应",
    "timeout_idle": "上游响应中途停顿过久",
    "bad_stream": "上游的响应不是 OpenAI 格式、过大或中途断开",
    "server_error": "网关内部错误",
    "all_busy": "所有渠道都已达到每分钟请求上限或已暂停",
}


def in_words(reason: str, status: int | None = None) -> str:
    """A channel's last error as the admin reads it: the HTTP status or else the reason code, then words."""
    head = f"HTTP {status}" if status is not None else reason
    return f"{head}: {_ADMIN_WORDS.get(reason, reason)}"
