"""/api/admin/channels: CRUD, validation, keys encrypted at rest and masked everywhere."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.chat_helpers import add_channel, unique_model
from tests.helpers import RunningApp
from tests.upstream_server import UpstreamServer


def _database_bytes(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


def test_create_list_update_delete(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer, live_app: RunningApp
) -> None:
    model = unique_model()
    created = add_channel(
        client, admin_headers, base_url=upstream.base_url() + "/", model=model, rpm_limit=30
    )
    key = created["plain_key"]
    assert created["base_url"] == upstream.base_url(), "the trailing slash is dropped"
    assert created["api_key_masked"] == f"{key[:4]}…{key[-4:]}" and created["api_key_readable"] is True
    assert created["rpm_limit"] == 30 and created["is_enabled"] is True
    assert "api_key" not in created

    listing = client.get("/api/admin/channels", headers=admin_headers)
    assert listing.status_code == 200
    assert key not in listing.text
    assert any(item["id"] == created["id"] for item in listing.json())
    assert key.encode() not in _database_bytes(live_app.db_path), "the plain key must not be in the database"

    channel_id = created["id"]
    renamed = client.put(
        f"/api/admin/channels/{channel_id}",
        json={"name": "renamed", "is_enabled": False},
        headers=admin_headers,
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "renamed" and renamed.json()["is_enabled"] is False
    assert renamed.json()["api_key_masked"] == created["api_key_masked"], "a PUT without api_key keeps it"

    new_key = "sk-replaced-key-987654321"
    rekeyed = client.put(
        f"/api/admin/channels/{channel_id}", json={"api_key": new_key}, headers=admin_headers
    )
    assert rekeyed.json()["api_key_masked"] == "sk-r…4321"
    assert new_key not in rekeyed.text

    assert client.delete(f"/api/admin/channels/{channel_id}", headers=admin_headers).status_code == 204
    again = client.delete(f"/api/admin/channels/{channel_id}", headers=admin_headers)
    assert again.status_code == 404 and again.json()["error"]["type"] == "not_found"
    assert (
        client.put(f"/api/admin/channels/{channel_id}", json={"name": "x"}, headers=admin_headers).status_code
        == 404
    )


@pytest.mark.parametrize(
    "base_url",
    [
        "ftp://example.com/v1",
        "example.com/v1",
        "http://",
        "http://user:pw@example.com/v1",
        "https://example.com/v1#x",
        "javascript:alert(1)",
        "http://exa mple.com",
        "http://example.com:99999/v1",
    ],
)
def test_invalid_base_url_is_422(client: httpx.Client, admin_headers: dict, base_url: str) -> None:
    body = {"name": "bad", "base_url": base_url, "api_key": "sk-x", "model_id": "m"}
    response = client.post("/api/admin/channels", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "validation_error"


@pytest.mark.parametrize(
    "changes",
    [
        {"rpm_limit": 0},
        {"rpm_limit": -1},
        {"name": ""},
        {"name": "   "},
        {"model_id": ""},
        {"api_key": "a b"},
        {"api_key": "line\nbreak"},
        {"api_key": "中文"},
        {"rpm_limit": "many"},
    ],
)
def test_invalid_fields_are_422_and_nothing_changes(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer, changes: dict
) -> None:
    created = add_channel(client, admin_headers, base_url=upstream.base_url(), model=unique_model())
    response = client.put(f"/api/admin/channels/{created['id']}", json=changes, headers=admin_headers)
    assert response.status_code == 422, response.text
    after = next(
        c for c in client.get("/api/admin/channels", headers=admin_headers).json() if c["id"] == created["id"]
    )
    assert {k: after[k] for k in ("name", "model_id", "rpm_limit", "api_key_masked")} == {
        k: created[k] for k in ("name", "model_id", "rpm_limit", "api_key_masked")
    }


def test_admin_routes_refuse_others(client: httpx.Client, unique_email: str) -> None:
    assert client.get("/api/admin/channels").status_code == 401
    assert (
        client.post("/api/auth/register", json={"email": unique_email, "password": "password-1"}).status_code
        == 201
    )
    user_token = client.post("/api/auth/login", json={"email": unique_email, "password": "password-1"}).json()
    headers = {"Authorization": f"Bearer {user_token['access_token']}"}
    response = client.get("/api/admin/channels", headers=headers)
    assert response.status_code == 403 and response.json()["error"]["type"] == "forbidden"
    bad = client.get("/api/admin/channels", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401


def test_channel_test_button(client: httpx.Client, admin_headers: dict, upstream: UpstreamServer) -> None:
    good = add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=unique_model())
    result = client.post(f"/api/admin/channels/{good['id']}/test", headers=admin_headers).json()
    assert result["ok"] is True and isinstance(result["latency_ms"], int)
    received = upstream.requests_for("ok")[-1]
    assert received.headers["authorization"] == f"Bearer {good['plain_key']}"

    bad = add_channel(client, admin_headers, base_url=upstream.base_url("error401"), model=unique_model())
    result = client.post(f"/api/admin/channels/{bad['id']}/test", headers=admin_headers).json()
    assert result["ok"] is False and result["status_code"] == 401 and "401" in result["error"]
    assert bad["plain_key"] not in str(result)

    refused = add_channel(client, admin_headers, base_url="http://127.0.0.1:9/v1", model=unique_model())
    result = client.post(f"/api/admin/channels/{refused['id']}/test", headers=admin_headers).json()
    assert result["ok"] is False and "无法连接" in result["error"]
