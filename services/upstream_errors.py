"""What an upstream call can fail with, each carrying its reason code (services/reasons.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UpstreamTimeouts:
    """Seconds. ``first_byte``: until a stream's first event (or a channel is skipped); ``idle``: the
    longest a stream may go without completing a line, and the whole wait for a non-streamed answer."""

    connect: float = 10.0
    first_byte: float = 60.0
    idle: float = 120.0


class UpstreamFailure(Exception):
    """A channel failed; ``reason`` is its code, ``detail`` a few words for the server log (an exception
    type or a status, never a body, a URL or a key).

    ``timed_out``: whether a deadline ran out, which makes the call log's ``status`` ``timeout`` rather
    than ``upstream_error``. It follows the code (``timeout_…``) unless given: a refused connection is
    ``timeout_connect`` (no connection could be made) without having timed out."""

    reason = "bad_stream"

    def __init__(
        self,
        reason: str | None = None,
        detail: str = "",
        *,
        status: int | None = None,
        timed_out: bool | None = None,
    ) -> None:
        if reason is not None:
            self.reason = reason
        self.detail = detail
        self.status = status  # the upstream's HTTP status, when it answered one
        self.timed_out = self.reason.startswith("timeout_") if timed_out is None else timed_out
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class UpstreamProtocolError(UpstreamFailure):
    """The upstream answered something that is not an OpenAI chat answer (or an error event)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("bad_stream", detail)


class AnswerTooLarge(UpstreamProtocolError):
    """A non-streamed answer, or one line of a stream, over ``MAX_UPSTREAM_BODY_BYTES``."""
