"""Dashboard statistics from daily rollups kept in step with the call log, so their cost depends on
the number of days and models shown, not on the size of ``chat_logs``.

Days are local days in ``TZ``. The rollups remember which zone they were built for; after a change of
``TZ`` they are rebuilt once from ``chat_logs`` in the background.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_
from sqlalchemy import select as sa_select  # more columns than sqlmodel.select types
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from app.models import (
    Channel,
    ChatLog,
    DailyCaller,
    DailyChannelStats,
    DailyCount,
    DailyLatency,
    DailyModelStats,
    PeriodActor,
    SystemConfig,
    User,
    utcnow,
)
from services.errors import InvalidInput
from services.i18n import FALLBACK, translate

log = logging.getLogger("pyaichat.stats")
ZONE_KEY = "stats_time_zone"
REBUILD_BATCH = 20_000


def period_starts(day: date) -> tuple[tuple[str, date], ...]:
    """The day, its week (from Monday) and its month, each by its first day."""
    return (("d", day), ("w", day - timedelta(days=day.weekday())), ("m", day.replace(day=1)))


Actor = tuple[str, date, str]  # (period kind, period start, "u:<id>" or "ip:<address>")
_BUCKET_SECONDS = 900  # every UTC offset in use, and every change of one, falls on a quarter hour
FAILED_STATUSES = frozenset({"upstream_error", "timeout"})  # the service failed the caller
MAX_RANGE_DAYS = 400
TOP_CALLERS = 10

# Latency histograms: bucket k holds [1.1**k, 1.1**(k+1)) ms, bucket -1 holds 0 ms. A percentile is the
# exact nearest-rank bucket's geometric middle 1.1**(k+0.5): within sqrt(1.1)-1 = 4.9 % (and 0.5 ms of
# rounding) of the true nearest-rank value; 10 minutes is bucket 139, so a day has at most ~141 rows.
LATENCY_RATIO = 1.1
_LOG_RATIO = math.log(LATENCY_RATIO)


def latency_bucket(ms: int) -> int:
    return -1 if ms <= 0 else int(math.log(ms) / _LOG_RATIO)


def bucket_value(bucket: int) -> int:
    return 0 if bucket < 0 else round(LATENCY_RATIO ** (bucket + 0.5))


def percentiles(histogram: dict[int, int]) -> dict[str, int | None]:
    """p50 and p95 (nearest rank) of a bucket → count histogram; None without calls."""
    total = sum(histogram.values())
    result: dict[str, int | None] = {"p50": None, "p95": None}
    if not total:
        return result
    ranks = {"p50": math.ceil(0.5 * total), "p95": math.ceil(0.95 * total)}
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        for name, rank in ranks.items():
            if result[name] is None and seen >= rank:
                result[name] = bucket_value(bucket)
    return result


class LogRow(Protocol):
    """What a rollup reads of a call: a ``CallRecord`` on its way in, or a stored ``chat_logs`` row."""

    @property
    def created_at(self) -> datetime: ...
    @property
    def model_id(self) -> str: ...
    @property
    def prompt_tokens(self) -> int | None: ...
    @property
    def completion_tokens(self) -> int | None: ...
    @property
    def user_id(self) -> int | None: ...
    @property
    def ip_address(self) -> str: ...
    @property
    def channel_id(self) -> int | None: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def duration_ms(self) -> int | None: ...
    @property
    def ttft_ms(self) -> int | None: ...


@dataclass
class Rollup:
    """What a batch of log rows adds to the daily tables."""

    models: dict[tuple[date, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    # calls per local day and caller, a user by id (int) and a guest by IP (str); spread over periods
    # on demand
    day_callers: dict[date, dict[int | str, int]] = field(default_factory=lambda: defaultdict(dict))
    channels: dict[tuple[date, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    counts: dict[tuple[date, str], int] = field(default_factory=lambda: defaultdict(int))
    latency: dict[tuple[date, str, int], int] = field(default_factory=lambda: defaultdict(int))
    # quarter hour of the UTC clock → local day: a batch's rows share a few of them
    _days: dict[int, date] = field(default_factory=dict, repr=False)

    def add_rows(self, rows: Iterable[LogRow], zone: ZoneInfo) -> None:
        """Count ``rows`` (one loop with everything looked up once: the writer's per-row cost)."""
        models, callers, days = self.models, self.day_callers, self._days
        channels, counts, latency, failed = self.channels, self.counts, self.latency, FAILED_STATUSES
        for row in rows:
            created_at = row.created_at
            bucket = int(created_at.timestamp()) // _BUCKET_SECONDS
            day = days.get(bucket)
            if day is None:
                day = days[bucket] = created_at.astimezone(zone).date()
            totals = models[(day, row.model_id)]
            totals[0] += 1
            totals[1] += row.prompt_tokens or 0
            totals[2] += row.completion_tokens or 0
            user_id = row.user_id
            day_calls = callers[day]
            caller = row.ip_address if user_id is None else user_id
            day_calls[caller] = day_calls.get(caller, 0) + 1
            status = row.status
            per_channel = channels[(day, row.channel_id or 0)]
            per_channel[0] += 1
            if status == "ok":
                per_channel[1] += 1
                counts[(day, "ok")] += 1
            else:
                if status in failed:
                    per_channel[2] += 1
                counts[(day, "error:" + (row.error or status))] += 1
            duration = row.duration_ms
            if duration is not None:
                latency[(day, "d", latency_bucket(duration))] += 1
            ttft = row.ttft_ms
            if ttft is not None:
                latency[(day, "t", latency_bucket(ttft))] += 1

    @property
    def actors(self) -> set[Actor]:
        """Every (period kind, period start, "u:<id>" or "ip:<address>") the rows touched."""
        actors: set[Actor] = set()
        for day, callers in self.day_callers.items():
            names = [_actor(caller) for caller in callers]
            for kind, start in period_starts(day):
                actors.update((kind, start, name) for name in names)
        return actors

    def apply(self, connection: Connection, *, known_actors: set[Actor] | None = None) -> set[Actor]:
        """Upsert into the rollup tables inside the caller's transaction (one executemany per table: a
        multi-row VALUES statement would be compiled anew for every batch). ``known_actors``: period
        actors already stored, which need no second insert. Returns every period actor of the rows."""
        if not self.models:
            return set()
        dialect = connection.dialect.name
        connection.execute(
            _increment(
                dialect, DailyModelStats, ("day", "model_id"), ("calls", "prompt_tokens", "completion_tokens")
            ),
            [
                {"day": day, "model_id": model, "calls": c, "prompt_tokens": p, "completion_tokens": t}
                for (day, model), (c, p, t) in self.models.items()
            ],
        )
        connection.execute(
            _increment(dialect, DailyChannelStats, ("day", "channel_id"), ("calls", "ok", "errors")),
            [
                {"day": day, "channel_id": channel, "calls": c, "ok": ok, "errors": e}
                for (day, channel), (c, ok, e) in self.channels.items()
            ],
        )
        upsert_counts(connection, self.counts)
        if self.latency:
            connection.execute(
                _increment(dialect, DailyLatency, ("day", "metric", "bucket"), ("calls",)),
                [
                    {"day": day, "metric": metric, "bucket": bucket, "calls": n}
                    for (day, metric, bucket), n in self.latency.items()
                ],
            )
        connection.execute(
            _increment(dialect, DailyCaller, ("day", "actor"), ("calls",)),
            [
                {"day": day, "actor": _actor(caller), "calls": n}
                for day, callers in self.day_callers.items()
                for caller, n in callers.items()
            ],
        )
        actors = self.actors
        new = actors - known_actors if known_actors else actors
        if new:
            connection.execute(
                _insert_new(dialect, PeriodActor),
                [{"kind": kind, "start": start, "actor": actor} for kind, start, actor in new],
            )
        return actors


def _actor(caller: int | str) -> str:
    return f"ip:{caller}" if isinstance(caller, str) else f"u:{caller}"


MODEL_SUMS = ("calls", "prompt_tokens", "completion_tokens")


@functools.cache
def _increment(dialect: str, table: Any, keys: tuple[str, ...], sums: tuple[str, ...]) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET each sum = sum + the new value: rows only ever grow,
    so writers of several instances add up instead of overwriting each other. Built once per dialect
    and table: building it (``excluded`` above all) cost the log writer about 1 ms of CPU per call."""
    stmt = _dialect_insert(dialect)(table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: getattr(table, name) + getattr(stmt.excluded, name) for name in sums},
    )


@functools.cache
def _insert_new(dialect: str, table: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING, built once per dialect and table."""
    return _dialect_insert(dialect)(table).on_conflict_do_nothing()


def upsert_counts(connection: Connection, counts: dict[tuple[date, str], int]) -> None:
    """Add ``counts`` ((day, name) → n) to ``stats_daily_counts``."""
    if counts:
        connection.execute(
            _increment(connection.dialect.name, DailyCount, ("day", "name"), ("count",)),
            [{"day": day, "name": name, "count": n} for (day, name), n in counts.items()],
        )


def _dialect_insert(dialect: str) -> Callable[..., Any]:
    """The dialect's INSERT, which has ``on_conflict_do_update`` (an upsert) on SQLite and PostgreSQL."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


# ---- rebuilding after a change of TZ ---------------------------------------------------------------


def _stored_zone(session: Session) -> str | None:
    row = session.exec(select(SystemConfig).where(SystemConfig.key == ZONE_KEY)).first()
    return row.value if row else None


def rollups_need_rebuild(engine: Engine, zone_name: str) -> bool:
    with Session(engine) as session:
        stored = _stored_zone(session)
        if stored == zone_name:
            return False
        if stored is None and session.exec(select(ChatLog.id).limit(1)).first() is None:
            _store_zone(session, zone_name)  # a fresh database: nothing to rebuild
            return False
    return True


def _store_zone(session: Session, zone_name: str) -> None:
    row = session.exec(select(SystemConfig).where(SystemConfig.key == ZONE_KEY)).first()
    row = row or SystemConfig(key=ZONE_KEY, value=zone_name, description="统计所用时区（内部）")
    row.value = zone_name
    row.updated_at = utcnow()
    session.add(row)
    session.commit()


def rebuild_rollups(engine: Engine, zone: ZoneInfo) -> int:
    """Recompute the daily tables from ``chat_logs``; returns the number of log rows read.

    The reset and the high-water mark share one transaction, so rows the log writer adds meanwhile
    (with higher ids, and their own rollup upserts) are neither lost nor counted twice.
    """
    with engine.begin() as connection:
        connection.execute(delete(DailyModelStats))
        connection.execute(delete(PeriodActor))
        connection.execute(delete(DailyChannelStats))
        connection.execute(delete(DailyLatency))
        connection.execute(delete(DailyCaller))
        # the counters of calls only: refusals and blocked requests are not in chat_logs
        connection.execute(
            delete(DailyCount).where(
                or_(col(DailyCount.name) == "ok", col(DailyCount.name).startswith("error:"))
            )
        )
        high = connection.execute(select(func.max(ChatLog.id))).scalar() or 0
    done, last_id = 0, 0
    while last_id < high:
        with engine.begin() as connection:
            rows = connection.execute(
                sa_select(
                    col(ChatLog.id),
                    col(ChatLog.created_at),
                    col(ChatLog.model_id),
                    col(ChatLog.prompt_tokens),
                    col(ChatLog.completion_tokens),
                    col(ChatLog.user_id),
                    col(ChatLog.ip_address),
                    col(ChatLog.channel_id),
                    col(ChatLog.status),
                    col(ChatLog.error),
                    col(ChatLog.duration_ms),
                    col(ChatLog.ttft_ms),
                )
                .where(col(ChatLog.id) > last_id, col(ChatLog.id) <= high)
                .order_by(col(ChatLog.id))
                .limit(REBUILD_BATCH)
            ).all()
            if not rows:
                break
            rollup = Rollup()
            rollup.add_rows(rows, zone)
            rollup.apply(connection)
            last_id = rows[-1].id
            done += len(rows)
    with Session(engine) as session:
        _store_zone(session, zone.key)
    return done


def rebuild_in_background(engine: Engine, zone: ZoneInfo) -> threading.Thread | None:
    if not rollups_need_rebuild(engine, zone.key):
        return None

    def run() -> None:
        count = rebuild_rollups(engine, zone)
        log.info("statistics rebuilt for time zone %s from %d log rows", zone.key, count)

    thread = threading.Thread(target=run, name="pyaichat-stats-rebuild", daemon=True)
    thread.start()
    return thread


# ---- the dashboard ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Periods:
    today: date
    week_start: date  # Monday
    month_start: date
    trend_start: date  # the first of the last 7 days

    @classmethod
    def at(cls, now: datetime, zone: ZoneInfo) -> Periods:
        today = now.astimezone(zone).date()
        return cls(
            today, today - timedelta(days=today.weekday()), today.replace(day=1), today - timedelta(days=6)
        )


def _sum(rows: Iterable[DailyModelStats], since: date) -> dict[str, int]:
    selected = [r for r in rows if r.day >= since]
    return {
        "calls": sum(r.calls for r in selected),
        "prompt_tokens": sum(r.prompt_tokens for r in selected),
        "completion_tokens": sum(r.completion_tokens for r in selected),
    }


def parse_range(
    start: str | None, end: str | None, *, zone: ZoneInfo, now: datetime | None = None
) -> tuple[date, date]:
    """A range of local days from ``YYYY-MM-DD`` texts (inclusive both ends; either may be missing:
    no end is today, no start is the end); raises InvalidInput naming the field."""
    today = (now or utcnow()).astimezone(zone).date()

    def parse(name: str, text: str | None) -> date | None:
        value = (text or "").strip()
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidInput("errors.date_invalid", name=name, value=value[:40]) from None

    first, last = parse("start", start), parse("end", end)
    last = last or today
    first = first or last
    if last < first:
        raise InvalidInput("errors.end_date_before_start")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput("errors.date_range_days", count=MAX_RANGE_DAYS)
    return first, last


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def dashboard(
    *,
    session: Session,
    zone: ZoneInfo,
    now: datetime | None = None,
    start: date | None = None,
    end: date | None = None,
    trend_start: date | None = None,
    language: str = FALLBACK,
) -> dict[str, Any]:
    """The wave-1 figures (today, this week, this month) and, for the range ``start``..``end`` (local
    days, default today), everything else. The trend covers the range when one is given, otherwise the
    last 7 days; ``trend_start`` moves its first day (the page shows a week around a one-day range).
    A deleted channel and the calls without one are named in ``language``."""
    periods = Periods.at(now or utcnow(), zone)
    first = min(periods.week_start, periods.month_start, periods.trend_start)
    rows = list(session.exec(select(DailyModelStats).where(col(DailyModelStats.day) >= first)).all())
    spans = {"today": periods.today, "week": periods.week_start, "month": periods.month_start}
    totals = {name: _sum(rows, since) for name, since in spans.items()}
    kinds = {"today": "d", "week": "w", "month": "m"}
    active = {
        name: session.exec(
            select(func.count()).where(PeriodActor.kind == kinds[name], PeriodActor.start == since)
        ).one()
        for name, since in spans.items()
    }
    per_model: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.day >= periods.month_start:
            per_model[row.model_id] += row.calls
    range_given = start is not None or end is not None
    last = end or periods.today
    begin = start or last
    trend_first = trend_start or (begin if range_given else periods.trend_start)
    trend_last = last if range_given else periods.today
    figures = range_figures(
        session, begin, last, trend_first=trend_first, trend_last=trend_last, language=language
    )
    trend = figures.pop("_trend")
    return {
        "time_zone": zone.key,
        "calls": {name: value["calls"] for name, value in totals.items()},
        "tokens": {
            name: {"prompt": v["prompt_tokens"], "completion": v["completion_tokens"]}
            for name, v in totals.items()
        },
        "active_users": active,
        "models": [{"model_id": m, "calls": c} for m, c in sorted(per_model.items(), key=lambda kv: -kv[1])],
        "trend": trend,
        **figures,
    }


_REFUSALS = {"guest": "refusal_guest", "user": "refusal_user", "channel": "refusal_channel"}


def range_figures(
    session: Session,
    begin: date,
    last: date,
    *,
    trend_first: date,
    trend_last: date,
    language: str = FALLBACK,
) -> dict[str, Any]:
    """Everything about the days ``begin``..``last`` from the rollups (each query reads rows per day
    and model / channel / counter / latency bucket / caller, never per call), plus the per-day points
    of ``trend_first``..``trend_last`` under ``_trend``."""
    lo, hi = min(begin, trend_first), max(last, trend_last)

    def in_range(day: date) -> bool:
        return begin <= day <= last

    day_col = col(DailyModelStats.day)
    model_rows = session.execute(
        sa_select(
            day_col,
            col(DailyModelStats.model_id),
            col(DailyModelStats.calls),
            col(DailyModelStats.prompt_tokens),
            col(DailyModelStats.completion_tokens),
        ).where(day_col >= lo, day_col <= hi)
    ).all()
    count_rows = session.execute(
        sa_select(col(DailyCount.day), col(DailyCount.name), col(DailyCount.count)).where(
            col(DailyCount.day) >= lo, col(DailyCount.day) <= hi
        )
    ).all()
    latency_rows = session.execute(
        sa_select(
            col(DailyLatency.day), col(DailyLatency.metric), col(DailyLatency.bucket), col(DailyLatency.calls)
        ).where(col(DailyLatency.day) >= lo, col(DailyLatency.day) <= hi)
    ).all()

    per_day: dict[date, dict[str, Any]] = {
        day: {
            "calls": 0,
            "prompt": 0,
            "completion": 0,
            "counts": defaultdict(int),
            "d": defaultdict(int),
            "t": defaultdict(int),
        }
        for day in _days(lo, hi)
    }
    models: dict[str, int] = defaultdict(int)
    for day, model_id, calls, prompt, completion in model_rows:
        point = per_day[day]
        point["calls"] += calls
        point["prompt"] += prompt
        point["completion"] += completion
        if in_range(day):
            models[model_id] += calls
    for day, name, count in count_rows:
        per_day[day]["counts"][name] += count
    for day, metric, bucket, calls in latency_rows:
        per_day[day][metric][bucket] += calls

    calls = prompt = completion = 0
    counts: dict[str, int] = defaultdict(int)
    durations: dict[int, int] = defaultdict(int)
    ttfts: dict[int, int] = defaultdict(int)
    for day in _days(begin, last):
        point = per_day[day]
        calls += point["calls"]
        prompt += point["prompt"]
        completion += point["completion"]
        for name, n in point["counts"].items():
            counts[name] += n
        for bucket, n in point["d"].items():
            durations[bucket] += n
        for bucket, n in point["t"].items():
            ttfts[bucket] += n

    def trend_point(day: date) -> dict[str, Any]:
        point = per_day[day]
        day_counts = point["counts"]
        return {
            "date": day.isoformat(),
            "calls": point["calls"],
            "tokens": {"prompt": point["prompt"], "completion": point["completion"]},
            "ok": day_counts.get("ok", 0),
            "errors": sum(n for name, n in day_counts.items() if name.startswith("error:")),
            "refusals": {key: day_counts.get(name, 0) for key, name in _REFUSALS.items()},
            "blocked_attempts": day_counts.get("blocked", 0),
            "duration_ms": percentiles(point["d"]),
            "ttft_ms": percentiles(point["t"]),
        }

    channel_rows = session.execute(
        sa_select(
            col(DailyChannelStats.channel_id),
            func.sum(DailyChannelStats.calls),
            func.sum(DailyChannelStats.errors),
        )
        .where(col(DailyChannelStats.day) >= begin, col(DailyChannelStats.day) <= last)
        .group_by(col(DailyChannelStats.channel_id))
    ).all()
    ids = [channel_id for channel_id, _, _ in channel_rows if channel_id]
    names = (
        dict(
            session.execute(
                sa_select(col(Channel.id), col(Channel.name)).where(col(Channel.id).in_(ids))
            ).all()
        )
        if ids
        else {}
    )
    ordered = sorted(
        ((int(channel_id or 0), int(n), int(e)) for channel_id, n, e in channel_rows),
        key=lambda row: (-row[1], -row[2], row[0]),
    )
    per_channel = [
        {
            "channel_id": channel_id or None,
            "name": (
                names[channel_id]
                if channel_id in names
                else translate("stats.channel_deleted", language, id=channel_id)
            )
            if channel_id
            else translate("stats.no_channel", language),
            "calls": n,
            "errors": e,
        }
        for channel_id, n, e in ordered
    ]

    def top(prefix: str) -> list[tuple[str, int]]:
        total = func.sum(DailyCaller.calls).label("total")
        query = (
            sa_select(col(DailyCaller.actor), total)
            .where(
                col(DailyCaller.day) >= begin,
                col(DailyCaller.day) <= last,
                col(DailyCaller.actor).startswith(prefix),
            )
            .group_by(col(DailyCaller.actor))
            .order_by(total.desc(), col(DailyCaller.actor))
            .limit(TOP_CALLERS)
        )
        return [(actor[len(prefix) :], int(n)) for actor, n in session.execute(query).all()]

    users = top("u:")
    user_ids = [int(uid) for uid, _ in users if uid.isdigit()]
    emails = (
        dict(
            session.execute(sa_select(col(User.id), col(User.email)).where(col(User.id).in_(user_ids))).all()
        )
        if user_ids
        else {}
    )
    active_range = session.execute(
        sa_select(func.count(func.distinct(DailyCaller.actor))).where(
            col(DailyCaller.day) >= begin, col(DailyCaller.day) <= last
        )
    ).scalar_one()
    ok = counts.get("ok", 0)
    return {
        "range": {
            "start": begin.isoformat(),
            "end": last.isoformat(),
            "calls": calls,
            "tokens": {"prompt": prompt, "completion": completion},
            "active_users": int(active_range),
            "models": [
                {"model_id": m, "calls": c} for m, c in sorted(models.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
        },
        "success_rate": round(ok / calls, 4) if calls else None,
        "duration_ms": percentiles(durations),
        "ttft_ms": percentiles(ttfts),
        "refusals": {key: counts.get(name, 0) for key, name in _REFUSALS.items()},
        "blocked_attempts": counts.get("blocked", 0),
        "errors": dict(
            sorted(
                ((name[6:], n) for name, n in counts.items() if name.startswith("error:")),
                key=lambda kv: (-kv[1], kv[0]),
            )
        ),
        "per_channel": per_channel,
        "top_users": [
            {"user_id": int(uid), "email": emails.get(int(uid)), "calls": n}
            for uid, n in users
            if uid.isdigit()
        ],
        "top_ips": [{"ip_address": ip, "calls": n} for ip, n in top("ip:")],
        "_trend": [trend_point(day) for day in _days(trend_first, trend_last)],
    }


def prune_actors(connection: Connection, before: date) -> None:
    """Forget who was active (IPs are personal data) in periods that ended before ``before``."""
    connection.execute(delete(DailyCaller).where(col(DailyCaller.day) < before))
    connection.execute(
        delete(PeriodActor).where(col(PeriodActor.kind) == "d", col(PeriodActor.start) < before)
    )
    connection.execute(
        delete(PeriodActor).where(
            col(PeriodActor.kind) == "w", col(PeriodActor.start) < before - timedelta(days=6)
        )
    )
    connection.execute(
        delete(PeriodActor).where(
            col(PeriodActor.kind) == "m", col(PeriodActor.start) < before - timedelta(days=31)
        )
    )
