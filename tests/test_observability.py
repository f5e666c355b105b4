"""/metrics, LOG_FORMAT=json, X-Request-ID and /api/health's checks against a real server
(docs/operations.md#metrics, #logs).

The app believes X-Forwarded-For from loopback (TRUSTED_PROXIES), so a test chooses its client IP: one in
METRICS_ALLOW (10.0.0.0/8) scrapes without a token, any other needs an admin's. Each test calls from IPs
of its own, and the tests of this file run one after another on one app, so a counter's change between
two scrapes is the test's own doing.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.chat_helpers import add_channel, chat_body, fresh_ip, log_rows, read_sse, unique_model
from tests.conftest import TEST_TIMEOUTS
from tests.helpers import (
    HANG_SECONDS,
    TEST_ADMIN_PASSWORD,
    RunningApp,
    production_env,
    run_app,
    wait_until,
)
from tests.upstream_server import UpstreamServer

SCRAPER_IP = "10.20.30.40"  # in METRICS_ALLOW
OUTSIDER_IP = "203.0.113.9"  # not in it
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def observed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data_dir = tmp_path_factory.mktemp("observed-app")
    env = production_env(
        data_dir,
        **TEST_TIMEOUTS,
        TRUSTED_PROXIES="127.0.0.1/32",
        METRICS_ALLOW="10.0.0.0/8, 192.0.2.1",
        LOG_FORMAT="json",
        GUEST_RPM="2",
        USER_RPM="1000000",
        REGISTER_PER_IP_PER_HOUR="1000000",
        MAX_BODY_BYTES="65536",
    )
    with run_app(env, log_path=data_dir / "app.log") as app:
        yield app


@pytest.fixture
def http(observed_app: RunningApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=observed_app.base_url, timeout=HANG_SECONDS) as client:
        yield client


@pytest.fixture
def admin(http: httpx.Client) -> dict[str, str]:
    response = http.post("/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def scrape(http: httpx.Client) -> str:
    response = http.get("/metrics", headers={"X-Forwarded-For": SCRAPER_IP})
    assert response.status_code == 200, response.text
    return response.text


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name`` whose labels include ``labels``; 0 when there is none (a counter not yet
    incremented)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def log_records(app: RunningApp) -> list[dict[str, Any]]:
    """Every line the app wrote (stdout and stderr), each parsed as one JSON object."""
    records = []
    for line in app.log_text().splitlines():
        record = json.loads(line)  # a line that is not JSON fails the test here
        assert isinstance(record, dict), line
        records.append(record)
    return records


def access_line(app: RunningApp, request_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def written() -> bool:
        found[:] = [
            r
            for r in log_records(app)
            if r["logger"] == "pyaichat.access" and r.get("request_id") == request_id
        ]
        return bool(found)

    wait_until(written, poll=0.05, what=f"the access line of request {request_id}")
    assert len(found) == 1
    return found[0]


class User:
    def __init__(self, http: httpx.Client) -> None:
        self.ip = fresh_ip()
        self.email = f"obs-{uuid.uuid4().hex[:10]}@example.com"
        self.password = f"pw-{uuid.uuid4().hex}"
        headers = {"X-Forwarded-For": self.ip}
        body = {"email": self.email, "password": self.password}
        assert http.post("/api/auth/register", json=body, headers=headers).status_code == 201
        login = http.post("/api/auth/login", json=body, headers=headers)
        assert login.status_code == 200, login.text
        self.token = login.json()["access_token"]
        me = http.get("/api/auth/me", headers=self.headers())
        assert me.status_code == 200, me.text
        self.id = me.json()["id"]

    def headers(self, credential: str | None = None) -> dict[str, str]:
        return {"X-Forwarded-For": self.ip, "Authorization": f"Bearer {credential or self.token}"}


# ---- who may read /metrics ------------------------------------------------------------------------------


def test_metrics_for_an_admin_or_an_allowed_network_only(http: httpx.Client, admin: dict[str, str]) -> None:
    outsider = {"X-Forwarded-For": OUTSIDER_IP}
    anonymous = http.get("/metrics", headers=outsider)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "unauthorized"
    assert "pyaichat_" not in anonymous.text
    invalid = http.get("/metrics", headers={**outsider, "Authorization": "Bearer not-a-token"})
    assert invalid.status_code == 401
    user = User(http)
    forbidden = http.get("/metrics", headers={**user.headers(), "X-Forwarded-For": OUTSIDER_IP})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["type"] == "forbidden"

    as_admin = http.get("/metrics", headers={**outsider, **admin})
    assert as_admin.status_code == 200
    assert as_admin.headers["content-type"].startswith("text/plain")
    for ip in (SCRAPER_IP, "10.255.0.1", "192.0.2.1"):  # a range, and a single address
        allowed = http.get("/metrics", headers={"X-Forwarded-For": ip})
        assert allowed.status_code == 200, (ip, allowed.text)
    assert http.get("/metrics", headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 401
    names = {family.name for family in text_string_to_metric_families(allowed.text)}
    assert names >= {
        "pyaichat_requests",
        "pyaichat_request_duration_seconds",
        "pyaichat_upstream_calls",
        "pyaichat_time_to_first_token_seconds",
        "pyaichat_tokens",
        "pyaichat_rate_limit_refusals",
        "pyaichat_blocked_attempts",
        "pyaichat_log_journal_depth",
        "pyaichat_log_journal_write_lag_seconds",
        "pyaichat_open_streams",
        "pyaichat_page_sessions",
    }, names  # (counters' families are named without _total; their samples have it)


def test_requests_are_counted_by_route_template(http: httpx.Client, admin: dict[str, str]) -> None:
    before = scrape(http)
    labels = {"route": "/api/admin/channels/{channel_id}", "method": "DELETE", "status": "404"}
    for channel_id in (987654, 987655, 987656):  # three raw paths, one template
        assert http.delete(f"/api/admin/channels/{channel_id}", headers=admin).status_code == 404
    assert http.get(f"/api/no-such-{uuid.uuid4().hex}").status_code == 404
    after = scrape(http)
    assert (
        value(after, "pyaichat_requests_total", **labels) - value(before, "pyaichat_requests_total", **labels)
        == 3
    )
    count = "pyaichat_request_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 3
    assert "987654" not in after, "a raw path never becomes a label"
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, "pyaichat_requests_total", **unmatched) >= 1


# ---- what the calls leave in the metrics ---------------------------------------------------------------


def test_a_chat_call_counts_its_outcome_tokens_and_first_token(
    http: httpx.Client, admin: dict[str, str], upstream: UpstreamServer, observed_app: RunningApp
) -> None:
    good = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model("obs-ok"))
    bad = add_channel(http, admin, base_url=upstream.base_url("error500"), model=unique_model("obs-bad"))
    before = scrape(http)
    guest = {"X-Forwarded-For": fresh_ip()}
    body = chat_body(good["model_id"], stream=True, stream_options={"include_usage": True})
    with http.stream("POST", "/api/chat/completions", json=body, headers=guest) as response:
        assert response.status_code == 200
        events = read_sse(response)
    usage = next(e["usage"] for e in events if isinstance(e, dict) and e.get("usage"))
    failed = http.post(
        "/api/chat/completions",
        json=chat_body(bad["model_id"], stream=False),
        headers={"X-Forwarded-For": fresh_ip()},
    )
    assert failed.status_code in (502, 503), failed.text
    after = scrape(http)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    calls = "pyaichat_upstream_calls_total"
    assert grew(calls, channel=str(good["id"]), model=good["model_id"], outcome="success") == 1
    assert grew(calls, channel=str(bad["id"]), model=bad["model_id"], outcome="http_5xx") == 1
    # the tokens of the call-log rows, as the dashboard counts them: the stream's usage, the failed call's
    # estimate of its prompt
    rows = [
        *log_rows(observed_app.db_path, good["model_id"]),
        *log_rows(observed_app.db_path, bad["model_id"]),
    ]
    assert rows[0]["prompt_tokens"] == usage["prompt_tokens"] > 0
    assert grew("pyaichat_tokens_total", direction="prompt") == sum(row["prompt_tokens"] for row in rows)
    assert grew("pyaichat_tokens_total", direction="completion") == sum(
        row["completion_tokens"] for row in rows
    )
    assert usage["completion_tokens"] > 0
    assert grew("pyaichat_time_to_first_token_seconds_count") == 1  # the stream's; the failed call had none
    chat = {"route": "/api/chat/completions", "method": "POST"}
    assert grew("pyaichat_requests_total", **chat, status="200") == 1
    assert grew("pyaichat_request_duration_seconds_count", **chat, status="200") == 1
    assert value(after, "pyaichat_open_streams") == 0  # both calls ended


def test_a_rate_limit_refusal_is_counted_by_layer(
    http: httpx.Client, admin: dict[str, str], upstream: UpstreamServer
) -> None:
    channel = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model("obs-429"))
    before = scrape(http)
    guest = {"X-Forwarded-For": fresh_ip()}  # GUEST_RPM is 2
    statuses = [
        http.post(
            "/api/chat/completions", json=chat_body(channel["model_id"], stream=False), headers=guest
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    after = scrape(http)
    refusals = "pyaichat_rate_limit_refusals_total"
    assert value(after, refusals, layer="guest") - value(before, refusals, layer="guest") == 1
    assert value(after, refusals, layer="user") == value(before, refusals, layer="user")
    calls = value(after, "pyaichat_upstream_calls_total", model=channel["model_id"], outcome="success")
    assert calls == 2, "a refused call never reaches an upstream, nor the call count"


def test_a_blocked_attempt_is_counted(
    http: httpx.Client, admin: dict[str, str], upstream: UpstreamServer
) -> None:
    channel = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model("obs-block"))
    ip = fresh_ip()
    rule = http.post(
        "/api/admin/blocked-ips", json={"ip_address": ip, "reason": "metrics test"}, headers=admin
    )
    assert rule.status_code == 201, rule.text
    before = scrape(http)
    try:
        refused = http.post(
            "/api/chat/completions",
            json=chat_body(channel["model_id"], stream=False),
            headers={"X-Forwarded-For": ip},
        )
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "ip_blocked"
        assert http.get("/api/models", headers={"X-Forwarded-For": ip}).status_code == 403
    finally:
        http.delete(f"/api/admin/blocked-ips/{rule.json()['id']}", headers=admin)
    after = scrape(http)
    blocked = "pyaichat_blocked_attempts_total"
    assert value(after, blocked) - value(before, blocked) == 2
    refused = {"route": "/api/chat/completions", "method": "POST", "status": "403"}
    assert (
        value(after, "pyaichat_requests_total", **refused)
        - value(before, "pyaichat_requests_total", **refused)
        == 1
    )


# ---- request ids and the JSON log ----------------------------------------------------------------------


def test_every_response_carries_a_request_id(http: httpx.Client, observed_app: RunningApp) -> None:
    echoed = http.get("/api/health", headers={"X-Request-ID": "trace-1.A_b-9"})
    assert echoed.headers["X-Request-ID"] == "trace-1.A_b-9"
    for insane in ("has space", "x" * 129, "semi;colon", "ünï"):
        answer = http.get("/api/health", headers={"X-Request-ID": insane.encode("utf-8")})
        assert GENERATED_ID.fullmatch(answer.headers["X-Request-ID"]), insane
    ids = {http.get("/api/health").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3 and all(GENERATED_ID.fullmatch(i) for i in ids)
    assert "x-request-id" in http.get("/").headers  # a page
    assert "x-request-id" in http.get(f"/api/nothing-{uuid.uuid4().hex}").headers  # the API's 404
    too_big = http.post("/api/auth/login", content=b"{" + b" " * 70_000 + b"}")  # MAX_BODY_BYTES is 64 KiB
    assert too_big.status_code == 413 and GENERATED_ID.fullmatch(too_big.headers["X-Request-ID"])
    one = too_big.headers.get_list("X-Request-ID")
    assert len(one) == 1

    line = access_line(observed_app, "trace-1.A_b-9")
    assert line["route"] == "/api/health" and line["method"] == "GET" and line["status"] == 200
    assert line["client_ip"] == "127.0.0.1" and line["user_id"] is None and line["duration_ms"] >= 0


def test_json_logs_name_the_caller_and_never_a_secret(
    http: httpx.Client, admin: dict[str, str], observed_app: RunningApp, upstream: UpstreamServer
) -> None:
    channel = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model("obs-log"))
    bad = add_channel(http, admin, base_url=upstream.base_url("error500"), model=unique_model("obs-log-bad"))
    user = User(http)
    key = http.post("/api/keys", json={"name": "log test"}, headers=user.headers())
    assert key.status_code == 201, key.text
    api_key = key.json()["key"]
    prompt = f"my private prompt {uuid.uuid4().hex}"
    with_key = http.post(
        "/api/chat/completions",
        json=chat_body(channel["model_id"], stream=False, content=prompt),
        headers=user.headers(api_key),
    )
    assert with_key.status_code == 200, with_key.text
    answer = with_key.json()["choices"][0]["message"]["content"]
    with http.stream(
        "POST",
        "/api/chat/completions",
        json=chat_body(channel["model_id"], stream=True, content=prompt),
        headers=user.headers(),
    ) as streamed:
        assert streamed.status_code == 200
        read_sse(streamed)
    failing = http.post(
        "/api/chat/completions",
        json=chat_body(bad["model_id"], stream=False, content=prompt),
        headers=user.headers(),
    )
    assert failing.status_code in (502, 503)
    wrong = http.post("/api/auth/login", json={"email": user.email, "password": user.password + "-wrong"})
    assert wrong.status_code == 401

    line = access_line(observed_app, with_key.headers["X-Request-ID"])
    assert line["route"] == "/api/chat/completions" and line["method"] == "POST" and line["status"] == 200
    assert line["user_id"] == user.id and line["client_ip"] == user.ip
    streamed_line = access_line(observed_app, streamed.headers["X-Request-ID"])
    assert streamed_line["user_id"] == user.id and streamed_line["status"] == 200
    access_line(observed_app, failing.headers["X-Request-ID"])
    access_line(observed_app, wrong.headers["X-Request-ID"])

    records = log_records(observed_app)  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    text = observed_app.log_text()
    admin_token = admin["Authorization"].removeprefix("Bearer ")
    secrets = {
        "the user's password": user.password,
        "the user's token": user.token,
        "the personal key": api_key,
        "the admin's token": admin_token,
        "the admin's password": TEST_ADMIN_PASSWORD,
        "the channel's key": channel["plain_key"],
        "the other channel's key": bad["plain_key"],
        "the prompt": prompt,
        "the answer": answer,
    }
    for what, secret in secrets.items():
        assert secret not in text, f"{what} is in the log"
    assert user.email not in text  # the access line names the user by id


# ---- health --------------------------------------------------------------------------------------------


def test_health_reports_its_checks(http: httpx.Client) -> None:
    answer = http.get("/api/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "checks": {"database": "ok", "redis": "not_used"}}
