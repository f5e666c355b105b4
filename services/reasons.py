"""Why an upstream call failed, as one reason code (``chat_logs.error``, the admin log table, the CSV, the
server log) and, for the person chatting, as words that tell whether the model is overloaded,
misconfigured or unreachable, without any upstream detail.

A reason is a word from :data:`REASONS`, never a body, a URL or a key.
"""

from __future__ import annotations

import re
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

# what only a channel's test finds (a re-test of a paused channel stores it as the channel's last error)
CHANNEL_REASONS = ("key_undecryptable", "headers_undecryptable", "proxy_undecryptable")

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
    """A reason as the admin reads it: the HTTP status or else the reason code, then words in
    ``language`` (the dashboard's error table, a channel's last error)."""
    head = f"HTTP {status}" if status is not None else reason
    known = reason in REASONS or reason in CHANNEL_REASONS
    words = translate(f"reasons.admin.{reason}", language) if known else reason
    return f"{head}: {words}"


# A channel's ``last_error`` as stored: a reason code, then a short detail that needs no translation when
# there is one (the HTTP status): ``http_5xx:500``. The words are put in when it is read, in the reader's
# language (:func:`stored_in_words`). Older versions stored the words themselves, in Chinese.
_STORED = re.compile(r"([a-z0-9_]+)(?::([0-9A-Za-z._-]{1,40}))?")


def stored(reason: str, detail: object = None) -> str:
    """The language-neutral form of a channel's last error (``detail``: the HTTP status, if any)."""
    return reason if detail is None else f"{reason}:{detail}"


def stored_in_words(value: str | None, language: str = FALLBACK) -> str | None:
    """A stored last error in words in ``language``: ``http_5xx:500`` → ``HTTP 500: The upstream server
    failed``. Anything else (an older version's Chinese words) is shown as it was stored."""
    if value is None:
        return None
    match = _STORED.fullmatch(value)
    if match is None or (match[1] not in REASONS and match[1] not in CHANNEL_REASONS):
        return value
    reason, detail = match[1], match[2]
    if detail is not None and detail.isdigit():
        return in_words(reason, int(detail), language)
    words = in_words(reason, language=language)
    return words if detail is None else f"{words} ({detail})"
