"""The number of active users per period, kept by the database itself: ``stats_period_actor_counts`` holds
for each (kind, start) of ``stats_period_actors`` its count of rows, kept by triggers on that table, so
that the dashboard reads three rows instead of counting today's, this week's and this month's actors.

Revision ID: 0012_period_actor_counts
Revises: 0011_pg_callers_bytewise_index
Create Date: 2026-11-30

Counting the current periods' actors cost PostgreSQL 0.4–0.75 ms at 100k call rows and 1.6–2.7 ms at 1M
(a count reads every actor of the period, even on a vacuumed table): those three
counts were what made ``/api/admin/stats`` grow with the call log there (benchmark 6: 1.6 times from 100k
to 1M rows, against at most 1.5). Reading the three counts instead: 0.13–0.20 ms at 1M (0.17–0.54 ms at
100k), and all of the dashboard's SQL for today 6.4–7.1 → 1.6–2.1 ms at 1M (2026-11-30 08:01–08:18 UTC,
beside another benchmark; docs/performance-postgresql.md, session 12).

What it costs (the same database at 0011 and at 0012, 306k period actors): a log writer's batch of 5,000
new actors, 0.2 µs per actor on PostgreSQL and 2 µs on SQLite (a trigger per row there); a rebuild of the
rollups, 25–26 → 27–27.5 s on PostgreSQL (deleting every actor 0.13 → 0.27 s) and 16.5–17 → 19–25 s on
SQLite (the delete 0.07 → 1.3 s, the inserts 1.9 → 4.7–5.9 s). The upgrade at 1M calls (423k period
actors): 0.13 s on PostgreSQL, 0.07 s on SQLite.

Triggers rather than the log writer: during a rolling upgrade the instances still running the previous
version keep inserting period actors; a trigger counts their rows too, and it counts only the rows
really inserted (the writers' ``ON CONFLICT DO NOTHING`` / ``INSERT OR IGNORE`` fire nothing for a
duplicate). A counter row goes when its count reaches 0 (a pruned period leaves nothing behind), so a
missing row reads as 0.

On PostgreSQL the triggers run once per statement over its transition table (the rows inserted or
deleted), grouped by (kind, start) and upserted in that order: the rebuild deletes every actor in one
statement (one update per period, where a trigger per row updates the same few rows again and again in
one transaction, each new version further down the chain of the last: deleting 20k / 50k / 100k actors of
90 periods took 0.24 / 1.3 / 5.7 s so, against 0.03 / 0.04 / 0.10 s per statement), and two
writers adding to the same periods lock the counter rows in the same order (the counter row serializes
them for the rest of their transaction, as ``stats_daily_counts`` already does). The log writer inserts a
batch's actors as one statement ordered by (kind, start, actor) (``services/rollups.py``): an instance of
the previous version inserts them row by row and locks the counter rows after its first row, so until it
is upgraded two such writers adding the same new actors may deadlock (an error the log writer retries).
SQLite has triggers per row only; a row there is updated in place.

The upgrade locks ``stats_period_actors`` against writers (PostgreSQL: ``SHARE ROW EXCLUSIVE`` in the
revision's transaction; SQLite: the transaction's write lock) from before the triggers exist until the
backfill (one ``GROUP BY`` over the table) is committed, so no row inserted meanwhile is missed or
counted twice. Written out here rather than taken from ``app.models``, so that this revision means the
same thing forever. An ``UPDATE`` or ``TRUNCATE`` of ``stats_period_actors`` would not be counted:
pyaichat does neither (it inserts and deletes).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012_period_actor_counts"
down_revision: str | None = "0011_pg_callers_bytewise_index"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "stats_period_actor_counts"
COUNTED = "stats_period_actors"
ON_INSERT = "stats_period_actors_count_in"
ON_DELETE = "stats_period_actors_count_out"
PG_FUNCTION = "stats_period_actor_counts_apply"

# one function for both triggers on PostgreSQL: each names its transition table "changed"
_PG_FUNCTION_SQL = """
CREATE FUNCTION stats_period_actor_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign integer := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    INSERT INTO stats_period_actor_counts AS counted (kind, start, actors)
    SELECT kind, start, sign * count(*) FROM changed GROUP BY kind, start ORDER BY kind, start
    ON CONFLICT (kind, start) DO UPDATE SET actors = counted.actors + EXCLUDED.actors;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM stats_period_actor_counts AS counted
        USING (SELECT DISTINCT kind, start FROM changed) AS gone
        WHERE counted.kind = gone.kind AND counted.start = gone.start AND counted.actors = 0;
    END IF;
    RETURN NULL;
END
$$
"""

_SQLITE_TRIGGERS = (
    """
CREATE TRIGGER stats_period_actors_count_in AFTER INSERT ON stats_period_actors BEGIN
    INSERT INTO stats_period_actor_counts (kind, start, actors) VALUES (NEW.kind, NEW.start, 1)
    ON CONFLICT (kind, start) DO UPDATE SET actors = actors + 1;
END
""",
    """
CREATE TRIGGER stats_period_actors_count_out AFTER DELETE ON stats_period_actors BEGIN
    UPDATE stats_period_actor_counts SET actors = actors - 1 WHERE kind = OLD.kind AND start = OLD.start;
    DELETE FROM stats_period_actor_counts WHERE kind = OLD.kind AND start = OLD.start AND actors = 0;
END
""",
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # held to the commit: an old instance's insert waits, then fires the trigger
        op.execute(f"LOCK TABLE {COUNTED} IN SHARE ROW EXCLUSIVE MODE")
    op.create_table(
        TABLE,
        sa.Column("kind", sa.String(1), primary_key=True),
        sa.Column("start", sa.Date, primary_key=True),
        sa.Column("actors", sa.Integer, nullable=False),
    )
    if postgres:
        op.execute(_PG_FUNCTION_SQL)
        for name, event, table in ((ON_INSERT, "INSERT", "NEW"), (ON_DELETE, "DELETE", "OLD")):
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {COUNTED} REFERENCING {table} TABLE AS changed"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()"
            )
    else:
        for sql in _SQLITE_TRIGGERS:
            op.execute(sql)
    op.execute(
        f"INSERT INTO {TABLE} (kind, start, actors)"  # noqa: S608 - names of this revision only
        f" SELECT kind, start, count(*) FROM {COUNTED} GROUP BY kind, start"
    )


def downgrade() -> None:
    for name in (ON_INSERT, ON_DELETE):
        op.execute(
            f"DROP TRIGGER IF EXISTS {name} ON {COUNTED}"
            if op.get_bind().dialect.name == "postgresql"
            else f"DROP TRIGGER IF EXISTS {name}"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
    op.drop_table(TABLE)
