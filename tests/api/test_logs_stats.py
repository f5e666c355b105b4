"""/api/admin/logs (filters, pages), the CSV export and /api/admin/stats on a known dataset."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import Session

from app.db import make_engine
from app.models import User
from services.logs import CallRecord, LogWriter
from tests.conftest import TEST_TIMEOUTS
from tests.helpers import HANG_SECONDS, TEST_ADMIN_PASSWORD, RunningApp, production_env, run_app

ZONE = ZoneInfo("Asia/Shanghai")


def local(day_offset: int, hour: int, minute: int = 0) -> datetime:
    today = datetime.now(ZONE).date()
    return datetime.combine(today + timedelta(days=day_offset), time(hour, minute), tzinfo=ZONE).astimezone(
        UTC
    )


def record(
    at: datetime,
    *,
    model: str = "gpt-a",
    ip: str = "10.0.0.1",
    user: tuple[int, str] | None = None,
    prompt: int = 10,
    completion: int = 20,
    status: str = "ok",
) -> CallRecord:
    return CallRecord(
        user_id=user[0] if user else None,
        username=user[1] if user else None,
        ip_address=ip,
        channel_id=None,
        model_id=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        created_at=at,
        status=status,
        tokens_estimated=False,
        duration_ms=123,
    )


DATASET = [
    # today (local): just after midnight Shanghai = the previous UTC day
    record(local(0, 0, 1), model="gpt-a", ip="10.0.0.1"),
    record(local(0, 9), model="gpt-a", ip="10.0.0.1"),
    record(local(0, 10), model="gpt-b", ip="10.0.0.2", user=(7, "alice@example.com"), prompt=5, completion=7),
    record(
        local(0, 11), model="gpt-b", ip="10.0.0.3", user=(7, "alice@example.com"), status="upstream_error"
    ),
    # yesterday 23:59 local: not today, although it is the same UTC day as the first row above
    record(local(-1, 23, 59), model="gpt-a", ip="10.0.0.9", prompt=1, completion=1),
    # three days ago; nothing on -2, -4, -5, -6 (empty days in the trend)
    record(local(-3, 12), model="=cmd()", ip="10.0.0.4", user=(8, "+bob@example.com")),
    # long ago: outside every period; cut by a shutdown
    record(local(-40, 12), model="gpt-old", ip="10.0.0.5", status="server_shutdown"),
]


@pytest.fixture(scope="module")
def stats_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data_dir = tmp_path_factory.mktemp("stats-app")
    env = production_env(data_dir, TZ="Asia/Shanghai", LOG_RETENTION_DAYS="365", **TEST_TIMEOUTS)
    with run_app(env, log_path=data_dir / "app.log") as app:
        engine = make_engine(f"sqlite:///{app.db_path}")
        with Session(engine) as session:  # the accounts behind the dataset's user calls
            session.add(User(id=7, email="alice@example.com", password_hash="-"))
            session.add(User(id=8, email="+bob@example.com", password_hash="-"))
            session.commit()
        writer = LogWriter(engine, ZONE, journal_dir=data_dir / "test-journal").start()
        for call in DATASET:
            writer.record(call)
        assert writer.flush()
        writer.close()
        engine.dispose()
        yield app


@pytest.fixture
def api(stats_app: RunningApp) -> Iterator[httpx.Client]:
    token = httpx.post(
        f"{stats_app.base_url}/api/auth/admin/login",
        timeout=HANG_SECONDS,
        json={"username": "admin", "password": TEST_ADMIN_PASSWORD},
    ).json()["access_token"]
    with httpx.Client(
        timeout=HANG_SECONDS, base_url=stats_app.base_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


def test_stats_on_a_known_dataset(api: httpx.Client) -> None:
    stats = api.get("/api/admin/stats").json()
    today = datetime.now(ZONE).date()
    monday = today - timedelta(days=today.weekday())
    first_of_month = today.replace(day=1)

    def expected(since) -> list[CallRecord]:
        return [r for r in DATASET if r.created_at.astimezone(ZONE).date() >= since]

    assert stats["time_zone"] == "Asia/Shanghai"
    assert stats["calls"] == {
        "today": 4,
        "week": len(expected(monday)),
        "month": len(expected(first_of_month)),
    }
    assert stats["tokens"]["today"] == {"prompt": 10 + 10 + 5 + 10, "completion": 20 + 20 + 7 + 20}
    actors_today = {"ip:10.0.0.1", "u:7"}
    assert stats["active_users"]["today"] == len(actors_today)
    trend = stats["trend"]
    assert [p["date"] for p in trend] == [(today - timedelta(days=6 - i)).isoformat() for i in range(7)]
    assert [p["calls"] for p in trend] == [0, 0, 0, 1, 0, 1, 4]
    month_models = {m["model_id"]: m["calls"] for m in stats["models"]}
    expected_models: dict[str, int] = {}
    for r in expected(first_of_month):
        expected_models[r.model_id] = expected_models.get(r.model_id, 0) + 1
    assert month_models == expected_models


def test_stats_need_an_admin(stats_app: RunningApp) -> None:
    assert httpx.get(f"{stats_app.base_url}/api/admin/stats", timeout=HANG_SECONDS).status_code == 401


def test_log_filters_and_pages(api: httpx.Client) -> None:
    everything = api.get("/api/admin/logs", params={"page_size": 100}).json()
    assert everything["total"] == len(DATASET) and everything["page"] == 1
    times = [item["created_at"] for item in everything["items"]]
    assert times == sorted(times, reverse=True), "newest first"
    assert all("content" not in item and "messages" not in item for item in everything["items"])

    today = datetime.now(ZONE).date().isoformat()
    assert api.get("/api/admin/logs", params={"start": today, "end": today}).json()["total"] == 4
    assert api.get("/api/admin/logs", params={"user": "ALICE@example.com"}).json()["total"] == 2
    assert api.get("/api/admin/logs", params={"user": "7"}).json()["total"] == 2
    assert api.get("/api/admin/logs", params={"user": "nobody@example.com"}).json()["total"] == 0
    assert api.get("/api/admin/logs", params={"user": "guest"}).json()["total"] == 4
    assert api.get("/api/admin/logs", params={"ip": "10.0.0.1"}).json()["total"] == 2
    assert api.get("/api/admin/logs", params={"model": "gpt-b"}).json()["total"] == 2
    assert api.get("/api/admin/logs", params={"status": "upstream_error"}).json()["total"] == 1
    assert api.get("/api/admin/logs", params={"status": "server_shutdown"}).json()["total"] == 1
    both = api.get("/api/admin/logs", params={"model": "gpt-a", "ip": "10.0.0.1", "start": today}).json()
    assert both["total"] == 2

    page1 = api.get("/api/admin/logs", params={"page_size": 3, "page": 1}).json()
    page3 = api.get("/api/admin/logs", params={"page_size": 3, "page": 3}).json()
    assert len(page1["items"]) == 3 and len(page3["items"]) == 1 and page3["total"] == len(DATASET)
    capped = api.get("/api/admin/logs", params={"page_size": 5000}).json()
    assert capped["page_size"] == 200


@pytest.mark.parametrize(
    "params",
    [
        {"start": "yesterday"},
        {"end": "2026-13-01"},
        {"ip": "not-an-ip"},
        {"page": 0},
        {"page": "x"},
        {"page_size": 0},
        {"status": "weird"},
        {"start": "2026-11-10", "end": "2026-11-01"},
    ],
)
def test_bad_filters_are_422(api: httpx.Client, params: dict) -> None:
    response = api.get("/api/admin/logs", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "validation_error"


def test_csv_export_matches_the_database(stats_app: RunningApp, api: httpx.Client) -> None:
    response = api.get("/api/admin/logs/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM for Excel"
    assert b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[:5] == ["id", "time (Asia/Shanghai)", "ip", "user", "model"]
    with sqlite3.connect(stats_app.db_path) as db:
        expected = db.execute(
            "SELECT id, ip_address, model_id, prompt_tokens, completion_tokens FROM chat_logs "
            "ORDER BY id DESC"
        ).fetchall()
    assert [(int(r[0]), r[2], r[4].lstrip("'"), int(r[8]), int(r[9])) for r in body] == expected
    cmd_row = next(r for r in body if "cmd()" in r[4])
    assert cmd_row[4] == "'=cmd()" and cmd_row[3] == "'+bob@example.com", "formula injection neutralised"
    assert header[1] == "time (Asia/Shanghai)"
    with sqlite3.connect(stats_app.db_path) as db:
        stored = dict(db.execute("SELECT id, created_at FROM chat_logs").fetchall())
    for r in body:  # local Shanghai time = stored UTC + 8 h
        utc = datetime.fromisoformat(stored[int(r[0])]).replace(tzinfo=UTC)
        assert r[1] == utc.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")


def test_csv_export_uses_the_filters(api: httpx.Client) -> None:
    rows = list(csv.reader(io.StringIO(api.get("/api/admin/logs/export", params={"model": "gpt-b"}).text)))
    assert len(rows) == 3 and {r[4] for r in rows[1:]} == {"gpt-b"}
    assert api.get("/api/admin/logs/export", params={"ip": "bad"}).status_code == 422
    assert httpx.get(f"{api.base_url}/api/admin/logs/export", timeout=HANG_SECONDS).status_code == 401


def test_log_sort_by_time_duration_and_tokens(api: httpx.Client) -> None:
    def tokens(item: dict) -> int:
        return (item["prompt_tokens"] or 0) + (item["completion_tokens"] or 0)

    oldest = api.get("/api/admin/logs", params={"sort": "time", "page_size": 100}).json()["items"]
    assert [item["created_at"] for item in oldest] == sorted(item["created_at"] for item in oldest)
    fewest = api.get("/api/admin/logs", params={"sort": "tokens", "page_size": 100}).json()["items"]
    assert [tokens(item) for item in fewest] == sorted(tokens(item) for item in fewest)
    assert tokens(fewest[0]) == 2 and tokens(fewest[1]) == 12
    most = api.get("/api/admin/logs", params={"sort": "-tokens", "page_size": 2}).json()
    assert [tokens(item) for item in most["items"]] == [30, 30] and most["total"] == len(DATASET)
    by_duration = api.get("/api/admin/logs", params={"sort": "-duration", "page_size": 100}).json()["items"]
    ids = [item["id"] for item in by_duration]  # every duration is 123: the id breaks the tie
    assert ids == sorted(ids, reverse=True)


def test_log_channel_filter(api: httpx.Client) -> None:
    assert api.get("/api/admin/logs", params={"channel": "5"}).json()["total"] == 0  # no channel in the set


def test_stats_for_a_range(api: httpx.Client) -> None:
    today = datetime.now(ZONE).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    stats = api.get("/api/admin/stats", params={"start": yesterday, "end": today.isoformat()}).json()
    assert stats["range"]["start"] == yesterday and stats["range"]["calls"] == 5
    assert [p["date"] for p in stats["trend"]] == [yesterday, today.isoformat()]
    assert [p["calls"] for p in stats["trend"]] == [1, 4]
    assert stats["trend"][0]["tokens"] == {"prompt": 1, "completion": 1}
    assert stats["success_rate"] == 0.8 and stats["errors"] == {"upstream_error": 1}
    assert stats["top_users"] == [{"user_id": 7, "email": "alice@example.com", "calls": 2}]
    assert stats["top_ips"][0] == {"ip_address": "10.0.0.1", "calls": 2}
    assert stats["duration_ms"]["p50"] is not None and stats["ttft_ms"] == {"p50": None, "p95": None}
    assert stats["calls"]["today"] == 4, "the wave-1 fields stay"
    only_start = api.get("/api/admin/stats", params={"start": yesterday}).json()
    assert only_start["range"] == stats["range"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "prompt"}, "sort"),
        ({"sort": "--time"}, "sort"),
        ({"sort": "ip_address"}, "sort"),
        ({"channel": "x"}, "channel"),
        ({"channel": "0"}, "channel"),
    ],
)
def test_bad_sort_or_channel_is_422(api: httpx.Client, params: dict, field: str) -> None:
    response = api.get("/api/admin/logs", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "validation_error"
    assert field in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-11-10", "end": "2026-11-01"}, "end"),
        ({"start": "2025-01-01", "end": "2026-11-01"}, "end"),  # over 400 days
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-02-30"}, "end"),
    ],
)
def test_bad_stats_ranges_are_422(api: httpx.Client, params: dict, field: str) -> None:
    response = api.get("/api/admin/stats", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error" and error["message"].startswith(field)
