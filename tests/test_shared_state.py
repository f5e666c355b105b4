"""One truth across instances (docs/behaviour.md#shared-state), with real processes: three app
instances on one PostgreSQL server (and one redis-server). After 10 s without traffic, a change made on
one instance holds exactly for the very next requests on the other two: settings (counting what the old
limits admitted), block rules, a disabled channel. Over Redis pub/sub and PostgreSQL NOTIFY together,
and over NOTIFY alone. An instance that loses the database refuses decisions instead of taking them on
old values, and picks up where it was when the database is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.chat_helpers import add_channel, chat_body, fresh_ip, unique_model
from tests.helpers import (
    HANG_SECONDS,
    TEST_ADMIN_PASSWORD,
    RunningApp,
    production_env,
    run_app,
    wait_until,
    wait_until_ready,
)
from tests.postgres_server import postgres_server
from tests.redis_server import RedisServer, run_redis
from tests.upstream_server import UpstreamServer

IDLE_SECONDS = 10  # the scenario: long enough for every periodic reload to have been due
# Periodic reloads every minute: within these tests only an announcement can explain a change showing.
PUSH_ONLY = {"CACHE_REFRESH_SECONDS": "120"}


@dataclass
class Cluster:
    apps: list[RunningApp]
    clients: list[httpx.Client] = field(default_factory=list)
    admin: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clients = [httpx.Client(base_url=app.base_url, timeout=HANG_SECONDS) for app in self.apps]
        login = self.clients[0].post(
            "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        self.admin = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def on_first(self, method: str, path: str, **options: Any) -> httpx.Response:
        """An admin change, made on the first instance."""
        response = self.clients[0].request(method, path, headers=self.admin, **options)
        assert response.status_code < 300, response.text
        return response

    @property
    def others(self) -> list[str]:
        return [app.base_url for app in self.apps[1:]]

    def logs(self) -> str:
        return "\n".join(f"--- {app.base_url}\n{app.log_text()}" for app in self.apps)


@contextmanager
def _cluster(tmp_path: Path, count: int = 3, **env: str) -> Iterator[Cluster]:
    values = production_env(
        tmp_path / "data", TRUSTED_PROXIES="127.0.0.1", GUEST_RPM="100", USER_RPM="100", **env
    )
    with ExitStack() as stack:
        apps = [
            stack.enter_context(run_app(values, log_path=tmp_path / f"app-{n}.log", ready=False))
            for n in range(count)
        ]
        for app in apps:  # started together, as a deployment's replicas are
            wait_until_ready(app)
        cluster = Cluster(apps)
        stack.callback(cluster.close)
        yield cluster


async def _burst(requests: list[tuple[str, dict[str, str]]], body: dict[str, Any]) -> list[httpx.Response]:
    """All at once: (instance URL, headers) per request."""
    async with httpx.AsyncClient(
        timeout=HANG_SECONDS, limits=httpx.Limits(max_connections=len(requests))
    ) as client:
        return await asyncio.gather(
            *(client.post(f"{url}/api/chat/completions", json=body, headers=h) for url, h in requests)
        )


def _spread(urls: list[str], count: int, headers: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    return [(urls[n % len(urls)], headers) for n in range(count)]


def _statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(response.status_code for response in responses)


def _exact_on_the_others(cluster: Cluster, upstream: UpstreamServer, *, shared_limits: bool) -> None:
    first = cluster.clients[0]
    # every instance hears the two others (their ":alive"), so a change waits for their confirmations
    wait_until(lambda: "pyaichat_peer_instances 2.0" in cluster.on_first("GET", "/metrics").text)
    model = unique_model("shared")
    channel = add_channel(first, cluster.admin, base_url=upstream.base_url("ok"), model=model)
    for url in cluster.others:  # announced: no wait for a periodic reload
        wait_until(lambda u=url: model in [m["id"] for m in httpx.get(f"{u}/api/models").json()["data"]])
    email = f"{model}@example.com"
    assert first.post("/api/auth/register", json={"email": email, "password": "password-123"}).is_success
    token = first.post("/api/auth/login", json={"email": email, "password": "password-123"}).json()
    user = {"Authorization": f"Bearer {token['access_token']}"}
    guest = {"X-Forwarded-For": fresh_ip()}
    # Without Redis every instance counts its own limits: the limits part then runs on one instance.
    limit_urls = cluster.others if shared_limits else cluster.others[:1]
    body = chat_body(model, stream=False)
    # admitted under the old limits (100 a minute), in the window the new limits must count
    before = asyncio.run(_burst(_spread(limit_urls, 2, user) + _spread(limit_urls, 3, guest), body))
    assert _statuses(before) == [200] * 5, [r.text for r in before]

    time.sleep(IDLE_SECONDS)
    cluster.on_first("PUT", "/api/admin/config", json={"user_rpm": 6, "guest_rpm": 5})
    responses = asyncio.run(_burst(_spread(limit_urls, 60, user) + _spread(limit_urls, 50, guest), body))
    by_user, by_guest = responses[:60], responses[60:]
    assert _statuses(by_user) == [200] * 4 + [429] * 56, cluster.logs()
    assert _statuses(by_guest) == [200] * 2 + [429] * 48, cluster.logs()

    blocked = {"X-Forwarded-For": fresh_ip()}
    rule = cluster.on_first("POST", "/api/admin/blocked-ips", json={"ip_address": blocked["X-Forwarded-For"]})
    responses = asyncio.run(_burst(_spread(cluster.others, 20, blocked), body))
    assert _statuses(responses) == [403] * 20, cluster.logs()
    assert {r.json()["error"]["type"] for r in responses} == {"ip_blocked"}
    cluster.on_first("DELETE", f"/api/admin/blocked-ips/{rule.json()['id']}")
    responses = asyncio.run(_burst(_spread(cluster.others, 2, blocked), body))
    assert _statuses(responses) == [200, 200], [r.text for r in responses]

    sent = len(upstream.requests_for("ok"))
    cluster.on_first("PUT", f"/api/admin/channels/{channel['id']}", json={"is_enabled": False})
    requests = [(cluster.others[n % 2], {"X-Forwarded-For": fresh_ip()}) for n in range(20)]
    responses = asyncio.run(_burst(requests, body))
    assert _statuses(responses) == [404] * 20, cluster.logs()
    assert {r.json()["error"]["type"] for r in responses} == {"model_not_found"}
    assert len(upstream.requests_for("ok")) == sent, "a disabled channel got traffic"


def test_a_change_holds_at_once_on_every_instance_over_redis_and_postgresql(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    with (
        postgres_server() as database,
        run_redis(tmp_path) as redis_url,
        _cluster(tmp_path, DATABASE_URL=database.url, RATE_LIMIT_STORAGE=redis_url, **PUSH_ONLY) as cluster,
    ):
        _exact_on_the_others(cluster, upstream, shared_limits=True)


def test_a_change_holds_at_once_on_every_instance_over_postgresql_notify_alone(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    with (
        postgres_server() as database,
        _cluster(tmp_path, DATABASE_URL=database.url, **PUSH_ONLY) as cluster,
    ):
        _exact_on_the_others(cluster, upstream, shared_limits=False)


def _until_answers(app: RunningApp, body: dict[str, Any], status: int) -> httpx.Response:
    """Ask (a fresh guest each time) until the instance answers ``status``; that answer. An instance that
    no longer answers at all fails the test with its exit code and log."""
    answers: list[httpx.Response] = []

    def answered() -> bool:
        try:
            response = httpx.post(
                f"{app.base_url}/api/chat/completions",
                json=body,
                headers={"X-Forwarded-For": fresh_ip()},
                timeout=HANG_SECONDS,
            )
        except httpx.TransportError as exc:
            raise AssertionError(
                f"the instance did not answer ({exc!r}); exit code {app.process.poll()}:\n{app.log_text()}"
            ) from exc
        answers.append(response)
        return response.status_code == status

    wait_until(answered, poll=0.1)
    return answers[-1]


def test_an_instance_that_loses_its_stores_refuses_then_catches_up(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    """With the default period (2 s): the database away, decisions are refused with 503 (not taken on
    rules and channels of any age); back, the instance serves again and hears announcements again, over
    PostgreSQL, and over a Redis that was restarted."""
    redis = RedisServer(tmp_path)
    with ExitStack() as stack:
        database = stack.enter_context(postgres_server())
        redis.start()
        stack.callback(redis.stop)
        cluster = stack.enter_context(
            _cluster(tmp_path, 2, DATABASE_URL=database.url, RATE_LIMIT_STORAGE=redis.url)
        )
        other = cluster.apps[1]
        model = unique_model("lost")
        channel = add_channel(
            cluster.clients[0], cluster.admin, base_url=upstream.base_url("ok"), model=model
        )
        body = chat_body(model, stream=False)
        _until_answers(other, body, 200)

        database.stop()
        refused = _until_answers(other, body, 503)
        assert refused.json()["error"]["type"] == "service_unavailable", refused.text
        assert refused.headers["retry-after"] == "1"
        database.start()
        _until_answers(other, body, 200)
        wait_until(lambda: "announcements over postgresql are back" in other.log_text(), poll=0.1)

        redis.stop()
        wait_until(lambda: "announcements over redis lost" in other.log_text(), poll=0.1)
        limiter_down = _until_answers(other, body, 503)
        assert limiter_down.json()["error"]["type"] == "service_unavailable", limiter_down.text
        assert "failed on our side" not in other.log_text(), "a store that is down is no bug of ours"
        redis.start()  # the same port, empty
        wait_until(lambda: "announcements over redis are back" in other.log_text(), poll=0.1)
        cluster.on_first("PUT", f"/api/admin/channels/{channel['id']}", json={"is_enabled": False})
        assert _until_answers(other, body, 404).json()["error"]["type"] == "model_not_found"


def test_access_switches_and_user_changes_hold_at_once_on_another_instance(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    """The guest and registration switches, and the admin's user changes, on PostgreSQL: a change made
    on one instance holds for the very next request on the other: the admin's answer waits until the
    other instance has confirmed the announcement (and no periodic reload runs within the test)."""
    with (
        postgres_server() as database,
        _cluster(tmp_path, count=2, DATABASE_URL=database.url, **PUSH_ONLY) as cluster,
    ):
        second = cluster.clients[1]
        model = unique_model("switch")
        add_channel(cluster.clients[0], cluster.admin, base_url=upstream.base_url("ok"), model=model)
        wait_until(lambda: model in [m["id"] for m in second.get("/api/models").json()["data"]])
        body = chat_body(model, stream=False)

        def guest_chat() -> httpx.Response:
            return second.post("/api/chat/completions", json=body, headers={"X-Forwarded-For": fresh_ip()})

        cluster.on_first(
            "PUT", "/api/admin/config", json={"guest_enabled": False, "registration_enabled": False}
        )
        refused = guest_chat()  # the very next request: the change was confirmed before the answer
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_required"
        assert second.get("/api/models").json()["error"]["type"] == "authentication_required"
        closed = second.post(
            "/api/auth/register", json={"email": f"{model}@example.com", "password": "pass-word-1"}
        )
        assert closed.status_code == 403 and closed.json()["error"]["type"] == "registration_closed"

        email = f"made-{model}@example.com"
        user = cluster.on_first(
            "POST", "/api/admin/users", json={"email": email, "password": "pass-word-1"}
        ).json()
        token = second.post("/api/auth/login", json={"email": email, "password": "pass-word-1"}).json()
        signed_in = {"Authorization": f"Bearer {token['access_token']}"}
        assert second.post("/api/chat/completions", json=body, headers=signed_in).status_code == 200
        cluster.on_first("PATCH", f"/api/admin/users/{user['id']}", json={"rpm_limit": 1})
        assert second.post("/api/chat/completions", json=body, headers=signed_in).status_code == 429

        listed = second.get(
            "/api/admin/users", params={"q": "made-", "sort": "-last_active"}, headers=cluster.admin
        )
        assert [item["email"] for item in listed.json()["items"]] == [email]
        cluster.on_first("DELETE", f"/api/admin/users/{user['id']}")

        def logs() -> list[dict]:
            return second.get("/api/admin/logs", params={"model": model}, headers=cluster.admin).json()[
                "items"
            ]

        wait_until(lambda: len(logs()) == 1, poll=0.1)
        assert logs()[0]["username"] == "已删除用户" and logs()[0]["user_deleted"] is True
        export = second.get("/api/admin/logs/export", params={"model": model}, headers=cluster.admin)
        assert "已删除用户" in export.content.decode("utf-8-sig")

        cluster.on_first(
            "PUT", "/api/admin/config", json={"guest_enabled": True, "registration_enabled": True}
        )
        assert guest_chat().status_code == 200
        opened = second.post(
            "/api/auth/register", json={"email": f"{model}@example.com", "password": "pass-word-1"}
        )
        assert opened.status_code == 201, opened.text
