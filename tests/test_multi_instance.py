"""Two app instances share one rate limit through a real redis-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.chat_helpers import add_channel, chat_body, unique_model
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, production_env, run_app, wait_until
from tests.redis_server import run_redis
from tests.upstream_server import UpstreamServer


async def _fire(urls: list[str], count: int, body: dict) -> list[int]:
    async with httpx.AsyncClient(timeout=HANG_SECONDS, limits=httpx.Limits(max_connections=count)) as client:
        responses = await asyncio.gather(
            *(client.post(f"{urls[i % len(urls)]}/api/chat/completions", json=body) for i in range(count))
        )
    return [r.status_code for r in responses]


def test_two_instances_share_one_limit_exactly(tmp_path: Path, upstream: UpstreamServer) -> None:
    data_dir = tmp_path / "data"
    with run_redis(tmp_path) as redis_url:
        env = production_env(data_dir, RATE_LIMIT_STORAGE=redis_url, GUEST_RPM="60")
        with (
            run_app(env, log_path=tmp_path / "a.log") as first,
            run_app(env, log_path=tmp_path / "b.log") as second,
        ):
            login = httpx.post(
                f"{first.base_url}/api/auth/admin/login",
                json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
                timeout=HANG_SECONDS,
            )
            assert login.status_code == 200, login.text + first.log_text()
            with httpx.Client(base_url=first.base_url, timeout=HANG_SECONDS) as http:
                channel = add_channel(
                    http,
                    {"Authorization": f"Bearer {login.json()['access_token']}"},
                    base_url=upstream.base_url("ok"),
                    model=unique_model("redis"),
                )
            # the second instance loaded its channels at start: it sees the new one within their TTL
            wait_until(
                lambda: (
                    channel["model_id"]
                    in [
                        m["id"]
                        for m in httpx.get(f"{second.base_url}/api/chat/models", timeout=HANG_SECONDS).json()
                    ]
                ),
                poll=0.2,
            )
            # 600 at once: more than the Redis connection pool holds, so requests wait for a connection
            statuses = asyncio.run(
                _fire([first.base_url, second.base_url], 600, chat_body(channel["model_id"], stream=False))
            )
            assert statuses.count(200) == 60 and statuses.count(429) == 540, statuses
            sent = [r for r in upstream.requests_for("ok") if r.body.get("model") == channel["model_id"]]
            assert len(sent) == 60


def test_unreachable_redis_refuses_chat_with_503_but_admin_can_sign_in(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    from tests.helpers import free_port

    env = production_env(tmp_path / "data", RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{free_port()}")
    with (
        run_app(env, log_path=tmp_path / "app.log") as app,
        httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) as http,
    ):
        login = http.post(
            "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
        )
        assert login.status_code == 200
        channel = add_channel(
            http,
            {"Authorization": f"Bearer {login.json()['access_token']}"},
            base_url=upstream.base_url("ok"),
            model=unique_model("noredis"),
        )
        response = http.post("/api/chat/completions", json=chat_body(channel["model_id"], stream=False))
        assert response.status_code == 503 and response.json()["error"]["type"] == "service_unavailable"
        assert not [r for r in upstream.requests_for("ok") if r.body.get("model") == channel["model_id"]]
