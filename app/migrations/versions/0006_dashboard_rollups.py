"""Dashboard rollups: counters per day (successes, failures by reason, rate-limit refusals, blocked
requests), calls per day and channel, latency histograms per day, calls per day and caller; and the
call log's time to first event.

Revision ID: 0006_dashboard_rollups
Revises: 0005_users_autoincrement
Create Date: 2026-11-29

The new tables are filled from the rows already in ``chat_logs`` (and ``blocked_attempts``) here, read
in id order in batches of 50,000 and summed in memory per day (what is kept grows with days, channels,
reasons and callers, never with calls), so a database of 1M calls upgrades in seconds. Days are local
days in the zone the existing rollups were built for (``system_config.stats_time_zone``; else ``TZ``;
else UTC): if the app starts with another ``TZ`` it rebuilds every rollup anyway. Calls logged before
this revision have no time to first event; a blocked attempt row counts all its hits on its first day.
Written out here rather than taken from ``app.models``, so that this revision means the same thing
forever.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from alembic import op

revision: str = "0006_dashboard_rollups"
down_revision: str | None = "0005_users_autoincrement"
branch_labels: str | None = None
depends_on: str | None = None

BATCH = 50_000
FAILED = ("upstream_error", "timeout")
_LOG_RATIO = math.log(1.1)  # services/rollups.py: bucket k holds [1.1**k, 1.1**(k+1)) ms


def _bucket(ms: int) -> int:
    return -1 if ms <= 0 else int(math.log(ms) / _LOG_RATIO)


def _zone(connection: sa.Connection) -> ZoneInfo:
    stored = connection.execute(
        sa.text("SELECT value FROM system_config WHERE key = 'stats_time_zone'")
    ).scalar()
    for name in (stored, os.environ.get("TZ"), "UTC"):
        if name:
            try:
                return ZoneInfo(name.lstrip(":"))
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _local_day(at: datetime, zone: ZoneInfo) -> date:
    if at.tzinfo is None:  # SQLite gives back the stored UTC time without its zone
        at = at.replace(tzinfo=UTC)
    return at.astimezone(zone).date()


def upgrade() -> None:
    op.add_column("chat_logs", sa.Column("ttft_ms", sa.Integer))
    counts = op.create_table(
        "stats_daily_counts",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("name", sa.String(48), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    channels = op.create_table(
        "stats_daily_channels",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("channel_id", sa.Integer, primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("ok", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
    )
    latency = op.create_table(
        "stats_daily_latency",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("metric", sa.String(1), primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )
    callers = op.create_table(
        "stats_daily_callers",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("actor", sa.String(80), primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )
    _backfill(op.get_bind(), counts, channels, latency, callers)


def _backfill(
    connection: sa.Connection, counts: sa.Table, channels: sa.Table, latency: sa.Table, callers: sa.Table
) -> None:
    zone = _zone(connection)
    logs = sa.table(
        "chat_logs",
        sa.column("id", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("user_id", sa.Integer),
        sa.column("ip_address", sa.String),
        sa.column("channel_id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("error", sa.String),
        sa.column("duration_ms", sa.Integer),
    )
    count_sums: dict[tuple[date, str], int] = defaultdict(int)
    channel_sums: dict[tuple[date, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    latency_sums: dict[tuple[date, int], int] = defaultdict(int)
    caller_sums: dict[tuple[date, str], int] = defaultdict(int)
    days: dict[int, date] = {}  # quarter hours of the UTC clock → local day
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(
                logs.c.id,
                logs.c.created_at,
                logs.c.user_id,
                logs.c.ip_address,
                logs.c.channel_id,
                logs.c.status,
                logs.c.error,
                logs.c.duration_ms,
            )
            .where(logs.c.id > last_id)
            .order_by(logs.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last_id = rows[-1][0]
        for _, created_at, user_id, ip, channel_id, status, error, duration in rows:
            at = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
            quarter = int(at.timestamp()) // 900
            day = days.get(quarter)
            if day is None:
                day = days[quarter] = at.astimezone(zone).date()
            sums = channel_sums[(day, channel_id or 0)]
            sums[0] += 1
            if status == "ok":
                sums[1] += 1
                count_sums[(day, "ok")] += 1
            else:
                if status in FAILED:
                    sums[2] += 1
                count_sums[(day, "error:" + (error or status))] += 1
            if duration is not None:
                latency_sums[(day, _bucket(duration))] += 1
            caller_sums[(day, f"ip:{ip}" if user_id is None else f"u:{user_id}")] += 1
    attempts = connection.execute(sa.text("SELECT created_at, hits FROM blocked_attempts")).all()
    for created_at, hits in attempts:
        at = created_at if isinstance(created_at, datetime) else datetime.fromisoformat(str(created_at))
        count_sums[(_local_day(at, zone), "blocked")] += int(hits or 1)
    if count_sums:
        op.bulk_insert(counts, [{"day": d, "name": n, "count": c} for (d, n), c in count_sums.items()])
    if channel_sums:
        op.bulk_insert(
            channels,
            [
                {"day": d, "channel_id": ch, "calls": c, "ok": ok, "errors": e}
                for (d, ch), (c, ok, e) in channel_sums.items()
            ],
        )
    if latency_sums:
        op.bulk_insert(
            latency,
            [{"day": d, "metric": "d", "bucket": b, "calls": c} for (d, b), c in latency_sums.items()],
        )
    if caller_sums:
        op.bulk_insert(callers, [{"day": d, "actor": a, "calls": c} for (d, a), c in caller_sums.items()])


def downgrade() -> None:
    for name in ("stats_daily_callers", "stats_daily_latency", "stats_daily_channels", "stats_daily_counts"):
        op.drop_table(name)
    op.drop_column("chat_logs", "ttft_ms")
