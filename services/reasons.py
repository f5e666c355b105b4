"""Why an upstream call failed, as one reason code (``chat_logs.error``, the admin log table, the CSV, the
server log) and, for the person chatting, as words that tell whether the model is overloaded,
misconfigured or unreachable, without any upstream detail.

A reason is a word from :data:`REASONS`, never a body, a URL or a key.
"""

from __future__ import annotations

from typing import Literal

from services.i18n import FALLBACK, translate

REASONS = (
    "http_401",  # the upstream refused the key (401/403)
    "http_4xx",  # another 4xx: the request or the channel's model is wrong for this upstream
    "http_429",  # the upstream is rate limiting or overloaded
    "http_5xx",  # the upstream failed
    "tls",  # a certificate or TLS handshake failure
    "proxy",  # the proxy was unreachable or refused to connect us
    "timeout_connect",  # no connection: refused, name not resolved, or none within the connect timeout
    "timeout_first_event",  # a stream sent no first event within the first-byte timeout
    "timeout_idle",  # an answer stalled longer than the idle timeout
    "bad_stream",  # not an OpenAI answer, too large, or cut mid-answer
    "server_error",  # a fault of ours
    "all_busy",  # every channel of the model was at its RPM limit or paused: no upstream was asked
)
# SPEC §5's list is closed: a refused connection or an unknown host is ``timeout_connect`` (no
# connection could be made), its row's status ``upstream_error`` unless a deadline ran out

Kind = Literal["overloaded", "misconfigured", "unreachable"]

_KIND: dict[str, Kind] = {
    "http_401": "misconfigured",
    "http_4xx": "misconfigured",
    "tls": "misconfigured",
    "bad_stream": "misconfigured",
    "http_429": "overloaded",
    "all_busy": "overloaded",
    "http_5xx": "unreachable",
    "proxy": "unreachable",
    "timeout_connect": "unreachable",
    "timeout_first_event": "overloaded",
    "timeout_idle": "overloaded",
    "server_error": "unreachable",
}

# each kind's words for the person chatting: a catalogue key (services/locales/reasons_service.py)
WORDS: dict[Kind, str] = {
    "overloaded": "reasons.kind.overloaded",
    "misconfigured": "reasons.kind.misconfigured",
    "unreachable": "reasons.kind.unreachable",
}


def reason_for_status(status: int) -> str:
    if status in (401, 403):
        return "http_401"
    if status == 429:
        return "http_429"
    if status >= 500:
        return "http_5xx"
    return "http_4xx"


def kind_of(reason: str | None) -> Kind:
    return _KIND.get(reason or "", "unreachable")


def in_words(reason: str, status: int | None = None, language: str = FALLBACK) -> str:
    """A channel's last error as the admin reads it: the HTTP status or else the reason code, then words.

    The chat path stores it as the channel's ``last_error`` in the fallback language (Chinese); the
    dashboard puts a code in words in the visitor's."""
    head = f"HTTP {status}" if status is not None else reason
    words = translate(f"reasons.admin.{reason}", language) if reason in REASONS else reason
    return f"{head}: {words}"
