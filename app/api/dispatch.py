"""Requests for the API go straight to the API app, ahead of the UI's middleware.

NiceGUI wraps its app in several ``BaseHTTPMiddleware`` layers (session tracking, cache headers,
prefix redirects) and GZip; each costs an extra task and stream per request. The REST API needs none
of them, so the API is its own FastAPI app and the outermost ASGI layer sends ``/api``, ``/docs`` and
``/openapi.json`` to it; everything else (pages, WebSocket, static files, lifespan) goes through
NiceGUI's stack as before. Layers that every request must pass (the body cap) wrap the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.docs import ASSETS_PATH

API_PREFIXES = ("/api/", "/v1/", f"{ASSETS_PATH}/")  # /v1: the OpenAI aliases (docs/api.md)
API_EXACT = frozenset({"/api", "/docs", "/openapi.json", "/metrics"})  # /metrics: app/api/metrics.py
_ORIGINAL = "_pyaichat_original_build_middleware_stack"


def is_api_path(path: str) -> bool:
    return path in API_EXACT or path.startswith(API_PREFIXES)


class ApiFirst:
    """``direct`` maps ``(method, path)`` to an app that serves it without the API app's own stack
    (``POST /api/chat/completions``, the hot path); other API paths go to ``api``, the rest to ``ui``."""

    def __init__(self, ui: ASGIApp, api: ASGIApp, direct: Mapping[tuple[str, str], ASGIApp]) -> None:
        self.ui = ui
        self.api = api
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            direct = self.direct.get((scope.get("method", ""), path))
            if direct is not None:
                await direct(scope, receive, send)
                return
            if is_api_path(path):
                await self.api(scope, receive, send)
                return
        await self.ui(scope, receive, send)


def route_api_first(
    web_app: FastAPI,
    api_app: FastAPI,
    direct: Mapping[tuple[str, str], ASGIApp] | None = None,
    outer: Callable[[ASGIApp], ASGIApp] | None = None,
) -> None:
    """Make ``web_app`` hand API paths to ``api_app`` before its own middleware stack; ``outer`` wraps
    the dispatcher (every request, API and UI, passes it)."""
    original: Callable[[], ASGIApp] = getattr(web_app, _ORIGINAL, web_app.build_middleware_stack)
    setattr(web_app, _ORIGINAL, original)

    def build() -> ASGIApp:
        dispatcher = ApiFirst(ui=original(), api=api_app, direct=direct or {})
        return dispatcher if outer is None else outer(dispatcher)

    web_app.build_middleware_stack = build  # type: ignore[method-assign]
    web_app.middleware_stack = None
