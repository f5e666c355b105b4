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
MAX_MODEL_CHARS = 200
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
        raise InvalidInput("channel_fields.url_format", field="base_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("channel_fields.base_url_scheme")
    if parts.username or parts.password:
        raise InvalidInput("channel_fields.base_url_credentials")
    if parts.fragment or "#" in candidate:
        raise InvalidInput("channel_fields.base_url_fragment")
    if port == 0 or not candidate.isprintable() or any(ch.isspace() for ch in candidate):
        raise InvalidInput("channel_fields.url_format", field="base_url")
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
    """What :func:`completions_url` did to the typed URL: catalogue keys, put in words by the dialog."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    notes = []
    if path.endswith(COMPLETIONS_PATH):
        notes.append("channel_fields.note.completions_cut")
        path = path[: -len(COMPLETIONS_PATH)]
    if not path:
        notes.append("channel_fields.note.v1_added")
    if parts.query:
        notes.append("channel_fields.note.query_kept")
    return notes


def clean_model_name(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput("channel_fields.model_empty", field=field)
    if len(value) > MAX_MODEL_CHARS:
        raise InvalidInput("channel_fields.model_too_long", field=field, limit=MAX_MODEL_CHARS)
    if has_control_characters(value):
        raise InvalidInput("channel_fields.model_control", field=field)
    return value


def normalize_models(models: Iterable[str]) -> list[str]:
    """The channel's model ids in the admin's order; at least one, no duplicates."""
    cleaned = [clean_model_name(str(item), "models") for item in models]
    if not cleaned:
        raise InvalidInput("channel_fields.models_none")
    if len(cleaned) > MAX_MODELS:
        raise InvalidInput("channel_fields.models_too_many", limit=MAX_MODELS)
    duplicates = sorted({name for name in cleaned if cleaned.count(name) > 1})
    if duplicates:
        raise InvalidInput("channel_fields.models_duplicate", names=", ".join(duplicates))
    return cleaned


def normalize_model_map(mapping: Mapping[str, str], models: list[str]) -> dict[str, str]:
    """Public name → the upstream's id; each public name is one of ``models``, each id not empty.
    An entry mapping a name to itself says nothing and is dropped."""
    cleaned: dict[str, str] = {}
    for public, upstream in mapping.items():
        name = clean_model_name(str(public), "model_map")
        if name not in models:
            raise InvalidInput("channel_fields.map_not_in_models", name=name)
        if not isinstance(upstream, str) or not upstream.strip():
            raise InvalidInput("channel_fields.map_empty_target", name=name)
        target = clean_model_name(upstream, "model_map")
        if target != name:
            cleaned[name] = target
    return cleaned


def normalize_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Extra request headers: names are HTTP tokens, values printable without CR/LF."""
    if len(headers) > MAX_HEADERS:
        raise InvalidInput("channel_fields.headers_too_many", limit=MAX_HEADERS)
    cleaned: dict[str, str] = {}
    for name, value in headers.items():
        name = str(name).strip()
        if not _TOKEN.match(name):
            raise InvalidInput("channel_fields.header_bad_name", name=repr(name[:40]))
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInput("channel_fields.header_reserved", name=name)
        if not isinstance(value, str):
            raise InvalidInput("channel_fields.header_value_type", name=name)
        if "\r" in value or "\n" in value or has_control_characters(value.replace("\t", " ")):
            raise InvalidInput("channel_fields.header_value_control", name=name)
        if len(value) > 4000:
            raise InvalidInput("channel_fields.header_value_long", name=name)
        if name.lower() in (existing.lower() for existing in cleaned):
            raise InvalidInput("channel_fields.header_duplicate", name=name)
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
        raise InvalidInput("channel_fields.url_format", field="proxy") from None
    if parts.scheme.lower() not in PROXY_SCHEMES:
        raise InvalidInput("channel_fields.proxy_scheme")
    if not parts.hostname or port == 0 or any(ch.isspace() for ch in candidate):
        raise InvalidInput("channel_fields.url_format", field="proxy")
    if not candidate.isprintable() or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise InvalidInput("channel_fields.proxy_shape")
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
