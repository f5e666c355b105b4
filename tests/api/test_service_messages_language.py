"""The services' own refusals (a channel's fields, a model's settings) and the words they give (the call
log's guest and deleted user) follow the request's Accept-Language; zh-CN without one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

EN = {"Accept-Language": "en-US,en;q=0.9"}
CHANNEL = {"name": "language check", "api_key": "sk-language-check", "model_id": "lang-model"}


def _message(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "validation_error"
    return str(error["message"])


@pytest.mark.parametrize(
    ("change", "chinese", "english"),
    [
        (
            {"base_url": "ftp://example.com"},
            "base_url：必须以 http:// 或 https:// 开头，例如 https://api.openai.com/v1",
            "base_url: must start with http:// or https://, e.g. https://api.openai.com/v1",
        ),
        (
            {"base_url": "https://example.com", "model_id": None},
            "models：至少填写一个模型",
            "models: enter at least one model",
        ),
        (
            {"base_url": "https://example.com", "headers": {"Authorization": "x"}},
            "headers：Authorization 由网关设置，不能覆盖",
            "headers: Authorization is set by the gateway and cannot be replaced",
        ),
        (
            {"base_url": "https://example.com", "proxy": "ftp://proxy:21"},
            "proxy：只支持 http://、https://、socks5://、socks5h:// 代理",
            "proxy: only http://, https://, socks5:// and socks5h:// proxies are supported",
        ),
    ],
    ids=["base_url", "models", "headers", "proxy"],
)
def test_channel_field_rules_in_both_languages(
    client: httpx.Client, admin_headers: dict[str, str], change: dict[str, Any], chinese: str, english: str
) -> None:
    body = {key: value for key, value in {**CHANNEL, **change}.items() if value is not None}
    assert _message(client.post("/api/admin/channels", json=body, headers=admin_headers)) == chinese
    assert _message(client.post("/api/admin/channels", json=body, headers={**admin_headers, **EN})) == english


def test_a_model_map_rule_in_english(client: httpx.Client, admin_headers: dict[str, str]) -> None:
    body = {**CHANNEL, "base_url": "https://example.com", "model_map": {"other": "x"}}
    response = client.post("/api/admin/channels", json=body, headers={**admin_headers, **EN})
    assert _message(response) == "model_map: other is not in models"
