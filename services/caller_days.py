"""Each caller day's previous day (``stats_daily_callers.prev_day``, revision 0013), beyond what the
revision's trigger keeps: the lock under which caller days are written on PostgreSQL, relinking every row
(the end of a rebuild) and unlinking the days the retention run deletes. Tested with the rollups, in
tests/services/test_period_actor_counts.py."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.models import DailyCaller

# PostgreSQL: one transaction at a time writes caller days, to its commit. Revision 0013's trigger links a
# caller's new day to its other days; two transactions adding first rows of one caller on two days at once
# would not see each other's (the later day's prev_day left at an earlier day). Taken before any caller day
# is locked, after the other tables, whose rows every writer of a day locks anyway (its models): no cycle.
# The two keys (13: revision 0013) are apart from the migrations' one-key lock. A lock per caller would take
# one per new caller day, more than PostgreSQL's lock table holds for a rebuild's batch.
_CALLER_DAYS_LOCK = text("SELECT pg_advisory_xact_lock(13, 0)")


def lock_caller_days(connection: Connection) -> None:
    """On PostgreSQL, wait until no other transaction writes caller days, and keep them to the commit: the
    log writers, the retention run and a rebuild's relinking take it before their first caller day."""
    if connection.dialect.name == "postgresql":
        connection.execute(_CALLER_DAYS_LOCK)


def relink_caller_days(connection: Connection) -> None:
    """Set each caller day's ``prev_day`` (its caller's latest earlier day) where it is not that, as revision
    0013's trigger sets it row by row. The reset of a rebuild leaves the rows of a log writer's transaction
    still open then (PostgreSQL), linked to days it deleted and may not count again (another time zone).
    0.5 s at 10M calls (420k caller days) on SQLite, where nothing is to change."""
    lock_caller_days(connection)  # a writer's link made meanwhile is not undone from an older snapshot
    earlier = aliased(DailyCaller)
    latest = (
        sa_select(func.max(earlier.day))
        .where(col(earlier.actor) == col(DailyCaller.actor), col(earlier.day) < col(DailyCaller.day))
        .scalar_subquery()
    )
    connection.execute(
        update(DailyCaller).where(col(DailyCaller.prev_day).is_distinct_from(latest)).values(prev_day=latest)
    )


def unlink_days_before(connection: Connection, before: date) -> None:
    """After the retention run deleted the caller days before ``before``: no caller day names one of them
    (a late row before ``before`` may come back later). 30 ms at 10M calls on SQLite."""
    connection.execute(update(DailyCaller).where(col(DailyCaller.prev_day) < before).values(prev_day=None))
