"""The cap on request bodies, for every HTTP route (the API, the pages, NiceGUI's own endpoints and
uploads), as one plain ASGI layer in front of everything (docs/behaviour.md#request-limits).

A declared ``Content-Length`` over the cap is refused before a byte of the body is read. A body without
one (``Transfer-Encoding: chunked``) is counted as the app reads it: the read that crosses the cap
raises :class:`PayloadTooLarge` in the app, and this layer answers 413 in place of whatever the app
answers then. Either way the answer says ``Connection: close``: the rest of the body is never read, so
the connection cannot carry another request.

A body with a ``Content-Length`` within the cap passes unwrapped (the HTTP parser delivers exactly that
many bytes), so the hot path pays one scan of the request's headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import scope_language
from app.api.headers import COMMON_RAW
from services.errors import PayloadTooLarge
from services.i18n import FALLBACK

_CLOSE = (b"connection", b"close")


def describe_size(size: int) -> str | None:
    """A whole number of GiB, MiB or KiB (the same words in every language), else None."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return None


def too_large(limit: int) -> PayloadTooLarge:
    described = describe_size(limit)
    if described is None:  # a number of bytes: the unit's word is in the message's language
        return PayloadTooLarge("errors.body_too_large_bytes", count=limit)
    return PayloadTooLarge("errors.body_too_large", limit=described)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses such a request before it reaches an app
    return None


async def refuse(send: Send, limit: int, language: str = FALLBACK) -> None:
    """The 413 answer of docs/api.md#errors, closing the connection after it. This layer is outside the
    security headers' (``app.api.headers``), so it adds them itself."""
    body = json.dumps(too_large(limit).body(language), ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        _CLOSE,
        *COMMON_RAW,
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# NiceGUI's upload route, ``/_nicegui/client/{client}/upload/{element}``: the chat page's image attachments
UPLOAD_PATH = re.compile(r"/_nicegui/client/[^/]+/upload/[^/]+")


class BodyLimit:
    """``limits`` maps exact paths to their own cap (the chat routes); uploads take ``upload_limit``
    (one image attachment and its form around it); every other path gets ``default``."""

    def __init__(
        self, app: ASGIApp, *, default: int, limits: Mapping[str, int], upload_limit: int | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits)
        self.upload_limit = default if upload_limit is None else upload_limit

    def limit_for(self, path: str) -> int:
        if path in self.limits:
            return self.limits[path]
        if UPLOAD_PATH.fullmatch(path):
            return max(self.upload_limit, self.default)
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is None:
            await _CountedBody(self.app, limit)(scope, receive, send)
        elif declared > limit:
            await refuse(send, limit, scope_language(scope))
        else:
            await self.app(scope, receive, send)


class _CountedBody:
    """One request whose body has no declared length, counted as the app reads it.

    Once the cap is crossed the answer is the 413, whatever the app makes of the refused read (FastAPI
    turns any failure while it parses a body into a 400, engine.io into its own error): the app's
    answer is dropped. Only an app that started answering before it read too much keeps its answer.
    """

    __slots__ = ("answered", "app", "limit", "over", "received", "started")

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.received = 0
        self.over = False
        self.started = False  # the app's answer went out
        self.answered = False  # the 413 went out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            if self.over:  # an app that reads on after the refusal gets it again
                raise too_large(self.limit)
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.over = True
                    raise too_large(self.limit)
            return message

        async def guarded_send(message: Message) -> None:
            if self.over and not self.started:
                if not self.answered:
                    self.answered = True
                    await refuse(send, self.limit, scope_language(scope))
                return
            self.started = self.started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except PayloadTooLarge:
            if not self.over or self.started:
                raise
        if self.over and not self.started and not self.answered:
            self.answered = True
            await refuse(send, self.limit, scope_language(scope))
