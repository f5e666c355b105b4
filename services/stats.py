"""Dashboard statistics from daily rollups kept in step with the call log, so their cost depends on
the number of days and models shown, not on the size of ``chat_logs``.

Days are local days in ``TZ``. The rollups remember which zone they were built for; after a change of
``TZ`` they are rebuilt once from ``chat_logs`` in the background.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func
from sqlalchemy import select as sa_select  # more columns than sqlmodel.select types
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from app.models import ChatLog, DailyModelStats, PeriodActor, SystemConfig, utcnow

log = logging.getLogger("pyaichat.stats")
ZONE_KEY = "stats_time_zone"
REBUILD_BATCH = 20_000


def period_starts(day: date) -> tuple[tuple[str, date], ...]:
    """The day, its week (from Monday) and its month, each by its first day."""
    return (("d", day), ("w", day - timedelta(days=day.weekday())), ("m", day.replace(day=1)))


Actor = tuple[str, date, str]  # (period kind, period start, "u:<id>" or "ip:<address>")
_BUCKET_SECONDS = 900  # every UTC offset in use, and every change of one, falls on a quarter hour


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


@dataclass
class Rollup:
    """What a batch of log rows adds to the daily tables."""

    models: dict[tuple[date, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    # callers per local day, a user by id (int) and a guest by IP (str); spread over periods on demand
    day_callers: dict[date, set[int | str]] = field(default_factory=lambda: defaultdict(set))
    # quarter hour of the UTC clock → local day: a batch's rows share a few of them
    _days: dict[int, date] = field(default_factory=dict, repr=False)

    def add_rows(self, rows: Iterable[LogRow], zone: ZoneInfo) -> None:
        """Count ``rows`` (one loop with everything looked up once: the writer's per-row cost)."""
        models, callers, days = self.models, self.day_callers, self._days
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
            callers[day].add(row.ip_address if user_id is None else user_id)

    @property
    def actors(self) -> set[Actor]:
        """Every (period kind, period start, "u:<id>" or "ip:<address>") the rows touched."""
        actors: set[Actor] = set()
        for day, callers in self.day_callers.items():
            names = [f"ip:{caller}" if isinstance(caller, str) else f"u:{caller}" for caller in callers]
            for kind, start in period_starts(day):
                actors.update((kind, start, name) for name in names)
        return actors

    def apply(self, connection: Connection, *, known_actors: set[Actor] | None = None) -> set[Actor]:
        """Upsert into the rollup tables inside the caller's transaction (one executemany per table: a
        multi-row VALUES statement would be compiled anew for every batch). ``known_actors``: period
        actors already stored, which need no second insert. Returns every period actor of the rows."""
        if not self.models:
            return set()
        dialect_insert = _dialect_insert(connection)
        stmt = dialect_insert(DailyModelStats)
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "model_id"],
            set_={
                "calls": DailyModelStats.calls + stmt.excluded.calls,
                "prompt_tokens": DailyModelStats.prompt_tokens + stmt.excluded.prompt_tokens,
                "completion_tokens": DailyModelStats.completion_tokens + stmt.excluded.completion_tokens,
            },
        )
        connection.execute(
            stmt,
            [
                {"day": day, "model_id": model, "calls": c, "prompt_tokens": p, "completion_tokens": t}
                for (day, model), (c, p, t) in self.models.items()
            ],
        )
        actors = self.actors
        new = actors - known_actors if known_actors else actors
        if new:
            connection.execute(
                dialect_insert(PeriodActor).on_conflict_do_nothing(),
                [{"kind": kind, "start": start, "actor": actor} for kind, start, actor in new],
            )
        return actors


def _dialect_insert(connection: Connection) -> Callable[..., Any]:
    """The dialect's INSERT, which has ``on_conflict_do_update`` (an upsert) on SQLite and PostgreSQL."""
    if connection.dialect.name == "postgresql":
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


def dashboard(*, session: Session, zone: ZoneInfo, now: datetime | None = None) -> dict[str, Any]:
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
    per_day: dict[date, int] = defaultdict(int)
    for row in rows:
        per_day[row.day] += row.calls
    trend = [
        {
            "date": (periods.trend_start + timedelta(days=i)).isoformat(),
            "calls": per_day.get(periods.trend_start + timedelta(days=i), 0),
        }
        for i in range(7)
    ]
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
    }


def prune_actors(connection: Connection, before: date) -> None:
    """Forget who was active (IPs are personal data) in periods that ended before ``before``."""
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
