"""NiceGUI's WebSocket (socket.io under ``/_nicegui_ws/``) answers only pages of this site.

Browsers send ``Origin`` with every WebSocket handshake and every cross-origin request, and a page of
another site can open a WebSocket to any host (the same-origin policy does not cover them). A request
whose ``Origin`` is not this site is refused before socket.io sees it: 403 for the HTTP transport, a
closed handshake for the WebSocket. A request without ``Origin`` (no browser) is let through.

"This site" is the origin the browser asked for: the request's scheme and ``Host`` (and ``https`` with
that ``Host`` when the request came in over plain HTTP: a proxy in front ended TLS, and no other page
can have that origin), and, when the TCP peer is a trusted proxy (``TRUSTED_PROXIES``), the scheme and
host it forwarded (``X-Forwarded-Proto``, ``X-Forwarded-Host``); plus the origins listed in
``UI_ORIGINS``, for a proxy that rewrites ``Host`` and sends no ``X-Forwarded-Host``. A plain-HTTP
origin for a request that came in over TLS is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from services.client_ip import Network, peer_is_trusted_proxy

SOCKET_PREFIX = "/_nicegui_ws/"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def normalize_origin(text: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None when it is not one."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = _SCHEMES.get(parts.scheme.lower())
    host = (parts.hostname or "").lower()
    if scheme is None or not host or parts.path not in ("", "/") or parts.query or parts.username:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _first(value: str | None) -> str | None:
    return (value.split(",")[0].strip() or None) if value else None


def site_origins(scope: Scope, trusted: Sequence[Network]) -> set[str]:
    """The origins a page of this request's own site has."""
    scheme = _SCHEMES.get(str(scope.get("scheme", "http")), "http")
    host = _header(scope, b"host")
    candidates = [f"{scheme}://{host}", f"https://{host}"] if host else []
    if peer_is_trusted_proxy(scope, trusted):
        forwarded_scheme = _first(_header(scope, b"x-forwarded-proto")) or scheme
        forwarded_host = _first(_header(scope, b"x-forwarded-host")) or host
        if forwarded_host:
            candidates.append(f"{forwarded_scheme}://{forwarded_host}")
    return {origin for origin in map(normalize_origin, candidates) if origin is not None}


class SocketOriginCheck:
    def __init__(self, app: ASGIApp, *, trusted: Sequence[Network], allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted = trusted
        self.allowed = {origin for origin in map(normalize_origin, allowed) if origin is not None}

    def accepts(self, scope: Scope) -> bool:
        origin = _header(scope, b"origin")
        if origin is None:
            return True
        normalized = normalize_origin(origin)
        if normalized is None:  # "null" (a sandboxed frame, a file) and anything malformed
            return False
        return normalized in self.allowed or normalized in site_origins(scope, self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        guarded = kind == "websocket" or (kind == "http" and scope.get("path", "").startswith(SOCKET_PREFIX))
        if not guarded or self.accepts(scope):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accepting: the server answers 403
            return
        body = b"cross-origin requests to the UI's WebSocket are refused"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
