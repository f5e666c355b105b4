"""Each caller's previous day, kept by the database: ``stats_daily_callers.prev_day`` is, for each row, the
latest earlier day of the same caller (NULL: none), kept by a trigger on insert, so that the dashboard
counts a range's callers without reading every caller of today.

Revision ID: 0013_daily_callers_prev_day
Revises: 0012_period_actor_counts
Create Date: 2026-11-30

A range of several days (7 days, 30 days) counts its distinct callers: those of its closed days, which
``services/stats_callers.py`` keeps summed between requests, and those of today who called on none of
them. The second part needed every caller of today, read on every request (7,000 at the end of a day of
benchmark 6 at 10M calls: 3.5 ms to read, 3.7 ms to rank), which made a 30-day dashboard grow with the call
log. A caller of today is new to the range exactly when its previous day is before the range (or there is
none): ``idx_stats_daily_callers_new`` (day, prev_day) counts them in two index seeks. The tops of the
range need today's calls only of the callers that can still reach them (read by ``actor``).

The trigger fires on the rows really inserted (a caller's first call of a day; the writers' upserts update
the others): it sets the new row's ``prev_day`` from the caller's latest earlier day, and moves the
caller's next day's ``prev_day`` up to the new day when a row lands before it (a late row, a rebuild in any
order). ``idx_stats_daily_callers_actor`` (actor, day) makes both one index seek. Rows are deleted by whole
days: the retention run deletes the days before its cut and unlinks every ``prev_day`` that named one of
them, and a rebuild deletes every row, recounts them and links them all anew at its end
(``services/caller_days.py``). On PostgreSQL two transactions adding first rows of one caller on two days
at once (the first call of today and a late row replayed from a journal) would not see each other's row,
and the later day's ``prev_day`` would stay at an earlier day (4 runs in 4 of a test of four writers):
the log writers upsert caller days one transaction at a time, under a transaction's advisory lock taken
before them (``services/caller_days.py``), in (actor, day) order. An instance of the previous version takes
no such lock: until it is upgraded, a caller may be counted once too often as new to a range, for the
rest of that day. A first row of today added while a retention run deletes the day it names keeps naming a
deleted day: the readers treat a day before the earliest kept as none. SQLite has one writer at a time.

What it costs: nothing per call. The trigger runs once per caller and day (a caller's first call of the
day): two index seeks and two updates, 7,000 new caller days in 0.15 s on SQLite (about 20 µs each); each
such row writes two more index entries, and on PostgreSQL a second version of the row (``prev_day`` is
indexed, so the update is not HOT). The upgrade at 10M calls (420k caller rows) took 1.2 s on SQLite,
0.24 s at 100k. It locks ``stats_daily_callers`` (PostgreSQL: ``SHARE ROW EXCLUSIVE``, then ``ACCESS
EXCLUSIVE`` from the new column to the commit, so the dashboard waits too; SQLite: the transaction's write
lock) from before the trigger exists until the backfill is committed, so no row inserted meanwhile is left
unlinked. Its downgrade drops the column (SQLite 3.35 or later; Debian 12 has 3.40). Written out here
rather than taken from ``app.models``, so that this revision means the same thing forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013_daily_callers_prev_day"
down_revision: str | None = "0012_period_actor_counts"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "stats_daily_callers"
COLUMN = "prev_day"
BY_ACTOR = "idx_stats_daily_callers_actor"
NEW_CALLERS = "idx_stats_daily_callers_new"
TRIGGER = "stats_daily_callers_link"
PG_FUNCTION = "stats_daily_callers_link"

# the same two statements on both databases (NEW is the row inserted)
_SET_OWN = (
    "UPDATE stats_daily_callers SET prev_day = ("
    "SELECT max(earlier.day) FROM stats_daily_callers AS earlier"
    " WHERE earlier.actor = NEW.actor AND earlier.day < NEW.day)"
    " WHERE day = NEW.day AND actor = NEW.actor"
)
_MOVE_NEXT = (
    "UPDATE stats_daily_callers SET prev_day = NEW.day"
    " WHERE actor = NEW.actor AND day = ("
    "SELECT min(later.day) FROM stats_daily_callers AS later"
    " WHERE later.actor = NEW.actor AND later.day > NEW.day)"
    " AND (prev_day IS NULL OR prev_day < NEW.day)"
)

_PG_FUNCTION_SQL = f"""
CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_SET_OWN};
    {_MOVE_NEXT};
    RETURN NULL;
END
$$
"""

_SQLITE_TRIGGER = f"""
CREATE TRIGGER {TRIGGER} AFTER INSERT ON {TABLE} BEGIN
    {_SET_OWN};
    {_MOVE_NEXT};
END
"""

# every row's previous day, one seek each in the (actor, day) index (a window function would need UPDATE ...
# FROM, SQLite 3.33)
_BACKFILL = (
    "UPDATE stats_daily_callers SET prev_day = ("
    "SELECT max(earlier.day) FROM stats_daily_callers AS earlier"
    " WHERE earlier.actor = stats_daily_callers.actor AND earlier.day < stats_daily_callers.day)"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # held to the commit: an old instance's insert waits, then fires the trigger
        op.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
    op.add_column(TABLE, sa.Column(COLUMN, sa.Date, nullable=True))
    op.create_index(BY_ACTOR, TABLE, ["actor", "day"])
    if postgres:
        op.execute(_PG_FUNCTION_SQL)
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON {TABLE} FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
        )
    else:
        op.execute(_SQLITE_TRIGGER)
    op.execute(_BACKFILL)
    op.create_index(NEW_CALLERS, TABLE, ["day", COLUMN])  # after the backfill: built once


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(
        f"DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE}" if postgres else f"DROP TRIGGER IF EXISTS {TRIGGER}"
    )
    if postgres:
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
    op.drop_index(NEW_CALLERS, table_name=TABLE)
    op.drop_index(BY_ACTOR, table_name=TABLE)
    op.execute(f"ALTER TABLE {TABLE} DROP COLUMN {COLUMN}")
