"""PostgreSQL (``DATABASE_URL``): two app instances on one real PostgreSQL server and one redis-server,
as a multi-instance deployment runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.chat_helpers import add_channel, chat_body, read_sse, unique_model
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, production_env, run_app, wait_until
from tests.postgres_server import run_postgres
from tests.redis_server import run_redis
from tests.upstream_server import UpstreamServer


def _eventually(check: Callable[[], bool]) -> None:
    """Other instances see a change once the caches' TTL (2 s) has passed; logs are written in batches."""
    wait_until(check, poll=0.1)


def test_two_instances_share_postgresql_and_redis(tmp_path: Path, upstream: UpstreamServer) -> None:
    with run_postgres() as database_url, run_redis(tmp_path) as redis_url:
        env = production_env(tmp_path / "data", DATABASE_URL=database_url, RATE_LIMIT_STORAGE=redis_url)
        with (
            run_app(env, log_path=tmp_path / "a.log") as first,
            run_app(env, log_path=tmp_path / "b.log") as second,
            httpx.Client(base_url=first.base_url, timeout=HANG_SECONDS) as a,
            httpx.Client(base_url=second.base_url, timeout=HANG_SECONDS) as b,
        ):
            login = a.post(
                "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text + first.log_text()
            admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
            model = add_channel(a, admin, base_url=upstream.base_url("ok"), model=unique_model("pg"))[
                "model_id"
            ]
            _eventually(lambda: model in [m["id"] for m in b.get("/api/chat/models").json()])

            email = "pg-user@example.com"  # an account made on one instance signs in on the other
            registered = b.post("/api/auth/register", json={"email": email, "password": "password-123"})
            assert registered.status_code == 201, registered.text
            signed_in = a.post("/api/auth/login", json={"email": email, "password": "password-123"})
            assert signed_in.status_code == 200, signed_in.text
            user = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}

            for client in (a, b, a, b):
                answered = client.post("/api/chat/completions", json=chat_body(model, stream=False))
                assert answered.status_code == 200, answered.text
            streamed = b.post("/api/chat/completions", headers=user, json=chat_body(model, stream=True))
            assert streamed.status_code == 200 and read_sse(streamed)[-1] == "[DONE]"

            def logged() -> list[dict]:
                response = a.get("/api/admin/logs", params={"model": model}, headers=admin)
                assert response.status_code == 200, response.text
                return response.json()["items"]

            _eventually(lambda: len(logged()) == 5)  # from both instances, in one table
            assert [row["username"] for row in logged()].count(email) == 1
            assert all(row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 for row in logged())
            stats = b.get("/api/admin/stats", headers=admin)  # the admin token is good on every instance
            assert stats.status_code == 200 and stats.json()["calls"]["today"] >= 5, stats.text
            exported = a.get("/api/admin/logs/export", params={"model": model}, headers=admin)
            assert exported.status_code == 200
            assert len([line for line in exported.text.splitlines() if model in line]) == 5

            # settings and the block list changed on one instance apply on the other
            assert b.put("/api/admin/config", headers=admin, json={"guest_rpm": 7}).status_code == 200
            _eventually(lambda: a.get("/api/admin/config", headers=admin).json()["guest_rpm"] == 7)
            blocked = b.post("/api/admin/blocked-ips", headers=admin, json={"ip_address": "127.0.0.0/8"})
            assert blocked.status_code == 201, blocked.text
            _eventually(
                lambda: (
                    a.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code == 403
                )
            )
            assert "Traceback" not in first.log_text() + second.log_text()
