"""The services' own refusals (a channel's fields, a model's settings) and the words they give (the call
log's guest and deleted user) follow the request's Accept-Language; zh-CN without one."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import httpx
import pytest

from app.api.body_limit import too_large
from services import model_settings
from services.errors import InvalidInput
from tests.chat_helpers import add_channel, chat_body, unique_model
from tests.helpers import RunningApp, wait_until
from tests.upstream_server import UpstreamServer

EN = {"Accept-Language": "en-US,en;q=0.9"}
HAN = re.compile(r"[\u4e00-\u9fff]")
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


def test_a_model_settings_rule_in_both_languages(client: httpx.Client, admin_headers: dict[str, str]) -> None:
    url = "/api/admin/models/%20"  # a name of spaces only: refused by the service, not by the route
    english = client.put(url, json={"vision": True}, headers={**admin_headers, **EN})
    assert _message(english) == "A model name is 1 to 200 characters long"
    assert (
        _message(client.put(url, json={"vision": True}, headers=admin_headers))
        == "模型名称必须是 1 到 200 个字符"
    )


@pytest.mark.parametrize(
    ("changes", "english"),
    [
        ({"temperature": 2.5}, "temperature must be a number from 0 to 2"),
        ({"colour": "red", "size": 1}, "Unknown model settings: colour, size"),
        ({"max_tokens": 0}, "max_tokens must be a whole number from 1 to 10000000"),
        ({"vision": "yes"}, "vision must be true or false"),
    ],
    ids=["temperature", "unknown", "max_tokens", "vision"],
)
def test_model_settings_rules_have_english_words(changes: dict[str, Any], english: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        model_settings.validated(changes)
    assert refused.value.text("en") == english
    assert not HAN.search(english) and HAN.search(refused.value.message), "Chinese stays the default"


def test_a_deleted_channel_on_the_dashboard_in_english(
    client: httpx.Client, admin_headers: dict[str, str], upstream: UpstreamServer
) -> None:
    model = unique_model("gone")
    channel = add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model)
    assert client.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code == 200
    assert client.delete(f"/api/admin/channels/{channel['id']}", headers=admin_headers).status_code == 204

    def named(headers: dict[str, str]) -> list[str]:
        rows = client.get("/api/admin/stats", headers=headers).json()["per_channel"]
        return [row["name"] for row in rows if row["channel_id"] == channel["id"]]

    wait_until(lambda: named(admin_headers) == [f"#{channel['id']}（已删除）"], what="the call counted")
    assert named({**admin_headers, **EN}) == [f"#{channel['id']} (deleted)"]


def test_a_channel_test_reports_in_the_request_language(
    client: httpx.Client, admin_headers: dict[str, str], upstream: UpstreamServer
) -> None:
    plain_only = add_channel(
        client, admin_headers, base_url=upstream.base_url("plainonly"), model=unique_model()
    )
    url = f"/api/admin/channels/{plain_only['id']}/test"
    english = client.post(url, headers={**admin_headers, **EN}).json()
    assert english["ok"] is False and english["error"].startswith("The streamed call failed: ")
    assert not HAN.search(english["error"]), english["error"]
    assert client.post(url, headers=admin_headers).json()["error"].startswith("流式调用失败：")
    refused = add_channel(client, admin_headers, base_url="http://127.0.0.1:9/v1", model=unique_model())
    result = client.post(f"/api/admin/channels/{refused['id']}/test", headers={**admin_headers, **EN}).json()
    assert result["error"] == (
        "The plain call failed: Cannot connect to the upstream (timeout_connect): "
        "connection refused or host name not resolved"
    )


def test_a_channel_last_error_in_the_request_language(
    client: httpx.Client, admin_headers: dict[str, str], live_app: RunningApp
) -> None:
    """A stored reason code is put in words per reader; an older version's Chinese words, and a
    text that is no code, are shown as stored; a key that cannot be decrypted says so per reader."""
    base = {**CHANNEL, "base_url": "https://example.com"}
    coded, old, retested, unreadable = (
        client.post("/api/admin/channels", json={**base, "name": name}, headers=admin_headers).json()["id"]
        for name in ("coded", "old", "retested", "unreadable")
    )
    with sqlite3.connect(live_app.db_path) as db:
        db.executemany(
            "UPDATE channels SET last_error = ? WHERE id = ?",
            [
                ("http_429:429", coded),
                ("HTTP 500: 上游服务器出错", old),
                ("key_undecryptable", retested),
            ],
        )
        db.execute("UPDATE channels SET api_key = 'not-a-fernet-token' WHERE id = ?", (unreadable,))

    def shown(headers: dict[str, str]) -> dict[int, tuple[str | None, str]]:
        listing = client.get("/api/admin/channels", headers=headers).json()
        return {item["id"]: (item["last_error"], item["api_key_masked"]) for item in listing}

    english, chinese = shown({**admin_headers, **EN}), shown(admin_headers)
    assert english[coded][0] == "HTTP 429: The upstream is rate limiting or overloaded"
    assert chinese[coded][0] == "HTTP 429: 上游限流或过载"
    assert english[old][0] == chinese[old][0] == "HTTP 500: 上游服务器出错"
    assert english[retested][0] is not None and english[retested][0].startswith(
        "key_undecryptable: The API Key cannot be decrypted"
    )
    assert chinese[retested][0] is not None and chinese[retested][0].startswith(
        "key_undecryptable: API Key 无法解密"
    )
    assert english[unreadable] == (None, "(cannot be decrypted)")
    assert chinese[unreadable] == (None, "（无法解密）")
    paged = client.get("/api/admin/channels", params={"q": "coded"}, headers={**admin_headers, **EN}).json()[
        "items"
    ]
    assert [item["last_error"] for item in paged if item["id"] == coded] == [english[coded][0]]


def test_a_body_limit_in_bytes_in_both_languages(client: httpx.Client) -> None:
    assert too_large(2000).text("en") == "The request body is too large (limit 2000 bytes)"
    assert too_large(2000).text() == "请求体过大（上限 2000 字节）"
    assert too_large(2048).text("en") == "The request body is too large (limit 2 KiB)"
    refused = client.post("/api/auth/register", content=b" " * (1024 * 1024 + 1), headers=EN)
    assert refused.status_code == 413
    assert refused.json()["error"]["message"] == "The request body is too large (limit 1 MiB)"
