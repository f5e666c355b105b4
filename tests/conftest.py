from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, production_env, run_app
from tests.upstream_server import UpstreamServer

# Short upstream timeouts so stall / hang scenarios finish quickly in tests.
TEST_TIMEOUTS = {
    "UPSTREAM_CONNECT_TIMEOUT": "2",
    "UPSTREAM_FIRST_BYTE_TIMEOUT": "2",
    "UPSTREAM_IDLE_TIMEOUT": "3",
}
# The shared app serves many tests from 127.0.0.1: caller limits high; rate-limit tests use their own apps.
SHARED_APP_ENV = {
    **TEST_TIMEOUTS,
    "GUEST_RPM": "1000000",
    "USER_RPM": "1000000",
    "REGISTER_PER_IP_PER_HOUR": "1000000",
}


@pytest.fixture(scope="session")
def upstream() -> Iterator[UpstreamServer]:
    server = UpstreamServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """One real server (subprocess) per test worker, production mode, its own SQLite file."""
    data_dir = tmp_path_factory.mktemp("live-app")
    with run_app(production_env(data_dir, **SHARED_APP_ENV), log_path=data_dir / "app.log") as app:
        yield app


@pytest.fixture
def client(live_app: RunningApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_app.base_url, timeout=HANG_SECONDS) as http:
        yield http


@pytest.fixture
def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture(scope="session")
def admin_token(live_app: RunningApp) -> str:
    """One admin sign-in per worker's shared app (each costs a bcrypt check); no test there revokes it."""
    with httpx.Client(base_url=live_app.base_url, timeout=HANG_SECONDS) as http:
        response = http.post(
            "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
        )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def admin_headers(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: a worker more than there are cores, or ``PYAICHAT_TEST_WORKERS``. Many tests spend
    part of their time waiting (a database held locked for 30 s, slowed calls, app processes starting),
    which leaves a core idle with one worker per core (a quarter of the CPU idle over a run on two
    cores): the extra worker fills it, 500 s instead of 617 s for the whole suite on a quiet 2-core
    machine (2026-11-30). It once made console browser tests lose a click's effect: clicks on a dialog
    still appearing, which land on its backdrop; they now wait for the dialog (browser conftest,
    ``shown_dialog``)."""
    return int(os.environ.get("PYAICHAT_TEST_WORKERS") or (os.cpu_count() or 1) + 1)


# The longest files, longest first (from `--durations=0` of a whole run). The workers take whole files
# (--dist loadfile) in collection order; one of these started last would run alone at the end while the
# other workers idle, so they go first (--no-loadscope-reorder keeps this order; xdist's own puts the
# files with the most tests first). The order of the rest is kept.
LONGEST_FILES = (
    "tests/test_replicas.py",
    "tests/test_call_log_durability.py",
    "tests/browser/test_accessibility_browser.py",
    "tests/test_shared_state.py",
    "tests/browser/test_console_browser.py",
    "tests/test_bench.py",
    "tests/test_bench_postgresql.py",
    "tests/browser/test_output_isolation_browser.py",
    "tests/browser/test_chat_browser.py",
    "tests/browser/test_dashboard_browser.py",
    "tests/api/test_schemathesis.py",
    "tests/api/test_rate_limits.py",
    "tests/pages/test_chat.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}

    def key(item: pytest.Item) -> int:
        return rank.get(item.nodeid.split("::", 1)[0], len(rank))

    items.sort(key=key)  # stable: within a file and among the others the order stays
