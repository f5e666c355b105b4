"""Security headers and the Content-Security-Policy (app/api/headers.py), on the real app and on its own."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app.api.headers import SecurityHeaders
from tests.helpers import RunningApp

COMMON = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def policy(response: httpx.Response) -> dict[str, list[str]]:
    text = response.headers["content-security-policy"]
    return {name: values for name, *values in (part.split() for part in text.split(";"))}


def check_nonce(response: httpx.Response) -> str:
    """Every <script> of the page carries the policy's nonce, and the policy allows no other inline script."""
    directives = policy(response)
    nonces = [value for value in directives["script-src"] if value.startswith("'nonce-")]
    assert len(nonces) == 1, directives["script-src"]
    nonce = nonces[0][len("'nonce-") : -1]
    scripts = re.findall(r"<script\b[^>]*>", response.text, flags=re.IGNORECASE)
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
    assert "'unsafe-inline'" not in directives["script-src"]
    return nonce


def test_pages_carry_the_policy_with_a_fresh_nonce(client: httpx.Client) -> None:
    first, second = client.get("/"), client.get("/")
    for response in (first, second):
        assert response.status_code == 200
        assert response.headers.items() >= COMMON.items()
    assert check_nonce(first) != check_nonce(second)
    directives = policy(first)
    assert directives["script-src"][0] == "'self'" and "'unsafe-eval'" in directives["script-src"]
    assert directives["default-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["img-src"] == ["'self'", "data:", "blob:"]
    assert directives["connect-src"] == ["'self'"]
    for name in ("object-src", "frame-src", "base-uri", "form-action", "frame-ancestors"):
        assert directives[name] == ["'none'"], name
    every_source = {value for values in directives.values() for value in values}
    assert not {value for value in every_source if "://" in value or value in ("*", "http:", "https:")}


@pytest.mark.parametrize("path", ["/login", "/register", "/admin/login", "/no-such-page"])
def test_every_page_and_the_not_found_page_carry_it(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers.items() >= COMMON.items()
    check_nonce(response)


def test_docs_need_no_eval(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers.items() >= COMMON.items()
    check_nonce(response)
    assert "'unsafe-eval'" not in policy(response)["script-src"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/health", None),
        ("GET", "/openapi.json", None),
        ("GET", "/api/no-such-route", None),
        ("POST", "/api/chat/completions", {"model": "no-such-model", "messages": []}),  # the direct route
        ("GET", "/_docs-assets/swagger-ui-bundle.js", None),
    ],
)
def test_api_answers_are_nosniff(client: httpx.Client, method: str, path: str, body: object) -> None:
    response = client.request(method, path, json=body)
    assert response.headers.items() >= COMMON.items(), (path, response.status_code)
    assert "content-security-policy" not in response.headers


def test_static_files_of_the_pages_are_nosniff(client: httpx.Client) -> None:
    page = client.get("/").text
    script = re.search(r'src="(/_nicegui/[^"]+/static/nicegui\.js)"', page)
    assert script is not None
    response = client.get(script.group(1))
    assert response.status_code == 200 and response.headers.items() >= COMMON.items()


def test_the_blocked_page_carries_it(
    limited_app: RunningApp, http: httpx.Client, admin: dict[str, str]
) -> None:
    created = http.post("/api/admin/blocked-ips", headers=admin, json={"ip_address": "192.0.2.77"})
    assert created.status_code == 201, created.text
    try:
        response = http.get("/", headers={"X-Forwarded-For": "192.0.2.77"})
        assert response.status_code == 403 and "访问受限" in response.text
        assert response.headers.items() >= COMMON.items()
        assert policy(response)["frame-ancestors"] == ["'none'"]
    finally:
        http.delete(f"/api/admin/blocked-ips/{created.json()['id']}", headers=admin)


# ---- the middleware on its own ------------------------------------------------------------------------
def _app() -> Starlette:
    async def page(request: Request) -> Response:
        return HTMLResponse('<html><script src="/a.js"></script><SCRIPT>go()</SCRIPT><scripts-x></html>')

    async def chunked_page(request: Request) -> Response:
        async def parts():  # type: ignore[no-untyped-def]
            yield b"<p>one</p>"
            yield b"<script>two()</script>"

        return StreamingResponse(parts(), media_type="text/html")

    async def stream(request: Request) -> Response:
        async def parts():  # type: ignore[no-untyped-def]
            for i in range(3):
                yield f"data: {i}\n\n".encode()

        return StreamingResponse(parts(), media_type="text/event-stream")

    routes = [Route("/page", page), Route("/chunked", chunked_page), Route("/stream", stream)]
    return Starlette(routes=routes)


def test_html_is_given_the_nonce_and_its_new_length() -> None:
    with TestClient(SecurityHeaders(_app(), allow_eval=False)) as test:
        response = test.get("/page")
        nonce = re.search(r"'nonce-([^']+)'", response.headers["content-security-policy"])
        assert nonce is not None
        assert response.text == (
            f'<html><script nonce="{nonce.group(1)}" src="/a.js"></script>'
            f'<script nonce="{nonce.group(1)}">go()</SCRIPT><scripts-x></html>'
        )
        assert int(response.headers["content-length"]) == len(response.content)
        chunked = test.get("/chunked")
        assert "nonce=" in chunked.text and chunked.text.startswith("<p>one</p>")
        head = test.head("/page")
        assert "content-security-policy" in head.headers and head.content == b""


def test_other_responses_pass_through_with_the_common_headers() -> None:
    with TestClient(SecurityHeaders(_app(), allow_eval=True)) as test:
        response = test.get("/stream")
        assert response.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert response.headers.items() >= COMMON.items()
        assert "content-security-policy" not in response.headers
