"""Sign-in and sign-up abuse against real apps (docs/behaviour.md#login-throttling and
#registration-limit): throttles that stay exact under 60 parallel attempts, in memory and in Redis; an
admin that guesses from elsewhere cannot lock out; registrations limited per IP; control characters in
credentials refused readably; a frozen Redis answered at once.

The apps believe X-Forwarded-For from loopback, so each request can be its own client IP.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chat_helpers import add_channel, chat_body, fresh_ip, unique_model
from tests.conftest import TEST_TIMEOUTS
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, production_env, run_app, wait_until
from tests.redis_server import frozen, run_redis_process
from tests.upstream_server import UpstreamServer

PASSWORD = "password-1"
THROTTLED = "登录失败次数过多，请稍后再试"


@pytest.fixture(scope="module", params=["memory", "redis"])
def abuse_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    data_dir = tmp_path_factory.mktemp(f"abuse-{request.param}")
    env = production_env(data_dir, TRUSTED_PROXIES="127.0.0.1/32", **TEST_TIMEOUTS)
    if request.param == "memory":
        with run_app(env, log_path=data_dir / "app.log") as app:
            yield app
        return
    with run_redis_process(data_dir) as (redis_url, _process):
        env["RATE_LIMIT_STORAGE"] = redis_url
        with run_app(env, log_path=data_dir / "app.log") as app:
            yield app


@pytest.fixture
def http(abuse_app: RunningApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=abuse_app.base_url, timeout=HANG_SECONDS) as client:
        yield client


def admin_headers(http: httpx.Client) -> dict[str, str]:
    response = http.post(
        "/api/auth/admin/login",
        json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
        headers={"X-Forwarded-For": fresh_ip()},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def new_account(http: httpx.Client) -> str:
    email = f"abuse-{uuid.uuid4().hex[:10]}@example.com"
    response = http.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": fresh_ip()},
    )
    assert response.status_code == 201, response.text
    return email


async def _post_all(base_url: str, path: str, requests: list[tuple[dict, str]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=base_url, timeout=HANG_SECONDS, limits=limits) as client:
        return await asyncio.gather(
            *(client.post(path, json=body, headers={"X-Forwarded-For": ip}) for body, ip in requests)
        )


def post_all(app: RunningApp, path: str, requests: list[tuple[dict, str]]) -> list[httpx.Response]:
    """The requests at once (each a JSON body and a client IP)."""
    return asyncio.run(_post_all(app.base_url, path, requests))


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def assert_throttled(response: httpx.Response, message: str, window: int) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == "rate_limit_exceeded" and error["message"] == message
    assert 1 <= int(response.headers["Retry-After"]) <= window
    assert error["retry_after"] == int(response.headers["Retry-After"])


def test_parallel_wrong_passwords_get_at_most_ten_password_checks(
    abuse_app: RunningApp, http: httpx.Client
) -> None:
    email = new_account(http)
    wrong = {"email": email, "password": "wrong-password"}
    responses = post_all(abuse_app, "/api/auth/login", [(wrong, fresh_ip()) for _ in range(60)])
    # a 401 is only given after a password check: 10 of them, however the 60 interleave
    assert statuses(responses) == {401: 10, 429: 50}
    for response in responses:
        if response.status_code == 429:
            assert_throttled(response, THROTTLED, 900)
    right = http.post(
        "/api/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": fresh_ip()},
    )
    assert_throttled(right, THROTTLED, 900)  # users are throttled per account: locked for now


def test_successful_sign_ins_do_not_count(abuse_app: RunningApp, http: httpx.Client) -> None:
    email = new_account(http)
    right = {"email": email, "password": PASSWORD}
    ip = fresh_ip()
    # one after the other: each gives its slot back (at once, more than ten would hold all ten slots)
    for _ in range(15):
        assert http.post("/api/auth/login", json=right, headers={"X-Forwarded-For": ip}).status_code == 200
    wrong = {"email": email, "password": "wrong-password"}
    assert statuses(post_all(abuse_app, "/api/auth/login", [(wrong, ip) for _ in range(12)])) == {
        401: 10,
        429: 2,
    }


def test_the_admin_cannot_be_locked_out_from_elsewhere(abuse_app: RunningApp, http: httpx.Client) -> None:
    attacker = fresh_ip()
    guess = {"username": "admin", "password": "wrong-password"}
    responses = post_all(abuse_app, "/api/auth/admin/login", [(guess, attacker) for _ in range(60)])
    assert statuses(responses) == {401: 10, 429: 50}
    right = {"username": "admin", "password": TEST_ADMIN_PASSWORD}
    assert_throttled(
        http.post("/api/auth/admin/login", json=right, headers={"X-Forwarded-For": attacker}), THROTTLED, 900
    )
    assert (
        http.post("/api/auth/admin/login", json=right, headers={"X-Forwarded-For": fresh_ip()}).status_code
        == 200
    )


def test_one_ip_guessing_admin_names_is_stopped_per_ip(abuse_app: RunningApp) -> None:
    attacker = fresh_ip()
    guesses = [({"username": f"root{i}", "password": "wrong-password"}, attacker) for i in range(40)]
    assert statuses(post_all(abuse_app, "/api/auth/admin/login", guesses)) == {401: 30, 429: 10}


def test_registration_is_limited_per_ip(abuse_app: RunningApp, http: httpx.Client) -> None:
    admin = admin_headers(http)
    config = http.get("/api/admin/config", headers=admin).json()
    assert config["register_per_ip_per_hour"] == 5, "the default"
    assert (
        http.put("/api/admin/config", json={"register_per_ip_per_hour": 3}, headers=admin).status_code == 200
    )
    try:
        ip = fresh_ip()
        bodies = [
            ({"email": f"bulk-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD}, ip)
            for _ in range(20)
        ]
        responses = post_all(abuse_app, "/api/auth/register", bodies)
        assert statuses(responses) == {201: 3, 429: 17}
        for response in responses:
            if response.status_code == 429:
                assert_throttled(response, "注册过于频繁，请稍后再试", 3600)
        malformed = http.post(
            "/api/auth/register",
            json={"email": "nope", "password": PASSWORD},
            headers={"X-Forwarded-For": ip},
        )
        assert malformed.status_code == 422, "a malformed body is refused before the limit"
        other = http.post(
            "/api/auth/register",
            json={"email": f"other-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": fresh_ip()},
        )
        assert other.status_code == 201, "other addresses are not affected"
    finally:
        http.put("/api/admin/config", json={"register_per_ip_per_hour": 5}, headers=admin)


CONTROL_CASES = [
    ("/api/auth/register", {"email": "ctl@example.com", "password": "pass\x00word-1"}, "密码"),
    ("/api/auth/register", {"email": "ctl\x00@example.com", "password": PASSWORD}, "邮箱"),
    ("/api/auth/register", {"email": "ctl@example.com", "password": "pass\tword-1"}, "密码"),
    ("/api/auth/login", {"email": "ctl@example.com", "password": "pass\x00word-1"}, "密码"),
    ("/api/auth/login", {"email": "ctl@example.com\n", "password": PASSWORD}, "邮箱"),
    ("/api/auth/admin/login", {"username": "admin", "password": "pass\x00word-1"}, "密码"),
    ("/api/auth/admin/login", {"username": "ad\x00min", "password": PASSWORD}, "用户名"),
    ("/api/auth/admin/login", {"username": "admin", "password": "pass\x1bword\x7f"}, "密码"),
    ("/api/auth/admin/login", {"username": "admin\u0085", "password": PASSWORD}, "用户名"),
]


@pytest.mark.parametrize(("path", "body", "field"), CONTROL_CASES)
def test_control_characters_in_credentials_are_422(
    abuse_app: RunningApp, http: httpx.Client, path: str, body: dict, field: str
) -> None:
    before = abuse_app.log_path.stat().st_size
    response = http.post(path, json=body, headers={"X-Forwarded-For": fresh_ip()})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (
        error["type"] == "validation_error" and field in error["message"] and "控制字符" in error["message"]
    )
    assert "\x00" not in response.text and "\\u0000" not in response.text, "the input is not echoed"
    # a marker request after it: once its answer is back, anything logged for the first one is written
    assert http.get("/api/health").status_code == 200
    logged = abuse_app.log_text()[before:]
    assert "Traceback" not in logged and len(logged) < 1000, logged[:2000]


def test_a_frozen_redis_answers_503_at_once_and_keeps_the_throttles(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    data_dir = tmp_path / "data"
    with run_redis_process(tmp_path) as (redis_url, redis):
        env = production_env(data_dir, TRUSTED_PROXIES="127.0.0.1/32", RATE_LIMIT_STORAGE=redis_url)
        with (
            run_app(env, log_path=tmp_path / "app.log") as app,
            httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) as http,
        ):
            admin = admin_headers(http)
            model = add_channel(http, admin, base_url=upstream.base_url("ok"), model=unique_model("frozen"))[
                "model_id"
            ]
            assert (
                http.put("/api/admin/config", json={"guest_rpm": 1_000_000}, headers=admin).status_code == 200
            )
            body = chat_body(model, stream=False)
            assert http.post("/api/chat/completions", json=body).status_code == 200
            with frozen(redis):
                timings = check_frozen(http, body)
                print(f"chat calls while Redis is frozen (s): {timings}")  # for docs/reliability/abuse.md
            # thawed: the watchdog's next PING closes the circuit
            wait_until(
                lambda: http.post("/api/chat/completions", json=body).status_code == 200,
                poll=0.1,
                what="chat after the thaw",
            )
            log = app.log_text()
            assert log.count("rate-limit storage (Redis) unavailable") == 1, "logged once"
            assert log.count("answers again") == 1


def check_frozen(http: httpx.Client, body: dict) -> list[float]:
    timings = []
    for _ in range(10):
        started = time.monotonic()
        response = http.post("/api/chat/completions", json=body, headers={"X-Forwarded-For": fresh_ip()})
        timings.append(round(time.monotonic() - started, 3))
        assert response.status_code == 503, response.text
        assert response.json()["error"]["type"] == "service_unavailable"
        assert int(response.headers["Retry-After"]) >= 1
    ip = fresh_ip()
    guesses = [
        http.post(
            "/api/auth/admin/login",
            json={"username": "admin", "password": "wrong-password"},
            headers={"X-Forwarded-For": ip},
        ).status_code
        for _ in range(12)
    ]
    assert guesses == [401] * 10 + [429] * 2, "the throttle counts in memory meanwhile"
    right = {"username": "admin", "password": TEST_ADMIN_PASSWORD}
    assert (
        http.post("/api/auth/admin/login", json=right, headers={"X-Forwarded-For": fresh_ip()}).status_code
        == 200
    )
    return timings
