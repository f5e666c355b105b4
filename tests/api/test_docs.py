"""/docs, /openapi.json, /api/health and JSON 404s for unknown /api paths."""

from __future__ import annotations

import httpx
import pytest

API_ROUTES = {
    ("get", "/api/health"),
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/admin/login"),
    ("get", "/api/auth/me"),
    ("get", "/api/chat/models"),
    ("get", "/api/models"),
    ("post", "/api/chat/completions"),
    ("get", "/api/admin/channels"),
    ("post", "/api/admin/channels"),
    ("put", "/api/admin/channels/{channel_id}"),
    ("delete", "/api/admin/channels/{channel_id}"),
    ("post", "/api/admin/channels/{channel_id}/test"),
    ("get", "/api/admin/audit"),
}


def test_health(client: httpx.Client) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "not_used"}}


def test_openapi_lists_every_api_route_with_models(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    found = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert found >= API_ROUTES
    assert all(path.startswith("/api/") for _, path in found), "UI pages stay out of the API schema"
    for method, path in API_ROUTES:
        operation = schema["paths"][path][method]
        success = next(code for code in operation["responses"] if code.startswith("2"))
        if success != "204":
            assert "schema" in operation["responses"][success]["content"]["application/json"], (method, path)
        if method == "post" and not path.endswith("/test"):
            assert "requestBody" in operation, (method, path)
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_swagger_ui_is_served_without_a_cdn(client: httpx.Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    for asset in ("/_docs-assets/swagger-ui-bundle.js", "/_docs-assets/swagger-ui.css"):
        assert asset in page.text
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 10_000


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/api/nope", "/api/auth/nope", "/api/v2/chat/x"])
def test_unknown_api_path_is_json_404(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["type"] == "not_found"
