"""The instance's Prometheus metrics (``GET /metrics``, docs/operations.md#metrics).

One :class:`Metrics` per running instance, with its own ``CollectorRegistry`` (never the library's global
one: tests build several apps in one process). Nothing here wraps the hot path: the places that already
record something add to it there — the request observer once per HTTP request, the call-log writer once
per call row (:meth:`Metrics.count_call`), the daily counters once per refusal or blocked request
(:meth:`Metrics.count_event`). Gauges of state (journal depth and lag, open calls, page sessions) are read
only when scraped (``set_function``).

Label values are bounded: a route is its template (``/api/admin/channels/{channel_id}``), never the raw
path; a model is one a channel serves (a call for an unknown model is refused before any row exists); a
channel is its id (names can be edited); an outcome is ``success``, a reason code of
``chat_logs.error`` (services/reasons.py) or the row's status (``client_aborted``, ``server_shutdown``).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.call_record import CallRecord
from services.stats_counters import BLOCKED, REFUSAL_CHANNEL, REFUSAL_GUEST, REFUSAL_USER

CONTENT_TYPE = CONTENT_TYPE_LATEST
# a chat call's first event: from tens of milliseconds (a cache) to a minute (a long prompt, a cold model)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# requests: an API call takes milliseconds, a stream up to minutes
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_LAYERS = {REFUSAL_GUEST: "guest", REFUSAL_USER: "user", REFUSAL_CHANNEL: "channel"}


class Metrics:
    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        self.requests = Counter(
            "pyaichat_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "pyaichat_request_duration_seconds",
            "Time from a request's arrival until its response ended (a stream: its last byte)",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.upstream_calls = Counter(
            "pyaichat_upstream_calls",
            "Chat calls, one per call-log row: the channel that served (or last tried), the model, and "
            "the outcome (success, the row's reason code, or client_aborted / server_shutdown)",
            ["channel", "model", "outcome"],
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "pyaichat_time_to_first_token_seconds",
            "Streamed chat calls: time from the request until the upstream's first event",
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "pyaichat_tokens",
            "Tokens of logged chat calls (the upstream's usage, else the estimate)",
            ["direction"],
            registry=registry,
        )
        self.refusals = Counter(
            "pyaichat_rate_limit_refusals",
            "Chat calls refused by a rate limit: guest (per IP), user, or channel (every channel busy)",
            ["layer"],
            registry=registry,
        )
        self.blocked_attempts = Counter(
            "pyaichat_blocked_attempts", "Requests turned away because their IP is blocked", registry=registry
        )
        self.journal_depth = Gauge(
            "pyaichat_log_journal_depth",
            "Call-log rows of this run journaled but not yet in the database",
            registry=registry,
        )
        self.journal_lag = Gauge(
            "pyaichat_log_journal_write_lag_seconds",
            "While rows wait: seconds since the database last took a batch of them (0 when none wait)",
            registry=registry,
        )
        self.open_streams = Gauge(
            "pyaichat_open_streams",
            "Chat calls in progress on this instance (streamed or not), from channel choice to log row",
            registry=registry,
        )
        self.page_sessions = Gauge(
            "pyaichat_page_sessions", "Browser pages connected to this instance", registry=registry
        )
        self.peer_instances = Gauge(
            "pyaichat_peer_instances",
            "Other instances this one hears over the change announcements (heard within the last 3 s)",
            registry=registry,
        )
        self.changes_unconfirmed = Counter(
            "pyaichat_changes_unconfirmed",
            "Instances that did not confirm a change made here within 1 s (one per instance and change)",
            registry=registry,
        )
        # children of the labelled metrics, by label values: ``labels()`` takes a lock and builds a key
        self._prompt = self.tokens.labels("prompt")
        self._completion = self.tokens.labels("completion")
        self._events = {name: self.refusals.labels(layer) for name, layer in _LAYERS.items()}
        self._requests: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._calls: dict[tuple[int | None, str, str], Counter] = {}

    def watch(
        self,
        *,
        journal_depth: Callable[[], float],
        journal_lag: Callable[[], float],
        open_calls: Callable[[], float],
    ) -> None:
        """The gauges of the instance's state, read at each scrape."""
        self.journal_depth.set_function(journal_depth)
        self.journal_lag.set_function(journal_lag)
        self.open_streams.set_function(open_calls)

    def count_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._requests.get(key)
        if children is None:
            label = str(status)
            children = self._requests[key] = (
                self.requests.labels(route, method, label),
                self.request_duration.labels(route, method, label),
            )
        children[0].inc()
        children[1].observe(seconds)

    def count_call(self, record: CallRecord) -> None:
        """One call-log row (any thread)."""
        outcome = record.error or ("success" if record.status == "ok" else record.status)
        key = (record.channel_id, record.model_id, outcome)
        child = self._calls.get(key)
        if child is None:
            channel = "" if record.channel_id is None else str(record.channel_id)
            child = self._calls[key] = self.upstream_calls.labels(channel, record.model_id, outcome)
        child.inc()
        if record.prompt_tokens:
            self._prompt.inc(record.prompt_tokens)
        if record.completion_tokens:
            self._completion.inc(record.completion_tokens)
        if record.ttft_ms is not None:
            self.time_to_first_token.observe(record.ttft_ms / 1000)

    def count_event(self, name: str, amount: int) -> None:
        """A daily counter's event (services/stats_counters.py): a refusal by layer, or a blocked request."""
        if name == BLOCKED:
            self.blocked_attempts.inc(amount)
            return
        child = self._events.get(name)
        if child is not None:
            child.inc(amount)

    def render(self) -> bytes:
        return generate_latest(self.registry)
