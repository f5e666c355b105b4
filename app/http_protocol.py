"""uvicorn's httptools protocol with the guards it lacks: a deadline for each request head, a cap on its
size, and a least rate for a body (docs/behaviour.md#request-limits).

Why a subclass rather than configuration: uvicorn's own options do not cover it. ``timeout_keep_alive``
times out only an idle connection *after* a response; ``limit_concurrency`` answers 503 once a head is
complete, so it never sees a head that does not complete; ``h11_max_incomplete_event_size`` bounds a
head only in the h11 protocol (the slower one), and nothing bounds it in httptools. A connection that
never completes its first request head (nothing sent, or a request line sent a byte at a time) was held
for ever, and with it a file descriptor: 500 such sockets with ``nofile=1024`` denied service to
everyone else, and 190 MB of header lines grew the process by as much. The hook is kept to timers and
counters around uvicorn's parser callbacks; parsing, answering and keep-alive stay uvicorn's.

A connection whose request head is not complete ``header_timeout`` seconds after the connection was
made, the previous response was sent, or the request's first byte arrived is answered 408 and closed,
and one whose head grows past ``MAX_HEAD_BYTES`` is answered 431 and closed.

A body sent a byte now and then holds a connection (and the task reading it) just as well, so a body
must arrive at ``MIN_BODY_RATE`` on average after a grace of ``header_timeout`` (the rule of Apache's
mod_reqtimeout): a client sending at that rate or faster is never cut, a drip is closed after about
the grace. Time while the app is not reading (flow control holds the client back) does not count. The
size of a body is the business of the body cap (``app.api.body_limit``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from app.api.headers import COMMON_RAW
from app.api.observe import refusal_header

log = logging.getLogger("pyaichat")
MAX_HEAD_BYTES = 64 * 1024  # request line and headers; nginx's default allows 4 × 8 KiB
MIN_BODY_RATE = 1024  # bytes a second, on average over a body (Apache's default is 500)
_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


class _HeadWithBody:
    """The transport as one response cycle sees it: a response's head is held back until its first body
    bytes, so that both leave in one ``send`` (uvicorn writes them separately: two system calls, and
    on loopback two wake-ups of the client, the first only to read a head and wait again). A head is
    never held past the loop iteration it was written in, and only when body bytes must follow (a
    ``Content-Length`` above 0 or a chunked body, not a HEAD request): the response cannot complete
    without a write that sends it. Everything else is the transport's."""

    __slots__ = ("_cycle", "_head_seen", "_held", "_loop", "_transport")

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, cycle: RequestResponseCycle
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._cycle = cycle
        self._head_seen = False
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif not self._head_seen and self._cycle.response_started:  # the head (after any 100 Continue)
            self._head_seen = True
            cycle = self._cycle
            if cycle.scope["method"] != "HEAD" and (cycle.chunked_encoding or cycle.expected_content_length):
                self._held = data
                self._loop.call_soon(self._flush)
                return
        self._transport.write(data)

    def _flush(self) -> None:
        """The head of a body that did not start in the same iteration (a stream waiting upstream)."""
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _plain_headers(message: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """The headers of a plain-text answer that closes the connection: with the security headers and an
    ``X-Request-ID``, which the ASGI layers that add them to every other answer never see here."""
    return [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(message)),
        (b"connection", b"close"),
        *COMMON_RAW,
        refusal_header(),
        *extra,
    ]


def _plain_answer(status: int, message: bytes) -> bytes:
    head = b"".join(b"%s: %s\r\n" % pair for pair in _plain_headers(message))
    return b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (status, _REASONS[status], head, message)


async def _unavailable(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI app a request gets past ``max_connections`` (uvicorn's ``limit_concurrency`` rule, whose
    own answer lacks the usual headers): 503, try again in a second, the connection closed."""
    body = b"Service Unavailable"
    headers = _plain_headers(body, (b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout: ClassVar[float] = 10.0
    max_connections: ClassVar[int | None] = None  # open connections or requests under way; None: no cap

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_pending = True  # a request head is awaited or arriving
        self._head_bytes = 0
        self._in_body = False  # a request head is complete and its body is arriving
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_since = 0.0  # the body's deadline is this + header_timeout + bytes / MIN_BODY_RATE
        self._body_bytes = 0

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
        self.transport.write(_plain_answer(status, message))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse, with the headers every answer carries."""
        self._disarm()
        self.transport.write(_plain_answer(400, msg.encode("ascii", "replace")))
        self.transport.close()

    # ---- the body's least rate ----------------------------------------------------------------
    def _start_body_clock(self) -> None:
        self._body_since = self.loop.time()
        self._body_timer = self.loop.call_later(self.header_timeout, self._body_deadline)

    def _stop_body_clock(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_deadline(self) -> None:
        now = self.loop.time()
        cycle = self.cycle
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            self._body_since = now - self._body_bytes / MIN_BODY_RATE  # waiting on the app: a fresh grace
        deadline = self._body_since + self.header_timeout + self._body_bytes / MIN_BODY_RATE
        if now < deadline:
            self._body_timer = self.loop.call_later(deadline - now, self._body_deadline)
            return
        self._body_timer = None
        self.transport.close()  # the app reading the body sees the client gone

    # ---- uvicorn's protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_body_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_pending:  # every byte of this read belongs to a head not yet complete
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, b"request head too large")
        elif self._in_body and self._body_timer is None:  # a body began and is not complete in this read
            self._start_body_clock()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        cap = self.max_connections
        if cap is not None and (len(self.connections) >= cap or len(self.tasks) >= cap):
            log.warning("MAX_CONNECTIONS (%d) reached: a request was answered 503", cap)  # as uvicorn does
            self.app, app = _unavailable, self.app  # uvicorn starts (or queues) the request's app below
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()
        self._in_body = not self.parser.should_upgrade()  # an upgraded connection is not ours any more
        self._body_bytes = 0
        cycle = self.cycle  # the request's (an upgrade makes none: the previous one stays)
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = _HeadWithBody(self.transport, self.loop, cycle)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_bytes += len(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._stop_body_clock()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        waiting = not self.pipeline  # else the next request's head is complete already
        super().on_response_complete()
        if waiting and not self.transport.is_closing():
            self._arm()


def guarded_protocol(
    header_timeout: float, max_connections: int | None = None
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to hand uvicorn (``http=``), with this deadline for request heads and this cap
    on connections (uvicorn's ``limit_concurrency`` rule, answered with our headers)."""
    options = {"header_timeout": header_timeout, "max_connections": max_connections}
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), options)
