"""Who is calling, and the one log row each chat call leaves (:class:`CallLog` writes it exactly once)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from app.models import utcnow
from services.logs import CallRecord, LogWriter
from services.tokens import estimate_prompt_tokens, estimate_text_tokens

# the INTEGER columns hold 32 bits on PostgreSQL: a larger count an upstream reports would make the
# database refuse the row, and the writer retries a refused batch until it is accepted
_COUNT_MAX = 2**31 - 1


def _count(value: int) -> int:
    return min(max(value, 0), _COUNT_MAX)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the client IP always, the user when logged in."""

    ip: str
    user_id: int | None = None
    username: str | None = None
    path: str = "/api/chat/completions"  # where the call came in, for the blocked-attempts record


class CallLog:
    """Collects what one call's log row needs and hands it to the writer exactly once."""

    __slots__ = (
        "_written",
        "caller",
        "channel_id",
        "messages",
        "model_id",
        "started",
        "started_at",
        "texts",
        "usage",
        "writer",
    )

    def __init__(
        self, writer: LogWriter, caller: Caller, model_id: str, messages: list[dict[str, Any]]
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
        self._written = False

    def write(self, status: str) -> None:
        if self._written:
            return
        self._written = True
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
            )
        )
