"""Channel health (issue 17 point 8): what the calls tell of each channel, the automatic pause after N
failures in a row, the background re-test that resumes it, the admin's resume, and the test button's
two calls."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chat_helpers import add_channel, chat_body, unique_model
from tests.conftest import SHARED_APP_ENV
from tests.helpers import (
    HANG_SECONDS,
    TEST_ADMIN_PASSWORD,
    RunningApp,
    production_env,
    run_app,
    wait_until,
)
from tests.upstream_server import UpstreamServer


def _channel(client: httpx.Client, headers: dict, channel_id: int) -> dict:
    listing = client.get("/api/admin/channels", headers=headers).json()
    return next(item for item in listing if item["id"] == channel_id)


def _stored_error(db_path: Path, channel_id: int) -> str | None:
    with sqlite3.connect(db_path) as db:
        row = db.execute("SELECT last_error FROM channels WHERE id = ?", (channel_id,)).fetchone()
    return None if row is None else row[0]


def _scenarios(upstream: UpstreamServer, model: str) -> list[str]:
    return [item.scenario for item in upstream.received if item.body.get("model") == model]


def test_failures_pause_the_channel_and_the_admin_resumes_it(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer, live_app: RunningApp
) -> None:
    model = unique_model("pause")
    failing = add_channel(
        client,
        admin_headers,
        base_url=upstream.base_url("error500"),
        model=model,
        priority=5,
        auto_pause_after=2,
    )
    healthy = add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=model)
    assert failing["status"] == "enabled" and failing["auto_pause_after"] == 2
    for _ in range(2):
        assert client.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code == 200

    wait_until(
        lambda: _channel(client, admin_headers, failing["id"])["status"] == "auto_paused", what="pause"
    )
    paused = _channel(client, admin_headers, failing["id"])
    assert paused["consecutive_failures"] == 2 and paused["is_enabled"] is True
    assert paused["last_error"] == "HTTP 500: 上游服务器出错"  # in words, no upstream detail
    assert paused["last_error_at"] is not None
    # stored language-neutral (the reason code and the status), in words in each reader's language
    assert _stored_error(live_app.db_path, failing["id"]) == "http_5xx:500"
    english = {**admin_headers, "Accept-Language": "en-US,en;q=0.9"}
    assert _channel(client, english, failing["id"])["last_error"] == "HTTP 500: The upstream server failed"
    page = client.get("/api/admin/channels", params={"q": model}, headers=english).json()
    assert [item["last_error"] for item in page["items"] if item["id"] == failing["id"]] == [
        "HTTP 500: The upstream server failed"
    ]
    wait_until(lambda: _channel(client, admin_headers, healthy["id"])["last_success_at"] is not None)
    assert isinstance(_channel(client, admin_headers, healthy["id"])["latency_ms"], int)

    before = len(_scenarios(upstream, model))
    assert client.post("/api/chat/completions", json=chat_body(model, stream=True)).status_code == 200
    assert _scenarios(upstream, model)[before:] == ["ok"], "a paused channel is not tried"

    resumed = client.post(f"/api/admin/channels/{failing['id']}/resume", headers=admin_headers)
    assert resumed.status_code == 200 and resumed.json()["status"] == "enabled"
    assert resumed.json()["consecutive_failures"] == 0
    before = len(_scenarios(upstream, model))
    client.post("/api/chat/completions", json=chat_body(model, stream=False))
    assert _scenarios(upstream, model)[before:] == ["error500", "ok"], "tried again at once"


def test_zero_never_pauses_and_caller_errors_do_not_count(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    model = unique_model("never")
    never = add_channel(
        client, admin_headers, base_url=upstream.base_url("error500"), model=model, auto_pause_after=0
    )
    for _ in range(3):
        assert client.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code == 503
    wait_until(lambda: _channel(client, admin_headers, never["id"])["consecutive_failures"] == 3)
    assert _channel(client, admin_headers, never["id"])["status"] == "enabled"

    busy_model = unique_model("busy")
    busy = add_channel(
        client, admin_headers, base_url=upstream.base_url("error429"), model=busy_model, auto_pause_after=1
    )
    for _ in range(2):
        client.post("/api/chat/completions", json=chat_body(busy_model, stream=False))
    marker = unique_model("marker")
    marked = add_channel(
        client, admin_headers, base_url=upstream.base_url("error500"), model=marker, auto_pause_after=1
    )
    client.post("/api/chat/completions", json=chat_body(marker, stream=False))
    wait_until(lambda: _channel(client, admin_headers, marked["id"])["status"] == "auto_paused")
    # the health writer has flushed past the 429s: they were not counted
    after = _channel(client, admin_headers, busy["id"])
    assert after["status"] == "enabled" and after["consecutive_failures"] == 0


def test_test_button_tries_a_plain_and_a_streamed_call(
    client: httpx.Client, admin_headers: dict, upstream: UpstreamServer
) -> None:
    good = add_channel(client, admin_headers, base_url=upstream.base_url("ok"), model=unique_model())
    result = client.post(f"/api/admin/channels/{good['id']}/test", headers=admin_headers).json()
    assert result == {**result, "ok": True, "stream_ok": True, "status_code": 200, "error": None}
    sent = [item for item in upstream.received if item.body.get("model") == good["model_id"]]
    assert [bool(item.body.get("stream")) for item in sent] == [False, True]

    plain_only = add_channel(
        client, admin_headers, base_url=upstream.base_url("plainonly"), model=unique_model()
    )
    result = client.post(f"/api/admin/channels/{plain_only['id']}/test", headers=admin_headers).json()
    assert (
        result["ok"] is False and result["stream_ok"] is False and result["error"].startswith("流式调用失败")
    )

    bad = add_channel(client, admin_headers, base_url=upstream.base_url("error401"), model=unique_model())
    result = client.post(f"/api/admin/channels/{bad['id']}/test", headers=admin_headers).json()
    assert (
        result["ok"] is False and result["stream_ok"] is None and result["error"].startswith("非流式调用失败")
    )
    assert bad["plain_key"] not in str(result)


@pytest.fixture(scope="module")
def fast_retest_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data_dir: Path = tmp_path_factory.mktemp("retest-app")
    env = production_env(data_dir, **SHARED_APP_ENV, CHANNEL_RETEST_SECONDS="0.3")
    with run_app(env, log_path=data_dir / "app.log") as app:
        yield app


def test_a_paused_channel_resumes_when_its_background_test_passes(fast_retest_app: RunningApp) -> None:
    upstream = UpstreamServer().start()
    try:
        with httpx.Client(base_url=fast_retest_app.base_url, timeout=HANG_SECONDS) as client:
            login = client.post(
                "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            model = unique_model("recover")
            channel = add_channel(
                client, headers, base_url=upstream.base_url("switch"), model=model, auto_pause_after=1
            )
            assert (
                client.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code == 503
            )
            wait_until(lambda: _channel(client, headers, channel["id"])["status"] == "auto_paused")
            busy = client.post("/api/chat/completions", json=chat_body(model, stream=False))
            assert busy.status_code == 503, "the model is busy (not unknown) while its channel is paused"
            assert (
                busy.json()["error"]["type"] == "upstream_error" and "繁忙" in busy.json()["error"]["message"]
            )
            # the background re-tests keep failing (and back off) until the upstream recovers
            wait_until(lambda: len(upstream.requests_for("switch")) >= 2, what="a background re-test")
            assert _channel(client, headers, channel["id"])["status"] == "auto_paused"
            # a failed re-test stores the reason code and the status too, never the test's words: the
            # third call (the chat's, two re-tests) starts after the first re-test stored its failure
            wait_until(lambda: len(upstream.requests_for("switch")) >= 3, what="a second re-test")
            assert _stored_error(fast_retest_app.db_path, channel["id"]) == "http_5xx:500"
            english = {**headers, "Accept-Language": "en"}
            assert _channel(client, english, channel["id"])["last_error"] == (
                "HTTP 500: The upstream server failed"
            )
            upstream.switch_failing = False
            wait_until(lambda: _channel(client, headers, channel["id"])["status"] == "enabled", what="resume")
            # the chat path's directory reloads just after the resume is stored (the admin list reads the
            # table): a call in between is still told the model is busy
            wait_until(
                lambda: (
                    client.post("/api/chat/completions", json=chat_body(model, stream=False)).status_code
                    == 200
                ),
                what="a call answered after the resume",
            )
    finally:
        upstream.stop()


def test_two_instances_sharing_one_database_pause_on_the_shared_count(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    """Each instance sees two of the four failures in a row: the count in the shared row reaches the
    channel's threshold of 4 and the channel pauses (counts kept per process would stay at 2 each)."""
    env = production_env(tmp_path / "data", GUEST_RPM="1000")
    with (
        run_app(env, log_path=tmp_path / "a.log") as first,
        run_app(env, log_path=tmp_path / "b.log") as second,
        httpx.Client(timeout=HANG_SECONDS) as http,
    ):
        login = http.post(
            f"{first.base_url}/api/auth/admin/login",
            json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        model = unique_model("shared")
        admin = httpx.Client(base_url=first.base_url, timeout=HANG_SECONDS)
        with admin:
            channel = add_channel(
                admin, headers, base_url=upstream.base_url("error500"), model=model, auto_pause_after=4
            )
            wait_until(  # the second instance loaded its channels at start: it sees the new one soon
                lambda: model in [m["id"] for m in http.get(f"{second.base_url}/api/chat/models").json()],
                poll=0.2,
                what="the channel on the second instance",
            )
            for index in range(4):
                base = (first, second)[index % 2].base_url
                response = http.post(f"{base}/api/chat/completions", json=chat_body(model, stream=False))
                assert response.status_code == 503
                if index < 3:  # each failure is in the row before the next call, on either instance
                    wait_until(
                        lambda count=index + 1: (
                            _channel(admin, headers, channel["id"])["consecutive_failures"] == count
                        ),
                        what=f"{index + 1} failures in the shared row",
                    )
            wait_until(
                lambda: _channel(admin, headers, channel["id"])["status"] == "auto_paused",
                what="the pause on the shared count",
            )
            assert _channel(admin, headers, channel["id"])["consecutive_failures"] == 4
            assert len([r for r in upstream.received if r.body.get("model") == model]) == 4
