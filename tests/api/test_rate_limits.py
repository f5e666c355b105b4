"""Two-layer rate limiting and its 429 (docs/behaviour.md#rate-limiting), the config API and login throttling.

These tests run on their own app whose TRUSTED_PROXIES is loopback, so each test can be a different
guest by sending its own X-Forwarded-For.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.chat_helpers import add_channel, chat_body, fresh_ip, log_rows, unique_model
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, wait_until
from tests.upstream_server import UpstreamServer

RATE_LIMIT_BODY_MESSAGE = "您超过当前使用限制，请稍后再试"


pytestmark = pytest.mark.usefixtures("restore_settings")


def set_config(http: httpx.Client, admin: dict[str, str], **values: int) -> None:
    response = http.put("/api/admin/config", json=values, headers=admin)
    assert response.status_code == 200, response.text


async def fire(base_url: str, count: int, body: dict, headers_for) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base_url, timeout=HANG_SECONDS, limits=limits) as client:
        return await asyncio.gather(
            *(client.post("/api/chat/completions", json=body, headers=headers_for(i)) for i in range(count))
        )


def assert_rate_limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    body = response.json()["error"]
    assert body["type"] == "rate_limit_exceeded" and body["message"] == RATE_LIMIT_BODY_MESSAGE
    retry_after = int(response.headers["Retry-After"])
    assert body["retry_after"] == retry_after and 1 <= retry_after <= 60
    return retry_after


@pytest.mark.parametrize("limit", [1, 5, 60])
def test_guest_limit_is_exact_under_concurrency(
    limited_app: RunningApp, http: httpx.Client, admin: dict, upstream: UpstreamServer, limit: int
) -> None:
    set_config(http, admin, guest_rpm=limit)
    channel = add_channel(
        http, admin, base_url=upstream.base_url("ok"), model=unique_model("exact"), rpm_limit=1_000_000
    )
    ip = fresh_ip()
    responses = asyncio.run(
        fire(
            limited_app.base_url,
            10 * limit,
            chat_body(channel["model_id"], stream=False),
            lambda i: {"X-Forwarded-For": ip},
        )
    )
    statuses = [r.status_code for r in responses]
    others = {r.text for r in responses if r.status_code not in (200, 429)}
    assert statuses.count(200) == limit and statuses.count(429) == 9 * limit, (statuses, others)
    for response in responses:
        if response.status_code == 429:
            assert_rate_limited(response)
    sent = [r for r in upstream.requests_for("ok") if r.body.get("model") == channel["model_id"]]
    assert len(sent) == limit, "the upstream sees exactly the admitted requests"
    # a last call from elsewhere: one writer thread writes records in order, so once its row is there,
    # so would be any row for the rejections above
    marker = {"X-Forwarded-For": fresh_ip()}
    last = http.post(
        "/api/chat/completions", json=chat_body(channel["model_id"], stream=False), headers=marker
    )
    assert last.status_code == 200, last.text
    rows = log_rows(limited_app.db_path, channel["model_id"], expect=limit + 1)
    assert rows[-1]["ip_address"] == marker["X-Forwarded-For"], "rejections are not logged"
    assert len(rows) == limit + 1


def test_retry_after_counts_down(http: httpx.Client, admin: dict, upstream: UpstreamServer) -> None:
    set_config(http, admin, guest_rpm=1)
    channel = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model())
    headers = {"X-Forwarded-For": fresh_ip()}
    assert (
        http.post(
            "/api/chat/completions", json=chat_body(channel["model_id"], stream=False), headers=headers
        ).status_code
        == 200
    )
    first = assert_rate_limited(
        http.post("/api/chat/completions", json=chat_body(channel["model_id"], stream=True), headers=headers)
    )
    time.sleep(2.2)
    second = assert_rate_limited(
        http.post("/api/chat/completions", json=chat_body(channel["model_id"], stream=True), headers=headers)
    )
    assert second <= first - 2, (first, second)


def test_other_guests_are_not_affected(http: httpx.Client, admin: dict, upstream: UpstreamServer) -> None:
    set_config(http, admin, guest_rpm=1)
    channel = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model())
    body = chat_body(channel["model_id"], stream=False)
    one, two = {"X-Forwarded-For": fresh_ip()}, {"X-Forwarded-For": fresh_ip()}
    assert http.post("/api/chat/completions", json=body, headers=one).status_code == 200
    assert http.post("/api/chat/completions", json=body, headers=one).status_code == 429
    assert http.post("/api/chat/completions", json=body, headers=two).status_code == 200


def test_user_limit_spans_tokens_and_ips(
    http: httpx.Client, admin: dict, upstream: UpstreamServer, unique_email: str
) -> None:
    set_config(http, admin, user_rpm=3, guest_rpm=1000)
    channel = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model())
    assert (
        http.post("/api/auth/register", json={"email": unique_email, "password": "password-1"}).status_code
        == 201
    )
    tokens = [
        http.post(
            "/api/auth/login",
            json={"email": unique_email, "password": "password-1"},
            headers={"X-Forwarded-For": fresh_ip()},
        ).json()["access_token"]
        for _ in range(2)
    ]
    statuses = []
    for i in range(4):
        headers = {"Authorization": f"Bearer {tokens[i % 2]}", "X-Forwarded-For": fresh_ip()}
        statuses.append(
            http.post(
                "/api/chat/completions", json=chat_body(channel["model_id"], stream=False), headers=headers
            ).status_code
        )
    assert statuses == [200, 200, 200, 429]


def test_channel_limits_share_then_503(
    limited_app: RunningApp, http: httpx.Client, admin: dict, upstream: UpstreamServer
) -> None:
    set_config(http, admin, guest_rpm=1000)
    model = unique_model("busy")
    small = add_channel(http, admin, base_url=upstream.base_url("ok"), model=model, rpm_limit=2)
    large = add_channel(http, admin, base_url=upstream.base_url("nousage"), model=model, rpm_limit=3)
    headers = {"X-Forwarded-For": fresh_ip()}
    statuses = [
        http.post("/api/chat/completions", json=chat_body(model, stream=i % 2 == 0), headers=headers)
        for i in range(6)
    ]
    assert [r.status_code for r in statuses[:5]] == [200] * 5
    busy = statuses[5]
    assert busy.status_code == 503 and busy.json()["error"]["type"] == "upstream_error"
    assert "繁忙" in busy.json()["error"]["message"]  # the user is told the model is busy, in words
    assert 1 <= int(busy.headers["Retry-After"]) <= 60
    rows = log_rows(limited_app.db_path, model, expect=6)
    served = [r for r in rows if r["error"] is None]
    assert sorted(r["channel_id"] for r in served) == sorted([small["id"]] * 2 + [large["id"]] * 3)
    [refused] = [r for r in rows if r["error"] is not None]
    assert (refused["status"], refused["error"], refused["channel_id"]) == (
        "upstream_error",
        "all_busy",
        None,
    )


def test_config_api(http: httpx.Client, admin: dict) -> None:
    set_config(http, admin, guest_rpm=7, user_rpm=70, log_retention_days=30)
    set_config(http, admin, register_per_ip_per_hour=1_000_000)
    assert http.get("/api/admin/config", headers=admin).json() == {
        "guest_rpm": 7,
        "user_rpm": 70,
        "log_retention_days": 30,
        "register_per_ip_per_hour": 1_000_000,
        "auto_pause_after": 5,
        "guest_enabled": True,
        "registration_enabled": True,
    }
    set_config(http, admin, auto_pause_after=0)  # 0: channels never pause (the only setting that may be 0)
    assert http.get("/api/admin/config", headers=admin).json()["auto_pause_after"] == 0
    set_config(http, admin, auto_pause_after=5)
    for bad in (
        {"guest_rpm": 0},
        {"user_rpm": -1},
        {"guest_rpm": "5"},
        {"log_retention_days": 1.5},
        {"guest_rpm": True},
        {"unknown": 1},
        {"guest_rpm": None, "user_rpm": 10**9},
        {"register_per_ip_per_hour": 0},
        {"auto_pause_after": -1},
        {"register_per_ip_per_hour": "5"},
        {"guest_enabled": "false"},
        {"registration_enabled": 0},
    ):
        response = http.put("/api/admin/config", json=bad, headers=admin)
        assert response.status_code == 422, (bad, response.text)
    assert http.get("/api/admin/config", headers=admin).json()["guest_rpm"] == 7, "nothing changed"
    assert http.get("/api/admin/config").status_code == 401


def test_login_throttling_per_account(http: httpx.Client, unique_email: str) -> None:
    http.post("/api/auth/register", json={"email": unique_email, "password": "password-1"})
    for email in (unique_email, "nobody-" + unique_email):  # known and unknown accounts behave alike
        for _ in range(10):
            response = http.post(
                "/api/auth/login",
                json={"email": email, "password": "wrong-password"},
                headers={"X-Forwarded-For": fresh_ip()},
            )
            assert response.status_code == 401
        locked = http.post(
            "/api/auth/login",
            json={"email": email, "password": "password-1"},
            headers={"X-Forwarded-For": fresh_ip()},
        )
        assert locked.status_code == 429 and 1 <= int(locked.headers["Retry-After"]) <= 900
        assert locked.json()["error"]["type"] == "rate_limit_exceeded"


def test_login_throttling_per_ip_and_admin(http: httpx.Client) -> None:
    ip = {"X-Forwarded-For": fresh_ip()}
    for i in range(30):
        response = http.post(
            "/api/auth/login", json={"email": f"x{i}@example.com", "password": "wrong-password"}, headers=ip
        )
        assert response.status_code == 401
    assert (
        http.post(
            "/api/auth/login", json={"email": "y@example.com", "password": "wrong-password"}, headers=ip
        ).status_code
        == 429
    )
    admin_ip = {"X-Forwarded-For": fresh_ip()}
    for _ in range(10):
        assert (
            http.post(
                "/api/auth/admin/login",
                json={"username": "intruder", "password": "guess-guess"},
                headers=admin_ip,
            ).status_code
            == 401
        )
    assert (
        http.post(
            "/api/auth/admin/login",
            json={"username": "intruder", "password": "guess-guess"},
            headers=admin_ip,
        ).status_code
        == 429
    )
    # the real admin from another address is not locked out by someone else's guesses on another name
    assert (
        http.post(
            "/api/auth/admin/login",
            json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
            headers={"X-Forwarded-For": fresh_ip()},
        ).status_code
        == 200
    )


def test_refusals_blocked_requests_and_first_events_reach_the_dashboard(
    http: httpx.Client, admin: dict, upstream: UpstreamServer, unique_email: str
) -> None:
    """Each refusal layer, a blocked request and a stream's time to first event, counted in the
    rollups the stats read (the refusal counters reach the database within their flush interval)."""

    def stats() -> dict:
        response = http.get("/api/admin/stats", headers=admin)
        assert response.status_code == 200, response.text
        return response.json()

    before = stats()
    set_config(http, admin, guest_rpm=1, user_rpm=1)
    channel = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model(), rpm_limit=1)
    body = chat_body(channel["model_id"], stream=True)
    guest = {"X-Forwarded-For": fresh_ip()}
    assert http.post("/api/chat/completions", json=body, headers=guest).status_code == 200
    assert http.post("/api/chat/completions", json=body, headers=guest).status_code == 429  # guest
    # the channel's one slot is taken: another guest finds every channel busy
    busy = http.post("/api/chat/completions", json=body, headers={"X-Forwarded-For": fresh_ip()})
    assert busy.status_code == 503, busy.text
    assert (
        http.post("/api/auth/register", json={"email": unique_email, "password": "password-1"}).status_code
        == 201
    )
    token = http.post("/api/auth/login", json={"email": unique_email, "password": "password-1"}).json()
    user = {"Authorization": f"Bearer {token['access_token']}", "X-Forwarded-For": fresh_ip()}
    http.post("/api/chat/completions", json=body, headers=user)  # its one slot (the channel answers 503)
    assert http.post("/api/chat/completions", json=body, headers=user).status_code == 429  # user
    blocked_ip = "100.64.250.9"
    rule = http.post("/api/admin/blocked-ips", json={"ip_address": blocked_ip, "reason": "t"}, headers=admin)
    assert rule.status_code == 201, rule.text
    try:
        response = http.post("/api/chat/completions", json=body, headers={"X-Forwarded-For": blocked_ip})
        assert response.status_code == 403
    finally:
        http.delete(f"/api/admin/blocked-ips/{rule.json()['id']}", headers=admin)

    seen: list[dict] = []

    def grown() -> bool:
        now = stats()
        seen.append(now)
        refusals, earlier = now["refusals"], before["refusals"]
        done = (
            refusals["guest"] >= earlier["guest"] + 1
            and refusals["user"] >= earlier["user"] + 1
            and refusals["channel"] >= earlier["channel"] + 1
            and now["blocked_attempts"] >= before["blocked_attempts"] + 1
        )
        return done

    wait_until(grown, poll=0.2, what="the refusals and the blocked request counted")
    after = seen[-1]
    assert after["ttft_ms"]["p50"] is not None, "the stream's first event was timed"
    assert after["trend"][-1]["refusals"]["guest"] >= 1
