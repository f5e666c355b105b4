"""Every HTTP request observed once, as the outermost plain ASGI layer (streams pass through unbuffered):
its request id (taken from a sane ``X-Request-ID`` or made here, returned on the response and set for
the log lines written while it runs), its count and duration in the metrics by route template, and with
``LOG_FORMAT=json`` its access-log line (docs/operations.md#logs).

The access line names the route template, never the raw path or query (which may carry anything), and
no header: no token, key or password reaches it. WebSockets (the pages' connection) pass untouched.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.log_format import request_id
from services.client_ip import client_ip
from services.metrics import Metrics

HEADER = b"x-request-id"
MAX_ID_LENGTH = 128
_SANE_ID = re.compile(rb"[A-Za-z0-9._-]{1,%d}" % MAX_ID_LENGTH)
USER_KEY = "user_id"  # in the scope's ``state``: the caller's user id, once a token named one
UNMATCHED = "unmatched"  # the route label of a request that matched no route (a 404, bounded)
access_log = logging.getLogger("pyaichat.access")


def incoming_id(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The client's (or proxy's) ``X-Request-ID`` when it is 1 to 128 of ``A-Za-z0-9._-``; else None."""
    for name, value in headers:
        if name == HEADER:
            return value if _SANE_ID.fullmatch(value) else None
    return None


def new_id() -> bytes:
    return os.urandom(16).hex().encode()


def note_user(scope: Scope, user_id: int | None) -> None:
    """The caller's user id, for the request's access line (set where a token is resolved)."""
    if user_id is not None:
        scope.setdefault("state", {})[USER_KEY] = user_id


def with_prefix(path: str, route_path: str) -> str:
    """The full template of a route matched by ``path``: FastAPI keeps a route of an included router
    with its own path (``/health``), without the routers' prefixes (``/api``); those are the leading
    segments of the path that the route's template does not cover. A template with a ``{…:path}``
    parameter (whose value may hold slashes) is taken as it is: its prefix cannot be told apart."""
    if ":path}" in route_path:
        return route_path
    extra = path.count("/") - route_path.count("/")
    if extra <= 0:
        return route_path
    return "/".join(path.split("/", extra + 1)[: extra + 1]) + route_path


def route_template(scope: Mapping[str, Any], fixed: frozenset[str]) -> str:
    """The route the request matched, as its template (bounded), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return with_prefix(scope["path"], path)
    if scope["path"] in fixed:  # the chat routes served ahead of any router
        return str(scope["path"])
    mounted = scope.get("root_path")  # a mounted app (static files, the socket.io polling)
    if isinstance(mounted, str) and mounted:
        return f"{mounted}/*"
    return UNMATCHED


class RequestObserver:
    """``fixed``: paths that are their own template (the direct routes); ``log_access``: write the
    access line (``LOG_FORMAT=json``)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, fixed: Iterable[str], log_access: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.fixed = frozenset(fixed)
        self.log_access = log_access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = incoming_id(scope["headers"]) or new_id()
        text = rid.decode("ascii")
        token = request_id.set(text)
        id_header = (HEADER, rid)
        status = 500  # when the app fails without answering, the server answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope, self.fixed)
            self.metrics.count_request(route, scope["method"], status, seconds)
            if self.log_access:
                self._log(scope, route, status, seconds)
            request_id.reset(token)

    @staticmethod
    def _log(scope: Scope, route: str, status: int, seconds: float) -> None:
        state = scope.get("state") or {}
        access_log.info(
            "%s %s %d",
            scope["method"],
            route,
            status,
            extra={
                "route": route,
                "method": scope["method"],
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "client_ip": client_ip(scope),
                "user_id": state.get(USER_KEY),
            },
        )


def refusal_header() -> tuple[bytes, bytes]:
    """An ``X-Request-ID`` header for an answer written below the ASGI layers (app/http_protocol.py)."""
    return HEADER, new_id()
