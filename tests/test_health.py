"""/api/health's checks (docs/operations.md#health): Redis over a real redis-server that goes away and
comes back, and a database that cannot be opened."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi.responses import JSONResponse
from starlette.requests import Request

from app.api.health import health
from app.db import make_engine
from tests.helpers import HANG_SECONDS, production_env, run_app, wait_until
from tests.redis_server import RedisServer


def _health(base_url: str) -> tuple[int, Any]:
    answer = httpx.get(f"{base_url}/api/health", timeout=HANG_SECONDS)
    return answer.status_code, answer.json()


def test_health_follows_redis(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        env = production_env(tmp_path, RATE_LIMIT_STORAGE=redis.url)
        with run_app(env, log_path=tmp_path / "app.log") as app:
            ok = {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
            assert _health(app.base_url) == (200, ok)
            redis.stop()
            degraded = (200, {"status": "degraded", "checks": {"database": "ok", "redis": "unavailable"}})
            wait_until(
                lambda: _health(app.base_url) == degraded, poll=0.1, what="health reporting Redis down"
            )
            redis.start()  # the same port
            wait_until(
                lambda: _health(app.base_url) == (200, ok), poll=0.1, what="health reporting Redis back"
            )
    finally:
        redis.stop()


def test_health_without_a_database_is_503_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    engine = make_engine(f"sqlite:///{folder / 'chat.db'}")  # (makes the folder)
    folder.rmdir()  # now SQLite can neither open nor create the file
    state = SimpleNamespace(engine=engine, limiter=SimpleNamespace(backend=SimpleNamespace(circuit=None)))
    try:
        english = Request({"type": "http", "headers": [(b"accept-language", b"en-US")]})
        in_english = health(state, english)  # type: ignore[arg-type]
        answer = health(state, Request({"type": "http", "headers": []}))  # type: ignore[arg-type]
    finally:
        engine.dispose()
    assert isinstance(answer, JSONResponse) and answer.status_code == 503
    assert json.loads(bytes(answer.body)) == {
        "status": "degraded",
        "checks": {"database": "unavailable", "redis": "not_used"},
        "error": {"type": "database_unavailable", "message": "数据库不可用"},
    }
    assert isinstance(in_english, JSONResponse)
    assert json.loads(bytes(in_english.body))["error"]["type"] == "database_unavailable"
    assert json.loads(bytes(in_english.body))["error"]["message"] != "数据库不可用"
