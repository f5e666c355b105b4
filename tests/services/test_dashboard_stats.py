"""The dashboard's figures against a hand-built data set, on a real SQLite file, in a zone west of UTC
(America/Los_Angeles, UTC-8 in November): calls, refusals and blocked requests on both sides of a local
midnight that is 08:00 UTC."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlmodel import Session

from app.models import Channel, User
from services.errors import InvalidInput
from services.logs import CallRecord, LogWriter
from services.rollups import _store_zone, bucket_value, latency_bucket, rebuild_rollups
from services.stats import dashboard, parse_range, percentiles
from services.stats_counters import BLOCKED, REFUSAL_CHANNEL, REFUSAL_GUEST, REFUSAL_USER, DailyCounters
from tests.helpers import migrated_engine

LA = ZoneInfo("America/Los_Angeles")
MIDNIGHT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # 2026-11-20 00:00 in Los Angeles
BEFORE = MIDNIGHT - timedelta(minutes=30)  # 2026-11-19 23:30 local
AFTER = MIDNIGHT + timedelta(minutes=30)  # 2026-11-20 00:30 local
NOW = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # noon of 2026-11-20 local
DAY1, DAY2 = date(2026, 11, 19), date(2026, 11, 20)


def _call(
    at: datetime,
    *,
    user: int | None = None,
    ip: str = "10.0.0.1",
    channel: int | None = 1,
    model: str = "m-a",
    status: str = "ok",
    error: str | None = None,
    duration: int = 100,
    ttft: int | None = None,
    tokens: tuple[int, int] = (10, 20),
) -> CallRecord:
    return CallRecord(
        user_id=user,
        username=None if user is None else f"u{user}@example.com",
        ip_address=ip,
        channel_id=channel,
        model_id=model,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        created_at=at,
        status=status,
        tokens_estimated=False,
        duration_ms=duration,
        error=error,
        ttft_ms=ttft,
    )


# day 1 (before local midnight): 3 calls; day 2 (after): 5 calls
DAY1_CALLS = [
    _call(BEFORE, user=1, duration=100, ttft=40),
    _call(BEFORE, user=1, duration=200, ttft=50),
    _call(
        BEFORE, ip="10.0.0.9", channel=2, model="m-b", status="upstream_error", error="http_5xx", duration=50
    ),
]
DAY2_CALLS = [
    _call(AFTER, user=1, duration=1000, ttft=300, tokens=(1, 2)),
    _call(AFTER, user=2, duration=1000, ttft=300, tokens=(1, 2)),
    _call(AFTER, user=2, channel=2, duration=2000, tokens=(1, 2)),
    _call(AFTER, ip="10.0.0.7", channel=2, status="timeout", error="timeout_first_event", duration=30000),
    _call(AFTER, ip="10.0.0.7", channel=None, status="client_aborted", duration=10, tokens=(0, 0)),
]


@pytest.fixture
def engine(tmp_path: Path):
    engine = migrated_engine(tmp_path / "chat.db")
    with Session(engine) as session:
        session.add(User(id=1, email="one@example.com", password_hash="x"))
        session.add(User(id=2, email="two@example.com", password_hash="x"))
        session.add(Channel(id=1, name="主渠道", base_url="http://a", api_key="k", model_id="m-a"))
        session.add(Channel(id=2, name="备用", base_url="http://b", api_key="k", model_id="m-b"))
        session.commit()
    writer = LogWriter(engine, LA, journal_dir=tmp_path / "journal", batch_size=3, linger_seconds=0).start()
    for call in DAY1_CALLS + DAY2_CALLS:
        writer.record(call)
    assert writer.flush()
    writer.close()
    counters = DailyCounters(engine, LA)
    counters.add(REFUSAL_GUEST, BEFORE)
    counters.add(REFUSAL_GUEST, AFTER)
    counters.add(REFUSAL_GUEST, AFTER)
    counters.add(REFUSAL_USER, AFTER)
    counters.add(REFUSAL_CHANNEL, BEFORE)
    counters.add(BLOCKED, BEFORE, amount=4)
    counters.add(BLOCKED, AFTER)
    assert counters.flush()
    # a second instance adds to the same rows instead of overwriting them
    other = DailyCounters(engine, LA)
    other.add(REFUSAL_GUEST, AFTER)
    assert other.flush()
    yield engine
    engine.dispose()


def _stats(engine, start: date | None = None, end: date | None = None) -> dict:
    with Session(engine) as session:
        return dashboard(session=session, zone=LA, now=NOW, start=start, end=end)


def test_one_day_after_the_local_midnight(engine) -> None:
    stats = _stats(engine, DAY2, DAY2)
    span = stats["range"]
    assert span["calls"] == 5 and span["tokens"] == {"prompt": 13, "completion": 26}
    assert span["active_users"] == 3  # users 1 and 2, guest 10.0.0.7
    assert span["models"] == [{"model_id": "m-a", "calls": 5}]
    assert stats["success_rate"] == 0.6
    assert stats["refusals"] == {"guest": 3, "user": 1, "channel": 0}
    assert stats["blocked_attempts"] == 1
    assert stats["errors"] == {"client_aborted": 1, "timeout_first_event": 1}
    assert stats["per_channel"] == [
        {"channel_id": 2, "name": "备用", "calls": 2, "errors": 1},
        {"channel_id": 1, "name": "主渠道", "calls": 2, "errors": 0},
        {"channel_id": None, "name": "（无渠道）", "calls": 1, "errors": 0},
    ]
    assert stats["top_users"] == [
        {"user_id": 2, "email": "two@example.com", "calls": 2},
        {"user_id": 1, "email": "one@example.com", "calls": 1},
    ]
    assert stats["top_ips"] == [{"ip_address": "10.0.0.7", "calls": 2}]
    # durations 10, 1000, 1000, 2000, 30000: p50 is the 3rd (1000), p95 the 5th (30000)
    assert stats["duration_ms"] == {
        "p50": bucket_value(latency_bucket(1000)),
        "p95": bucket_value(latency_bucket(30000)),
    }
    assert stats["ttft_ms"] == {
        "p50": bucket_value(latency_bucket(300)),
        "p95": bucket_value(latency_bucket(300)),
    }
    assert [point["date"] for point in stats["trend"]] == ["2026-11-20"]


def test_the_day_before_and_both_days(engine) -> None:
    day1 = _stats(engine, DAY1, DAY1)
    assert day1["range"]["calls"] == 3 and day1["success_rate"] == round(2 / 3, 4)
    assert day1["refusals"] == {"guest": 1, "user": 0, "channel": 1}
    assert day1["blocked_attempts"] == 4
    assert day1["errors"] == {"http_5xx": 1}
    assert day1["top_ips"] == [{"ip_address": "10.0.0.9", "calls": 1}]
    assert day1["ttft_ms"]["p50"] == bucket_value(latency_bucket(40))

    both = _stats(engine, DAY1, DAY2)
    assert both["range"]["calls"] == 8 and both["range"]["active_users"] == 4
    assert both["refusals"] == {"guest": 4, "user": 1, "channel": 1}
    assert both["blocked_attempts"] == 5
    assert both["success_rate"] == round(5 / 8, 4)
    trend = {point["date"]: point for point in both["trend"]}
    assert list(trend) == ["2026-11-19", "2026-11-20"]
    first, second = trend["2026-11-19"], trend["2026-11-20"]
    assert first["calls"] == 3 and first["tokens"] == {"prompt": 30, "completion": 60}
    assert first["ok"] == 2 and first["errors"] == 1 and first["blocked_attempts"] == 4
    assert first["refusals"] == {"guest": 1, "user": 0, "channel": 1}
    assert second["calls"] == 5 and second["tokens"] == {"prompt": 13, "completion": 26}
    assert second["refusals"] == {"guest": 3, "user": 1, "channel": 0} and second["blocked_attempts"] == 1
    # durations of day 1: 50, 100, 200 → p50 100, p95 200
    assert first["duration_ms"] == {
        "p50": bucket_value(latency_bucket(100)),
        "p95": bucket_value(latency_bucket(200)),
    }


def test_wave_one_fields_and_the_default_trend(engine) -> None:
    stats = _stats(engine)
    assert stats["time_zone"] == "America/Los_Angeles"
    assert stats["calls"]["today"] == 5 and stats["calls"]["month"] == 8
    assert stats["active_users"]["today"] == 3
    assert len(stats["trend"]) == 7 and stats["trend"][-1]["date"] == "2026-11-20"
    assert stats["range"] == {**stats["range"], "start": "2026-11-20", "end": "2026-11-20", "calls": 5}


def test_a_rebuild_gives_the_same_figures_and_keeps_refusals(engine) -> None:
    before = _stats(engine, DAY1, DAY2)
    assert rebuild_rollups(engine, LA) == 8
    assert _stats(engine, DAY1, DAY2) == before


def test_the_migration_backfill_matches_the_writer(engine) -> None:
    """Rows already in chat_logs (and blocked_attempts) when revision 0006 arrives are counted as the
    writer counts them; older rows have no time to first event, refusals were never counted."""
    from alembic import command

    from app.migrate import alembic_config, migration_engine

    written = _stats(engine, DAY1, DAY2)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO blocked_attempts (ip_address, path, matched_rule, created_at, last_seen_at, "
                "hits) "
                "VALUES ('10.9.9.9', '/', '10.9.9.9', :at, :at, 3)"
            ),
            {"at": BEFORE.replace(tzinfo=None).isoformat(" ")},
        )
    with Session(engine) as session:
        _store_zone(session, LA.key)  # the zone the rollups were built for: the revision's days
    migrations = migration_engine(str(engine.url))
    try:
        with migrations.begin() as connection:
            command.downgrade(alembic_config(connection), "0004_users_keys_audit")
        with migrations.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
    finally:
        migrations.dispose()
    migrated = _stats(engine, DAY1, DAY2)
    assert migrated["ttft_ms"] == {"p50": None, "p95": None}
    for key in ("range", "success_rate", "duration_ms", "errors", "per_channel", "top_users", "top_ips"):
        assert migrated[key] == written[key], key
    assert migrated["refusals"] == {"guest": 0, "user": 0, "channel": 0}
    assert migrated["blocked_attempts"] == 3
    assert [p["blocked_attempts"] for p in migrated["trend"]] == [3, 0]


def test_percentiles_are_within_the_bucket_bound() -> None:
    assert percentiles({}) == {"p50": None, "p95": None}
    for value in (1, 2, 3, 7, 10, 99, 100, 101, 999, 1234, 65_432, 600_000):
        estimate = bucket_value(latency_bucket(value))
        assert abs(estimate - value) <= value * (math.sqrt(1.1) - 1) + 0.5, value
    assert bucket_value(latency_bucket(0)) == 0
    values = list(range(1, 1001))
    histogram: dict[int, int] = {}
    for value in values:
        histogram[latency_bucket(value)] = histogram.get(latency_bucket(value), 0) + 1
    result = percentiles(histogram)
    assert abs(result["p50"] - 500) <= 500 * 0.049 + 0.5
    assert abs(result["p95"] - 950) <= 950 * 0.049 + 0.5


@pytest.mark.parametrize(
    ("start", "end", "field", "words"),
    [
        ("2026-11-20", "2026-11-19", "end", "早于"),
        ("2025-01-01", "2026-11-20", "end", "400"),
        ("2026-13-01", None, "start", "不是有效日期"),
        (None, "yesterday", "end", "不是有效日期"),
    ],
)
def test_bad_ranges_name_their_field(start: str | None, end: str | None, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_range(start, end, zone=LA, now=NOW)
    assert caught.value.message.startswith(f"{field}：") and words in caught.value.message


def test_good_ranges() -> None:
    assert parse_range(None, None, zone=LA, now=NOW) == (DAY2, DAY2)
    assert parse_range("2026-11-01", None, zone=LA, now=NOW) == (date(2026, 11, 1), DAY2)
    assert parse_range(None, "2026-11-01", zone=LA, now=NOW) == (date(2026, 11, 1), date(2026, 11, 1))
    first = DAY2 - timedelta(days=399)
    assert parse_range(first.isoformat(), DAY2.isoformat(), zone=LA, now=NOW) == (first, DAY2)


def test_a_deleted_channel_and_no_channel_are_named_in_the_viewers_language(engine) -> None:
    with Session(engine) as session:
        session.delete(session.get(Channel, 2))
        session.commit()
        english = dashboard(session=session, zone=LA, now=NOW, start=DAY2, end=DAY2, language="en")
    assert [row["name"] for row in english["per_channel"]] == ["#2 (deleted)", "主渠道", "(no channel)"]
    chinese = _stats(engine, DAY2, DAY2)
    assert [row["name"] for row in chinese["per_channel"]] == ["#2（已删除）", "主渠道", "（无渠道）"]
