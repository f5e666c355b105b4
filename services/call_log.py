"""Who is calling, and the one log row each chat call leaves (:class:`CallLog` writes it exactly once)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.models import utcnow
from services.logs import CallRecord, LogWriter
from services.open_calls import OpenCalls
from services.tokens import estimate_prompt_tokens, estimate_text_tokens

if TYPE_CHECKING:
    from services.errors import DomainError
    from services.identity import Credential

# the INTEGER columns hold 32 bits on PostgreSQL: a larger count an upstream reports would make the
# database refuse the row, and the writer retries a refused batch until it is accepted
_COUNT_MAX = 2**31 - 1


def _count(value: int) -> int:
    return min(max(value, 0), _COUNT_MAX)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the client IP always, the user when logged in (with their own RPM, if the admin
    gave them one: None means the ``user_rpm`` setting)."""

    ip: str
    user_id: int | None = None
    username: str | None = None
    path: str = "/api/chat/completions"  # where the call came in, for the blocked-attempts record
    rpm_limit: int | None = None  # the user's own RPM; None: the global user_rpm
    api_key_id: int | None = None  # the personal key the call came with
    credential: Credential | None = None  # what the user proved: a revocation ends their open calls


class CallLog:
    """Collects what one call's log row needs and hands it to the writer exactly once.

    While the call is open it is listed in ``calls``; a shutdown may :meth:`cut` it, which calls the
    hook of the stage the call is in (the failover loop, the stream) and turns a later
    ``client_aborted`` into ``server_shutdown``.
    """

    __slots__ = (
        "_cut",
        "_on_cut",
        "_written",
        "caller",
        "calls",
        "channel_id",
        "cut_error",
        "messages",
        "model_id",
        "started",
        "started_at",
        "texts",
        "ttft_ms",
        "usage",
        "writer",
    )

    def __init__(
        self,
        writer: LogWriter,
        caller: Caller,
        model_id: str,
        messages: list[dict[str, Any]],
        calls: OpenCalls | None = None,
    ) -> None:
        self.writer = writer
        self.caller = caller
        self.model_id = model_id
        self.messages = messages
        self.started = time.monotonic()
        self.started_at = utcnow()
        self.channel_id: int | None = None
        self.usage: tuple[int, int] | None = None
        self.texts: list[str] = []
        self.ttft_ms: int | None = None  # set when a stream's first event arrives
        self._written = False
        self._cut = False
        self._on_cut: Callable[[], None] | None = None
        self.cut_error: DomainError | None = None  # a revocation's cut: what the caller is told
        self.calls = calls
        if calls is not None:
            calls.add(self)

    def on_cut(self, hook: Callable[[], None]) -> None:
        """What :meth:`cut` does in the call's current stage."""
        self._on_cut = hook

    def cut(self, error: DomainError | None = None) -> None:
        """End the call now: because the server is stopping (its row says ``server_shutdown``), or
        with ``error`` because the caller's access was revoked meanwhile (the caller gets ``error``;
        the row says ``client_aborted``: the call ended on the caller's side of the gateway)."""
        if self._written or self._cut:
            return
        self._cut = True
        self.cut_error = error
        if self._on_cut is not None:
            self._on_cut()

    def first_event(self) -> None:
        """The stream's first event arrived: its time to first event is now."""
        self.ttft_ms = _count(int((time.monotonic() - self.started) * 1000))

    def is_cut(self) -> bool:
        return self._cut

    def write(self, status: str, error: str | None = None) -> None:
        """Once; ``error``: the reason code of a failed call (services/reasons.py)."""
        if self._written:
            return
        self._written = True
        if status == "client_aborted" and self._cut and self.cut_error is None:
            status = "server_shutdown"
        try:
            if self.usage is not None:
                prompt, completion, estimated = self.usage[0], self.usage[1], False
            else:
                prompt = estimate_prompt_tokens(self.messages)
                completion = sum(estimate_text_tokens(text) for text in self.texts)
                estimated = True
            self.writer.record(
                CallRecord(
                    user_id=self.caller.user_id,
                    username=self.caller.username,
                    ip_address=self.caller.ip,
                    channel_id=self.channel_id,
                    model_id=self.model_id,
                    prompt_tokens=_count(prompt),
                    completion_tokens=_count(completion),
                    created_at=self.started_at,
                    status=status,
                    tokens_estimated=estimated,
                    duration_ms=_count(int((time.monotonic() - self.started) * 1000)),
                    error=error,
                    api_key_id=self.caller.api_key_id,
                    ttft_ms=self.ttft_ms,
                )
            )
        finally:
            if self.calls is not None:
                self.calls.done(self)
