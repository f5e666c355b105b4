"""The rules of a channel's fields: base URL and the URL it leads to, models and their mapping, extra
headers, proxy. Each rule returns the clean value or raises :class:`InvalidInput` naming the field
(never echoing a value: header values and proxy passwords are secrets)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.errors import InvalidInput
from services.text import has_control_characters

COMPLETIONS_PATH = "/chat/completions"
DEFAULT_PATH = "/v1"  # where OpenAI-compatible servers (Ollama, vLLM, LM Studio…) serve their API
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
MAX_MODELS = 200
MAX_HEADERS = 30
# RFC 9110 token characters: what a header name may be made of
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# set by the gateway itself for every call: an extra header may not replace them
RESERVED_HEADERS = frozenset({"authorization", "content-type", "content-length", "host", "accept"})


def normalize_base_url(url: str) -> str:
    """What the admin typed, trimmed (spaces, a trailing slash): http(s), a host, no credentials or
    fragment. A query string (Azure's ``api-version``) is kept and sent on every call."""
    candidate = url.strip()
    try:
        parts = urlsplit(candidate)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise InvalidInput("base_url：格式不正确") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("base_url：必须以 http:// 或 https:// 开头，例如 https://api.openai.com/v1")
    if parts.username or parts.password:
        raise InvalidInput("base_url：不能包含用户名或密码，请把密钥填在 API Key 中")
    if parts.fragment or "#" in candidate:
        raise InvalidInput("base_url：不能包含 # 片段")
    if port == 0 or not candidate.isprintable() or any(ch.isspace() for ch in candidate):
        raise InvalidInput("base_url：格式不正确")
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def completions_url(base_url: str) -> str:
    """The exact URL a channel's calls go to: a pasted ``…/chat/completions`` is not doubled, a base
    without a path gets ``/v1``, the query string follows the path."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if path.endswith(COMPLETIONS_PATH):
        path = path[: -len(COMPLETIONS_PATH)]
    path = path or DEFAULT_PATH
    return urlunsplit((parts.scheme, parts.netloc, path + COMPLETIONS_PATH, parts.query, ""))


def base_url_notes(base_url: str) -> list[str]:
    """What :func:`completions_url` did to the typed URL, in words for the dialog."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    notes = []
    if path.endswith(COMPLETIONS_PATH):
        notes.append("末尾的 /chat/completions 已去掉：调用时会自动加上")
        path = path[: -len(COMPLETIONS_PATH)]
    if not path:
        notes.append("没有路径，按 OpenAI 兼容接口的惯例补上 /v1")
    if parts.query:
        notes.append("查询参数（如 api-version）会附在每次调用的地址后")
    return notes


def clean_model_name(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(f"{field}：模型名不能为空")
    if len(value) > 200:
        raise InvalidInput(f"{field}：模型名最长 200 个字符")
    if has_control_characters(value):
        raise InvalidInput(f"{field}：模型名不能包含控制字符")
    return value


def normalize_models(models: Iterable[str]) -> list[str]:
    """The channel's model ids in the admin's order; at least one, no duplicates."""
    cleaned = [clean_model_name(str(item), "models") for item in models]
    if not cleaned:
        raise InvalidInput("models：至少填写一个模型")
    if len(cleaned) > MAX_MODELS:
        raise InvalidInput(f"models：最多 {MAX_MODELS} 个模型")
    duplicates = sorted({name for name in cleaned if cleaned.count(name) > 1})
    if duplicates:
        raise InvalidInput(f"models：模型重复：{', '.join(duplicates)}")
    return cleaned


def normalize_model_map(mapping: Mapping[str, str], models: list[str]) -> dict[str, str]:
    """Public name → the upstream's id; each public name is one of ``models``, each id not empty.
    An entry mapping a name to itself says nothing and is dropped."""
    cleaned: dict[str, str] = {}
    for public, upstream in mapping.items():
        name = clean_model_name(str(public), "model_map")
        if name not in models:
            raise InvalidInput(f"model_map：{name} 不在 models 中")
        if not isinstance(upstream, str) or not upstream.strip():
            raise InvalidInput(f"model_map：{name} 映射到的上游模型 ID 不能为空")
        target = clean_model_name(upstream, "model_map")
        if target != name:
            cleaned[name] = target
    return cleaned


def normalize_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Extra request headers: names are HTTP tokens, values printable without CR/LF."""
    if len(headers) > MAX_HEADERS:
        raise InvalidInput(f"headers：最多 {MAX_HEADERS} 个")
    cleaned: dict[str, str] = {}
    for name, value in headers.items():
        name = str(name).strip()
        if not _TOKEN.match(name):
            raise InvalidInput(f"headers：名称 {name[:40]!r} 不是合法的 HTTP 头名称")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInput(f"headers：{name} 由网关设置，不能覆盖")
        if not isinstance(value, str):
            raise InvalidInput(f"headers：{name} 的值必须是字符串")
        if "\r" in value or "\n" in value or has_control_characters(value.replace("\t", " ")):
            raise InvalidInput(f"headers：{name} 的值不能包含换行或控制字符")
        if len(value) > 4000:
            raise InvalidInput(f"headers：{name} 的值太长")
        if name.lower() in (existing.lower() for existing in cleaned):
            raise InvalidInput(f"headers：{name} 重复")
        cleaned[name] = value.strip()
    return cleaned


def normalize_proxy_url(url: str) -> str:
    """A channel's proxy: ``""`` (direct, no proxy) or an ``http``, ``https``, ``socks5`` or ``socks5h``
    URL with a host and an optional ``user:password``."""
    candidate = url.strip()
    if not candidate:
        return ""
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        raise InvalidInput("proxy：格式不正确") from None
    if parts.scheme.lower() not in PROXY_SCHEMES:
        raise InvalidInput("proxy：只支持 http://、https://、socks5://、socks5h:// 代理")
    if not parts.hostname or port == 0 or any(ch.isspace() for ch in candidate):
        raise InvalidInput("proxy：格式不正确")
    if not candidate.isprintable() or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise InvalidInput("proxy：只能是 scheme://[user:password@]host:port")
    return candidate


def mask_header_value(value: str) -> str:
    if len(value) <= 8:
        return "•" * min(len(value), 8)
    return f"{value[:3]}…{value[-3:]}"


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def load_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(item) for item in value] if isinstance(value, list) else []


def load_map(text: str | None) -> dict[str, str]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
