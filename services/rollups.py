"""The dashboard's daily rollups, kept in step with the call log (the log writer adds each batch of
calls to them), so that the figures' cost depends on the number of days and models shown, not on the size
of ``chat_logs``.

Days are local days in ``TZ``. The rollups remember which zone they were built for; after a change of
``TZ`` they are rebuilt once from ``chat_logs`` in the background. Who was active in a period (IPs are
personal data) is pruned with the old logs.
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

from sqlalchemy import delete, func, or_, text
from sqlalchemy import select as sa_select  # more columns than sqlmodel.select types
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from app.models import (
    ChatLog,
    DailyCaller,
    DailyChannelStats,
    DailyCount,
    DailyLatency,
    DailyModelStats,
    PeriodActor,
    SystemConfig,
    utcnow,
)
from services.caller_days import lock_caller_days, relink_caller_days, unlink_days_before

log = logging.getLogger("pyaichat.stats")
ZONE_KEY = "stats_time_zone"
REBUILD_BATCH = 20_000


def period_starts(day: date) -> tuple[tuple[str, date], ...]:
    """The day, its week (from Monday) and its month, each by its first day."""
    return (("d", day), ("w", day - timedelta(days=day.weekday())), ("m", day.replace(day=1)))


Actor = tuple[str, date, str]  # (period kind, period start, "u:<id>" or "ip:<address>")
_BUCKET_SECONDS = 900  # every UTC offset in use, and every change of one, falls on a quarter hour
FAILED_STATUSES = frozenset({"upstream_error", "timeout"})  # the service failed the caller


# Latency histograms: bucket k holds [1.1**k, 1.1**(k+1)) ms, bucket -1 holds 0 ms. A percentile is the
# exact nearest-rank bucket's geometric middle 1.1**(k+0.5): within sqrt(1.1)-1 = 4.9 % (and 0.5 ms of
# rounding) of the true nearest-rank value; 10 minutes is bucket 139, so a day has at most ~141 rows.
LATENCY_RATIO = 1.1
_LOG_RATIO = math.log(LATENCY_RATIO)


def latency_bucket(ms: int) -> int:
    return -1 if ms <= 0 else int(math.log(ms) / _LOG_RATIO)


def bucket_value(bucket: int) -> int:
    return 0 if bucket < 0 else round(LATENCY_RATIO ** (bucket + 0.5))


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
        # every table's rows in key order, the tables in this order: two writers (replicas) adding the same
        # new rows lock them in one order, so that neither waits for the other in a cycle (on PostgreSQL,
        # in the order of a batch's calls, 4 writers of 12 callers a batch deadlocked within 30 batches)
        connection.execute(
            _increment(
                dialect, DailyModelStats, ("day", "model_id"), ("calls", "prompt_tokens", "completion_tokens")
            ),
            [
                {"day": day, "model_id": model, "calls": c, "prompt_tokens": p, "completion_tokens": t}
                for (day, model), (c, p, t) in sorted(self.models.items())
            ],
        )
        connection.execute(
            _increment(dialect, DailyChannelStats, ("day", "channel_id"), ("calls", "ok", "errors")),
            [
                {"day": day, "channel_id": channel, "calls": c, "ok": ok, "errors": e}
                for (day, channel), (c, ok, e) in sorted(self.channels.items())
            ],
        )
        upsert_counts(connection, self.counts)
        if self.latency:
            connection.execute(
                _increment(dialect, DailyLatency, ("day", "metric", "bucket"), ("calls",)),
                [
                    {"day": day, "metric": metric, "bucket": bucket, "calls": n}
                    for (day, metric, bucket), n in sorted(self.latency.items())
                ],
            )
        lock_caller_days(connection)
        # by caller first: a caller's first row of a day also locks its next day's row (revision 0013's
        # trigger), in this caller's turn
        callers = sorted(
            (_actor(caller), day, n)
            for day, callers in self.day_callers.items()
            for caller, n in callers.items()
        )
        connection.execute(
            _increment(dialect, DailyCaller, ("day", "actor"), ("calls",)),
            [{"day": day, "actor": actor, "calls": n} for actor, day, n in callers],
        )
        actors = self.actors
        new = actors - known_actors if known_actors else actors
        if new:
            insert_period_actors(connection, new)
        return actors


# PostgreSQL: one statement, in one order for every writer. stats_period_actors' triggers (revision 0012)
# add each statement's new rows to the periods' counter rows, which stay locked to the commit: row by row
# (an executemany), a writer would lock them after its first row and then wait for another's uncommitted
# actor, which may be waiting for those counter rows: a deadlock (33 of 480 transactions, four threads
# adding overlapping actors of the same periods; none without the triggers, none in one statement). In one
# ordered statement every wait for an actor comes before the counter rows, locked in their order. It is
# cheaper too: 60 new actors 1.11 -> 0.89 ms, 5,001 62.9 -> 38.6 ms (the rows at 0011, the statement at 0012).
_PG_INSERT_ACTORS = text(
    "INSERT INTO stats_period_actors (kind, start, actor)"
    " SELECT kind, start, actor"
    " FROM unnest(CAST(:kinds AS varchar[]), CAST(:starts AS date[]), CAST(:actors AS varchar[]))"
    " AS new (kind, start, actor)"
    " ORDER BY kind, start, actor"
    " ON CONFLICT DO NOTHING"
)


def insert_period_actors(connection: Connection, actors: Iterable[Actor]) -> None:
    """Insert the period actors not stored yet (the others are left as they are)."""
    rows = sorted(actors)
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        kinds, starts, names = zip(*rows, strict=True)
        connection.execute(
            _PG_INSERT_ACTORS, {"kinds": list(kinds), "starts": list(starts), "actors": list(names)}
        )
        return
    connection.execute(
        _insert_new(connection.dialect.name, PeriodActor),
        [{"kind": kind, "start": start, "actor": actor} for kind, start, actor in rows],
    )


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
            [{"day": day, "name": name, "count": n} for (day, name), n in sorted(counts.items())],
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
    with engine.begin() as connection:
        relink_caller_days(connection)
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


# ---- forgetting who was active -------------------------------------------------------------------


def prune_actors(connection: Connection, before: date) -> None:
    """Forget who was active (IPs are personal data) in periods that ended before ``before``."""
    lock_caller_days(connection)  # its unlinking locks today's rows too, in no order of the writers'
    connection.execute(delete(DailyCaller).where(col(DailyCaller.day) < before))
    unlink_days_before(connection, before)
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
