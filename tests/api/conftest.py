"""An app that believes X-Forwarded-For from loopback, so each test can act as its own client IP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import TEST_TIMEOUTS
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, production_env, run_app


@pytest.fixture(scope="session")
def limited_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data_dir = tmp_path_factory.mktemp("limited-app")
    # No test here times out an upstream, and the tests' short timeouts are a time budget that 60 calls
    # answered at once do not keep on a busy machine: the upstream answers from a thread of the test
    # worker, which is busy sending 600 requests. The exact-limit test once got 55 of its 60 answers at a
    # load average of 11 (the idle timeout) and once none (the first-byte timeout, 2 s, in CI).
    timeouts = {name: "60" for name in TEST_TIMEOUTS}
    env = production_env(
        data_dir, TRUSTED_PROXIES="127.0.0.1/32", REGISTER_PER_IP_PER_HOUR="1000000", **timeouts
    )
    with run_app(env, log_path=data_dir / "app.log") as app:
        yield app


@pytest.fixture
def http(limited_app: RunningApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited_app.base_url, timeout=HANG_SECONDS) as client:
        yield client


@pytest.fixture
def admin(http: httpx.Client) -> dict[str, str]:
    token = http.post("/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@pytest.fixture
def restore_settings(http: httpx.Client, admin: dict[str, str]) -> Iterator[None]:
    """Puts the shared app's system settings back after a test that changes them (limits set to 1 would
    refuse the next test of the worker, whichever file it is in)."""
    before = http.get("/api/admin/config", headers=admin)
    assert before.status_code == 200, before.text
    yield
    kept = {key: before.json()[key] for key in ("guest_rpm", "user_rpm", "log_retention_days")}
    restored = http.put("/api/admin/config", json=kept, headers=admin)
    assert restored.status_code == 200, restored.text
