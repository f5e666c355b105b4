"""uvicorn's httptools protocol with the two guards it lacks: a deadline for each request head, and a
cap on its size (docs/behaviour.md#request-limits).

uvicorn times out only an idle keep-alive connection, and only after a response: a connection that
never completes its first request head (nothing sent, or a request line sent a byte at a time) is held
for ever, and with it a file descriptor, so a few hundred slow sockets exhaust ``nofile`` and nobody
else is served. Nor does the httptools parser bound a head: 190 MB of header lines grew the process by
as much. Here a connection whose request head is not complete ``header_timeout`` seconds after the
connection was made, the previous response was sent, or the request's first byte arrived is answered
408 and closed, and one whose head grows past ``MAX_HEAD_BYTES`` is answered 431 and closed. Bodies
are the business of the body cap (``app.api.body_limit``).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024  # request line and headers; nginx's default allows 4 × 8 KiB
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_pending = True  # a request head is awaited or arriving
        self._head_bytes = 0

    # ---- the deadline -------------------------------------------------------------------------
    def _arm(self) -> None:
        """Start the deadline unless one runs already (a head that began earlier keeps its own)."""
        self._head_pending = True
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        self._head_pending = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._head_pending:
            self._refuse(408, b"request head not received in time")

    def _refuse(self, status: int, message: bytes) -> None:
        """Answer ``status`` and close; a response under way (pipelining) is finished first instead."""
        self._disarm()
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # the connection closes once that response is out
            self.flow.pause_reading()
            return
        head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
        self.transport.write(
            head
            + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(message)
            + message
        )
        self.transport.close()

    # ---- uvicorn's protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_pending:  # every byte of this read belongs to a head not yet complete
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, b"request head too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        waiting = not self.pipeline  # else the next request's head is complete already
        super().on_response_complete()
        if waiting and not self.transport.is_closing():
            self._arm()


def guarded_protocol(header_timeout: float) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to hand uvicorn (``http=``), with this deadline for request heads."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"header_timeout": header_timeout})
