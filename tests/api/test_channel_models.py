"""Channels with several models (issue 17 point 4): models and their mapping, priority and weight,
extra headers and the proxy setting (write-only), and the refusals that change nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.chat_helpers import add_channel, chat_body, unique_model
from tests.upstream_server import UpstreamServer


def _channel(client: httpx.Client, headers: dict, channel_id: int) -> dict:
    listing = client.get("/api/admin/channels", headers=headers).json()
    return next(item for item in listing if item["id"] == channel_id)


def _models_sent(upstream: UpstreamServer, *names: str) -> list[str]:
    return [item.body.get("model", "") for item in upstream.received if item.body.get("model") in names]


def test_one_channel_serves_several_models_by_public_name(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    plain, aliased = unique_model("plain"), unique_model("aliased")
    upstream_id = f"vendor/{aliased}-2025"
    created = add_channel(
        client,
        admin_headers,
        base_url=upstream.base_url("ok"),
        model="",
        name="a channel name users never see",
        model_id=None,
        models=[plain, aliased],
        model_map={aliased: upstream_id},
    )
    assert created["models"] == [plain, aliased] and created["model_id"] == plain
    assert created["model_map"] == {aliased: upstream_id}
    assert created["call_url"] == upstream.base_url("ok") + "/chat/completions"

    listed = client.get("/api/models").json()["data"]
    assert {plain, aliased} <= {item["id"] for item in listed}
    summaries = {item["id"]: item["name"] for item in client.get("/api/chat/models").json()}
    assert summaries[plain] == plain and summaries[aliased] == aliased, "never the channel's name"

    for model in (plain, aliased):
        answer = client.post("/api/chat/completions", json=chat_body(model, stream=False))
        assert answer.status_code == 200, answer.text
    sent = [item.body["model"] for item in upstream.requests_for("ok")[-2:]]
    assert sent == [plain, upstream_id], "the mapped id goes upstream"


def test_model_id_is_the_one_model_shorthand(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    model = unique_model()
    created = add_channel(client, admin_headers, base_url=upstream.base_url(), model=model)
    assert created["models"] == [model] and created["model_id"] == model
    second = unique_model()
    changed = client.put(
        f"/api/admin/channels/{created['id']}", json={"models": [model, second]}, headers=admin_headers
    ).json()
    assert changed["models"] == [model, second] and changed["model_id"] == model
    renamed = client.put(
        f"/api/admin/channels/{created['id']}", json={"name": "renamed"}, headers=admin_headers
    ).json()
    assert renamed["models"] == [model, second], "a PUT without models keeps them"


def test_higher_priority_first_and_equal_priority_shares_by_weight(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    model = unique_model("prio")
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model, priority=10, weight=3)
    add_channel(
        client, admin_headers, base_url=upstream.base_url("nousage"), model=model, priority=10, weight=1
    )
    add_channel(client, admin_headers, base_url=upstream.base_url("cjk"), model=model, priority=0)
    for _ in range(8):
        assert client.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code == 200
    scenarios = [item.scenario for item in upstream.received if item.body.get("model") == model]
    assert scenarios.count("ok") == 6 and scenarios.count("nousage") == 2 and "cjk" not in scenarios


def test_lower_priority_takes_over_when_the_higher_fails(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    model = unique_model("failover")
    add_channel(client, admin_headers, base_url=upstream.base_url("error500"), model=model, priority=5)
    add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model, priority=1)
    assert client.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code == 200
    scenarios = [item.scenario for item in upstream.received if item.body.get("model") == model]
    assert scenarios == ["error500", "ok"]


def test_extra_headers_are_sent_and_never_shown(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    model = unique_model("headers")
    secret = "azure-secret-header-value-123456"
    body = {
        "name": "azure-like",
        "base_url": upstream.base_url("ok"),
        "api_key": "sk-headers-test-1234",
        "models": [model],
        "headers": {"api-key": secret, "HTTP-Referer": "https://chat.example"},
    }
    response = client.post("/api/admin/channels", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert secret not in str(created) and set(created["headers"]) == {"api-key", "HTTP-Referer"}
    assert client.post("/api/chat/completions", json=chat_body(model, stream=True)).status_code == 200
    received = [item for item in upstream.received if item.body.get("model") == model][-1]
    assert received.headers["api-key"] == secret
    assert received.headers["http-referer"] == "https://chat.example"

    # null keeps a stored value; a name left out is removed
    kept = client.put(
        f"/api/admin/channels/{created['id']}", json={"headers": {"api-key": None}}, headers=admin_headers
    )
    assert kept.status_code == 200 and set(kept.json()["headers"]) == {"api-key"}
    assert secret not in kept.text
    assert secret not in client.get("/api/admin/channels", headers=admin_headers).text
    client.post("/api/chat/completions", json=chat_body(model, stream=False))
    received = [item for item in upstream.received if item.body.get("model") == model][-1]
    assert received.headers["api-key"] == secret and "http-referer" not in received.headers


def test_proxy_is_write_only(client: httpx.Client, admin_headers: dict, upstream: UpstreamServer) -> None:
    password = "proxy-password-987"
    created = add_channel(client, admin_headers, base_url=upstream.base_url(), model=unique_model())
    assert created["proxy_set"] is False
    changed = client.put(
        f"/api/admin/channels/{created['id']}",
        json={"proxy": f"socks5h://user:{password}@127.0.0.1:1080"},
        headers=admin_headers,
    )
    assert changed.status_code == 200 and changed.json()["proxy_set"] is True
    assert password not in changed.text and "1080" not in changed.text
    direct = client.put(f"/api/admin/channels/{created['id']}", json={"proxy": ""}, headers=admin_headers)
    assert direct.json()["proxy_set"] is True and direct.json()["proxy_direct"] is True
    environment = client.put(
        f"/api/admin/channels/{created['id']}", json={"proxy": None}, headers=admin_headers
    )
    assert environment.json()["proxy_set"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"models": ["a", "a"]}, "models"),
        ({"models": ["a", " "]}, "models"),
        ({"models": []}, "models"),
        ({"models": ["a"], "model_map": {"b": "x"}}, "model_map"),
        ({"models": ["a"], "model_map": {"a": ""}}, "model_map"),
        ({"models": ["a"], "model_map": {"a": "  "}}, "model_map"),
        ({"headers": {"bad name": "v"}}, "headers"),
        ({"headers": {"X-Ok": "line\r\nInjected: 1"}}, "headers"),
        ({"headers": {"Authorization": "Bearer other"}}, "headers"),
        ({"proxy": "ftp://127.0.0.1:21"}, "proxy"),
        ({"proxy": "127.0.0.1:8080"}, "proxy"),
        ({"weight": 0}, "weight"),
        ({"auto_pause_after": -1}, "auto_pause_after"),
        ({"models": ["a"], "model_id": "b"}, "model_id"),
    ],
)
def test_bad_fields_are_422_naming_the_field_and_change_nothing(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer, body: dict, field: str
) -> None:
    model = unique_model()
    created = add_channel(client, admin_headers, base_url=upstream.base_url(), model=model)
    before = _channel(client, admin_headers, created["id"])
    response = client.put(f"/api/admin/channels/{created['id']}", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    named = error["message"].startswith(field) or any(
        field in [str(part) for part in item["loc"]] for item in error.get("details", [])
    )
    assert named, error
    assert "Injected" not in response.text
    assert _channel(client, admin_headers, created["id"]) == before

    fresh = {"name": "new", "base_url": upstream.base_url(), "api_key": "sk-new-1234567", "models": ["m"]}
    created_again = client.post("/api/admin/channels", json={**fresh, **body}, headers=admin_headers)
    assert created_again.status_code == 422, created_again.text


def test_every_bad_field_is_reported_at_once(client: httpx.Client, admin_headers: dict) -> None:
    body = {
        "name": "x",
        "base_url": "ftp://nowhere",
        "api_key": "sk-1234567890",
        "models": ["a", "a"],
        "headers": {"bad name": "v"},
        "proxy": "gopher://x",
    }
    response = client.post("/api/admin/channels", json=body, headers=admin_headers)
    assert response.status_code == 422
    fields = {item["loc"][-1] for item in response.json()["error"]["details"]}
    assert {"base_url", "models", "headers", "proxy"} <= fields
