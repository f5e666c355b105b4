"""The request gate, as plain ASGI middleware (no buffering of streams): it decides the client IP once
(TRUSTED_PROXIES) for the API and the pages alike, and turns blocked IPs away from the user side."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import scope_language
from app.state import AppState
from services.client_ip import SCOPE_KEY, Network, decide_client_ip
from services.errors import DomainError, IPBlocked, StateUnavailable
from services.i18n import translate

USER_SIDE_EXACT = frozenset({"/", "/login", "/register", "/api/models", "/api/v1/models", "/v1/models"})
USER_SIDE_PREFIXES = ("/api/chat/", "/api/auth/", "/api/v1/chat/", "/v1/chat/")
NEVER_BLOCKED = frozenset({"/api/auth/admin/login"})

_BLOCKED_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;display:flex;min-height:100vh;margin:0;align-items:center;
justify-content:center;background:#f6f7fb;color:#1f2937}}main{{max-width:28rem;padding:2rem;text-align:center}}
h1{{font-size:1.4rem}}p{{color:#6b7280;line-height:1.6}}</style></head><body><main><h1>{title}</h1>
<p>{message}</p><p>{hint}</p></main></body></html>"""


def is_user_side(path: str) -> bool:
    if path in NEVER_BLOCKED:
        return False
    return path in USER_SIDE_EXACT or path.startswith(USER_SIDE_PREFIXES)


class RequestGate:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state
        self._trusted: tuple[str, list[Network]] | None = None  # TRUSTED_PROXIES, and as parsed

    def _trusted_networks(self) -> list[Network]:
        """The parsed TRUSTED_PROXIES, parsed again only when the text changes (parsing them per request
        cost about 0.1 ms of each API call)."""
        text = self.state.settings.trusted_proxies
        if self._trusted is None or self._trusted[0] != text:
            self._trusted = (text, self.state.settings.trusted_proxy_networks)
        return self._trusted[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        ip = decide_client_ip(scope, self._trusted_networks())
        scope.setdefault("state", {})[SCOPE_KEY] = ip
        path = scope.get("path", "")
        if scope["type"] == "http" and is_user_side(path):
            block_list = self.state.block_list
            try:
                await block_list.refresher.until_fresh()  # never decided on rules older than the period
            except StateUnavailable as exc:
                await self._refuse(path, send, exc, scope_language(scope))
                return
            rule = block_list.match(ip)
            if rule is not None:
                block_list.record_attempt(ip=ip, path=path, rule=rule)
                await self._refuse(path, send, IPBlocked(), scope_language(scope))
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(path: str, send: Send, error: DomainError, language: str) -> None:
        if path.startswith(("/api/", "/v1/")):
            body, kind = json.dumps(error.body(language), ensure_ascii=False).encode(), b"application/json"
        else:
            blocked = isinstance(error, IPBlocked)
            page = _BLOCKED_PAGE.format(
                lang=language,
                title=translate("errors.page_blocked" if blocked else "errors.page_unavailable", language),
                message=error.text(language),
                hint=translate("errors.hint_blocked" if blocked else "errors.hint_unavailable", language),
            )
            body, kind = page.encode(), b"text/html; charset=utf-8"
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        headers += [(name.lower().encode(), value.encode()) for name, value in error.headers().items()]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
