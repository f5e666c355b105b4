"""services/metrics.py and the request observer's pure parts (app/api/observe.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from app.api.observe import incoming_id, route_template, with_prefix
from services.call_record import CallRecord
from services.metrics import Metrics
from services.stats_counters import BLOCKED, REFUSAL_CHANNEL, REFUSAL_GUEST


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _record(**fields: object) -> CallRecord:
    values: dict[str, object] = {
        "user_id": None,
        "username": None,
        "ip_address": "198.51.100.1",
        "channel_id": 3,
        "model_id": "m",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "created_at": datetime.now(UTC),
        "status": "ok",
        "tokens_estimated": False,
        "duration_ms": 100,
        "ttft_ms": 250,
    }
    return CallRecord(**{**values, **fields})  # type: ignore[arg-type]


def test_each_instance_has_its_own_registry() -> None:
    one, other = Metrics(), Metrics()  # the global registry would refuse the second set of names
    one.count_event(BLOCKED, 1)
    assert _samples(one)[("pyaichat_blocked_attempts_total", ())] == 1
    assert _samples(other)[("pyaichat_blocked_attempts_total", ())] == 0


def test_call_rows_become_outcomes_tokens_and_first_tokens() -> None:
    metrics = Metrics()
    metrics.count_call(_record())
    metrics.count_call(_record(status="upstream_error", error="http_5xx", ttft_ms=None, completion_tokens=0))
    metrics.count_call(_record(status="client_aborted", channel_id=None, ttft_ms=None))
    samples = _samples(metrics)
    calls = "pyaichat_upstream_calls_total"
    assert samples[(calls, (("channel", "3"), ("model", "m"), ("outcome", "success")))] == 1
    assert samples[(calls, (("channel", "3"), ("model", "m"), ("outcome", "http_5xx")))] == 1
    assert samples[(calls, (("channel", ""), ("model", "m"), ("outcome", "client_aborted")))] == 1
    assert samples[("pyaichat_tokens_total", (("direction", "prompt"),))] == 30
    assert samples[("pyaichat_tokens_total", (("direction", "completion"),))] == 10
    assert samples[("pyaichat_time_to_first_token_seconds_count", ())] == 1
    assert samples[("pyaichat_time_to_first_token_seconds_sum", ())] == 0.25


def test_refusals_by_layer() -> None:
    metrics = Metrics()
    metrics.count_event(REFUSAL_GUEST, 2)
    metrics.count_event(REFUSAL_CHANNEL, 1)
    metrics.count_event("some_future_counter", 1)  # not a metric: ignored
    samples = _samples(metrics)
    refusals = "pyaichat_rate_limit_refusals_total"
    assert samples[(refusals, (("layer", "guest"),))] == 2
    assert samples[(refusals, (("layer", "user"),))] == 0
    assert samples[(refusals, (("layer", "channel"),))] == 1


def test_incoming_request_ids() -> None:
    assert incoming_id([(b"host", b"x"), (b"x-request-id", b"abc-1.2_3")]) == b"abc-1.2_3"
    assert incoming_id([(b"x-request-id", b"a" * 128)]) == b"a" * 128
    for bad in (b"a" * 129, b"", b"a b", b"a/b", b"\xc3\xbc", b"a\r\nb"):
        assert incoming_id([(b"x-request-id", bad)]) is None, bad
    assert incoming_id([]) is None


def test_route_templates_are_bounded() -> None:
    assert (
        with_prefix("/api/admin/channels/7", "/admin/channels/{channel_id}")
        == "/api/admin/channels/{channel_id}"
    )
    assert with_prefix("/api/v1/models", "/models") == "/api/v1/models"
    assert with_prefix("/api/admin/channels", "") == "/api/admin/channels"
    assert with_prefix("/", "/") == "/"
    # a path parameter that may hold slashes: the template as it is, whatever the path
    assert (
        with_prefix("/_nicegui/3/lib/a/b/c", "/_nicegui/{v}/lib/{key:path}") == "/_nicegui/{v}/lib/{key:path}"
    )
    fixed = frozenset({"/v1/chat/completions"})
    assert route_template({"path": "/v1/chat/completions"}, fixed) == "/v1/chat/completions"
    assert route_template({"path": "/random/123", "root_path": ""}, fixed) == "unmatched"
    assert route_template({"path": "/static/x.css", "root_path": "/static"}, fixed) == "/static/*"
