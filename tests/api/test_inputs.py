"""Bad input is a 4xx with a readable message, never a 500: ids, filters, pages, methods."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("row_id", ["0", "-1", str(2**63), "5781197507493139316736", "true", "1.5"])
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("PUT", "/api/admin/channels/{}"),
        ("DELETE", "/api/admin/channels/{}"),
        ("POST", "/api/admin/channels/{}/test"),
        ("DELETE", "/api/admin/blocked-ips/{}"),
    ],
)
def test_ids_outside_the_row_range_are_422(
    client: httpx.Client, admin_headers: dict[str, str], method: str, template: str, row_id: str
) -> None:
    body = {"name": "x"} if method == "PUT" else None
    response = client.request(method, template.format(row_id), headers=admin_headers, json=body)
    assert response.status_code == 422, response.text
    assert "channel_id" in response.text or "rule_id" in response.text


def test_the_largest_row_id_is_a_plain_404(client: httpx.Client, admin_headers: dict[str, str]) -> None:
    response = client.delete(f"/api/admin/channels/{2**63 - 1}", headers=admin_headers)
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"


_BAD_FILTERS: list[tuple[dict[str, str], str | None]] = [
    ({"user": "²"}, None),  # not an id: looked up as an e-mail, no rows
    ({"user": str(2**64)}, "用户 id"),
    ({"user": "a\x00b"}, "控制字符"),
    ({"model": "m" * 300}, "太长"),
    ({"end": "9999-12-31"}, "时间须在"),
    ({"start": "0001-01-01"}, "时间"),
    ({"start": "2026-13-01"}, "时间格式不正确"),
    ({"end": "\U0001f3fb"}, "时间格式不正确"),
]
_BAD_PAGES: list[tuple[dict[str, str], str | None]] = [({"page": str(2**63)}, None), ({"page": "0"}, None)]


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [("/api/admin/logs", p, f) for p, f in _BAD_FILTERS + _BAD_PAGES]
    + [("/api/admin/logs/export", p, f) for p, f in _BAD_FILTERS],  # the export has no pages
)
def test_log_filters_out_of_range_are_422_before_any_byte(
    client: httpx.Client,
    admin_headers: dict[str, str],
    path: str,
    params: dict[str, str],
    fragment: str | None,
) -> None:
    response = client.get(path, params=params, headers=admin_headers)
    if params == {"user": "²"}:
        assert response.status_code == 200
        return
    assert response.status_code == 422, response.text
    assert "text/csv" not in response.headers.get("content-type", "")
    if fragment:
        assert fragment in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/health", "GET"),
        ("GET", "/api/chat/completions", "POST"),
        ("POST", "/api/admin/config", "GET, PUT"),
        ("PATCH", "/api/admin/channels/1", "DELETE, PUT"),
        ("PUT", "/api/auth/login", "POST"),
    ],
)
def test_a_known_path_with_another_method_is_405(
    client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.json()["error"]["type"] == "method_not_allowed"


def test_an_unknown_path_is_still_404(client: httpx.Client) -> None:
    response = client.put("/api/no/such/thing")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "main\x00"), ("model_id", "gpt\x1b[31m"), ("base_url", "https://api.example.com/v1\x00")],
)
def test_control_characters_in_a_channel_are_422(
    client: httpx.Client, admin_headers: dict[str, str], field: str, value: str
) -> None:
    body = {"name": "c", "base_url": "https://api.example.com/v1", "api_key": "sk-x", "model_id": "m"}
    response = client.post("/api/admin/channels", json={**body, field: value}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert "控制字符" in response.text or "格式不正确" in response.text


def test_control_characters_in_a_block_reason_are_422(
    client: httpx.Client, admin_headers: dict[str, str]
) -> None:
    response = client.post(
        "/api/admin/blocked-ips",
        json={"ip_address": "198.18.0.1", "reason": "spam\r\nX-Injected: 1"},
        headers=admin_headers,
    )
    assert response.status_code == 422 and "控制字符" in response.json()["error"]["message"]
