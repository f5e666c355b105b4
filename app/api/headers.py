"""Security headers on every response, as plain ASGI middleware (streams pass through unbuffered).

Every response gets ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
``Referrer-Policy: no-referrer``. An HTML response (a page, ``/docs``, the blocked page, an error
page) also gets a Content-Security-Policy with a fresh nonce, which is written into each of the page's
``<script>`` tags: the page is buffered (pages are small and sent whole), every other response is not.
Nothing a visitor or a model writes reaches a page's HTML as markup (NiceGUI escapes ``<`` in the
element data it embeds, and model output arrives later over the WebSocket), so each ``<script`` in the
HTML is the app's own.

The policy allows only this origin, and no inline script without the nonce. What it must allow, and
why (docs/behaviour.md#page-security-headers):

- ``script-src 'unsafe-eval'`` (pages only, not ``/docs``): NiceGUI compiles its components' Vue
  templates in the browser (``new Function``) and runs the JavaScript it sends as strings (event
  handlers such as Enter-to-send, ``run_javascript``) with ``eval``.
- ``style-src 'unsafe-inline'``: NiceGUI adds CSS by creating ``<style>`` elements from script
  (``ui.add_css``, ``ui.colors``), and Quasar and the page template use ``style`` attributes; none of
  them carries a nonce. (A nonce in ``style-src`` would switch ``'unsafe-inline'`` off.) Tailwind's CSS
  is a stylesheet of the app's, compiled ahead of time (``tests/tailwind_build.py``).
- ``img-src data: blob:``: Quasar's and Swagger UI's own icons.
"""

from __future__ import annotations

import re
import secrets

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
COMMON_RAW = [
    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in COMMON_HEADERS.items()
]
_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])", re.IGNORECASE)


def content_security_policy(nonce: str, *, allow_eval: bool) -> str:
    script = f"script-src 'self' 'nonce-{nonce}'" + (" 'unsafe-eval'" if allow_eval else "")
    return "; ".join(
        [
            "default-src 'self'",
            script,
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self'",
            "connect-src 'self'",  # the API, NiceGUI's WebSocket (CSP 3: 'self' covers ws:/wss: of this host)
            "media-src 'self'",
            "object-src 'none'",
            "frame-src 'none'",
            "worker-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def add_nonce(html: bytes, nonce: str) -> bytes:
    return _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode() + b'"', html)


class SecurityHeaders:
    """``allow_eval``: whether the pages behind it need ``'unsafe-eval'`` (NiceGUI's do, ``/docs`` not)."""

    def __init__(self, app: ASGIApp, *, allow_eval: bool) -> None:
        self.app = app
        self.allow_eval = allow_eval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None  # held back while an HTML body is collected
        body: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                # one pass over the raw headers (three ``setdefault`` and two lookups through
                # ``MutableHeaders`` walked the list five times on every response)
                raw = message["headers"] = list(message["headers"])
                names = set()
                content_type = b""
                for name, value in raw:
                    if name == b"content-type" and b"content-type" not in names:
                        content_type = value
                    names.add(name)
                raw += [header for header in COMMON_RAW if header[0] not in names]
                if content_type[:9].lower() == b"text/html":
                    if b"content-encoding" not in names:
                        start = message  # sent with the body, once the nonce is in it
                        return
                    # compressed before it got here (a layer out of order): its scripts cannot be given
                    # the nonce, so it gets the policy without one, which blocks them rather than nothing
                    headers = MutableHeaders(scope=message)
                    headers["Content-Security-Policy"] = self._policy(secrets.token_urlsafe(18))
                await send(message)
            elif start is not None and message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_page(start, b"".join(body), send)
            else:
                await send(message)

        await self.app(scope, receive, send_with_headers)

    def _policy(self, nonce: str) -> str:
        return content_security_policy(nonce, allow_eval=self.allow_eval)

    async def _send_page(self, start: Message, html: bytes, send: Send) -> None:
        nonce = secrets.token_urlsafe(18)
        headers = MutableHeaders(scope=start)
        headers["Content-Security-Policy"] = self._policy(nonce)
        if html:  # (a HEAD response has none, and keeps the length of the page it stands for)
            html = add_nonce(html, nonce)
            headers["Content-Length"] = str(len(html))
        await send(start)
        await send({"type": "http.response.body", "body": html})
