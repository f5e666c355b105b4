"""GET /api/admin/channels with paging: search, status filter, sort, calls today, 422s, and 10,000 rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.security import KeyCipher
from tests.conftest import TEST_TIMEOUTS
from tests.helpers import (
    HANG_SECONDS,
    TEST_ADMIN_PASSWORD,
    TEST_ENCRYPTION_KEY,
    RunningApp,
    production_env,
    run_app,
)

CHANNELS = 10_000
STAMP = "%Y-%m-%d %H:%M:%S.%f"


def _rows(cipher: KeyCipher) -> Iterator[tuple[object, ...]]:
    """10,000 channels: every 10th disabled, every 7th (of the rest) auto-paused; a few findable names."""
    token = cipher.encrypt("sk-bulk-channel-key-123456")
    now = datetime.now(UTC).replace(tzinfo=None).strftime(STAMP)
    for n in range(1, CHANNELS + 1):
        host = "special.example.net" if n % 1000 == 0 else f"h{n}.example.com"
        model = "needle-model" if n == 4321 else f"model-{n % 50}"
        yield (
            f"bulk {n:05d}",
            f"https://{host}/v1",
            token,
            model,
            f'["{model}"]',
            60,
            int(n % 10 != 0),
            int(n % 7 == 0),
            n % 97,  # latency
            now,
            now,
        )


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("many-channels")
    with run_app(production_env(data_dir, **TEST_TIMEOUTS), log_path=data_dir / "app.log") as app:
        with sqlite3.connect(app.db_path) as db:  # the schema is the app's (it migrated at start)
            db.executemany(
                "INSERT INTO channels (name, base_url, api_key, model_id, models, rpm_limit, is_enabled,"
                " auto_paused, latency_ms, created_at, updated_at, model_map, priority, weight,"
                " consecutive_failures) VALUES (?,?,?,?,?,?,?,?,?,?,?,'{}',0,1,0)",
                _rows(KeyCipher(TEST_ENCRYPTION_KEY)),
            )
            today = datetime.now(UTC).replace(tzinfo=None)
            db.executemany(
                "INSERT INTO chat_logs (ip_address, channel_id, model_id, created_at, status,"
                " tokens_estimated) VALUES ('10.0.0.1', ?, 'needle-model', ?, 'ok', 0)",
                [(4321, today.strftime(STAMP))] * 3 + [(4321, (today - timedelta(days=3)).strftime(STAMP))],
            )
        token = httpx.post(
            f"{app.base_url}/api/auth/admin/login",
            json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
            timeout=HANG_SECONDS,
        ).json()["access_token"]
        yield app, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(many: tuple[RunningApp, dict[str, str]]) -> Iterator[httpx.Client]:
    app, headers = many
    with httpx.Client(base_url=app.base_url, headers=headers, timeout=HANG_SECONDS) as client:
        yield client


def test_pages_of_ten_thousand(api: httpx.Client) -> None:
    first = api.get("/api/admin/channels", params={"page": 1, "page_size": 50})
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"items", "total", "page", "page_size"}
    assert body["total"] == CHANNELS and body["page"] == 1 and body["page_size"] == 50
    assert [item["name"] for item in body["items"]] == [f"bulk {n:05d}" for n in range(1, 51)]
    assert "sk-bulk-channel-key-123456" not in first.text
    assert body["items"][0]["api_key_masked"] == "sk-b…3456"
    last = api.get("/api/admin/channels", params={"page": 200, "page_size": 50}).json()
    assert [item["name"] for item in last["items"]][-1] == "bulk 10000"
    beyond = api.get("/api/admin/channels", params={"page": 201, "page_size": 50}).json()
    assert beyond["items"] == [] and beyond["total"] == CHANNELS


def test_without_paging_parameters_a_plain_list(api: httpx.Client) -> None:
    listing = api.get("/api/admin/channels")
    assert listing.status_code == 200
    assert isinstance(listing.json(), list) and len(listing.json()) == CHANNELS


def test_search_by_name_model_and_host(api: httpx.Client) -> None:
    by_name = api.get("/api/admin/channels", params={"q": "BULK 0999"}).json()
    assert {item["name"] for item in by_name["items"]} == {f"bulk 0999{d}" for d in range(10)}
    assert by_name["total"] == 10
    by_model = api.get("/api/admin/channels", params={"q": "needle"}).json()
    assert [item["name"] for item in by_model["items"]] == ["bulk 04321"]
    assert by_model["items"][0]["calls_today"] == 3, "the row of three days ago is not today's"
    by_host = api.get("/api/admin/channels", params={"q": "special.example", "page_size": 200}).json()
    assert by_host["total"] == 10
    assert all("special.example.net" in item["base_url"] for item in by_host["items"])
    literal = api.get("/api/admin/channels", params={"q": "%"}).json()
    assert literal["total"] == 0, "% is a character to look for, not a wildcard"


def test_status_filter(api: httpx.Client) -> None:
    disabled = api.get("/api/admin/channels", params={"status": "disabled", "page_size": 200}).json()
    assert disabled["total"] == CHANNELS // 10
    assert {item["status"] for item in disabled["items"]} == {"disabled"}
    paused = api.get("/api/admin/channels", params={"status": "auto_paused", "page_size": 200}).json()
    expected = sum(1 for n in range(1, CHANNELS + 1) if n % 10 != 0 and n % 7 == 0)
    assert paused["total"] == expected and {item["status"] for item in paused["items"]} == {"auto_paused"}
    enabled = api.get("/api/admin/channels", params={"status": "enabled"}).json()
    assert enabled["total"] == CHANNELS - CHANNELS // 10 - expected


def test_sort(api: httpx.Client) -> None:
    newest = api.get("/api/admin/channels", params={"sort": "-id", "page_size": 3}).json()
    assert [item["name"] for item in newest["items"]] == ["bulk 10000", "bulk 09999", "bulk 09998"]
    slowest = api.get("/api/admin/channels", params={"sort": "-latency_ms", "page_size": 5}).json()
    assert {item["latency_ms"] for item in slowest["items"]} == {96}
    by_status = api.get("/api/admin/channels", params={"sort": "-status", "page_size": 5}).json()
    assert {item["status"] for item in by_status["items"]} == {"disabled"}
    by_name = api.get("/api/admin/channels", params={"sort": "name", "q": "bulk 0000"}).json()
    assert [item["name"] for item in by_name["items"]] == [f"bulk 0000{d}" for d in range(1, 10)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "api_key"}, "sort"),
        ({"sort": "name; drop table channels"}, "sort"),
        ({"status": "paused"}, "status"),
        ({"page": 0}, "page"),
        ({"page": 10**19}, "page"),
        ({"page": 10_000_001}, "page"),
        ({"page_size": 201}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_parameters_are_422(api: httpx.Client, params: dict[str, object], field: str) -> None:
    answer = api.get("/api/admin/channels", params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["type"] == "validation_error"
    assert field in answer.json()["error"]["message"]


def test_the_page_needs_the_admin(many: tuple[RunningApp, dict[str, str]]) -> None:
    app, _headers = many
    answer = httpx.get(f"{app.base_url}/api/admin/channels", params={"page": 1}, timeout=HANG_SECONDS)
    assert answer.status_code == 401
