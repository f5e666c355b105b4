"""PostgreSQL: one day's top callers by an index whose ties are in bytes' order, in place of 0010's: on a
day of 50,000 one-call guests the two tops sorted all of them (10–19 ms); with it they read ten rows each
(0.5–0.9 ms).

Revision ID: 0011_pg_callers_bytewise_index
Revises: 0010_daily_callers_top_index
Create Date: 2026-11-30

``callers_of_a_day`` orders ties by ``actor COLLATE "C"`` on PostgreSQL (bytes, as Python orders text,
whatever the database's collation). ``idx_stats_daily_callers_top`` (revision 0010) holds ``actor`` in
the database's collation, so PostgreSQL read it in the order of ``calls`` alone and sorted every caller
tied with the tenth (an Incremental Sort over the whole tie). ``idx_stats_daily_callers_top_bytewise``,
``(day, calls DESC, actor COLLATE "C")``, has the whole order: no sort; and in "C" the ``u:`` / ``ip:``
prefix becomes a range checked inside the index, so the users' top fetches no guest row either.

Measured 2026-11-30 07:31–07:43 UTC on a real PostgreSQL 15 (fsync on) beside another benchmark (load
average 1–4 on 2 cores: figures moved by up to half between three runs), 496k rows: 60 days of 600
users and 6,000 guests, a day of 50,000 one-call guests and 200 users, one of 50,000 one-call guests
and 5 one-call users. ``callers_of_a_day``, medians of 50: the first day 13.2–25.0 → 4.6–10.1 ms, its two tops
alone 10.0–18.8 → 0.5–0.9 ms (ten index rows each); the second 16.5–32.0 → 5.9–13.2 ms, tops 15.3–31.0 →
1.7–3.4 ms (its users' top walks the day's index entries to find five users, fetching none of the
guests' rows). What remains is counting the day's 50,200 callers (3.1–6.4 ms). A day of 6,600 callers:
1.9–3.9 ms before and after (its tops: 0.5–1.0 ms).

0010's index serves nothing else on PostgreSQL (a day's callers are counted, summed and forgotten through
the primary key; a range ranked in the database sorts its sums: 43–77 ms for 30 days with either index),
so this revision drops it there: a rollup write that adds a call to a caller moves the caller's row in
every index on ``calls``, and both indexes together cost 1.1–2.5 µs (15–23 %) more per caller row than
either alone (a day's 6,600 callers upserted at once, medians of 15: 58 / 90 ms with both, 48–51 /
73–74 ms with either, in a run at 07:33 / 07:40); in a rollup write of 20 calls (3–5 ms) the difference
is lost in the noise. SQLite keeps 0010's index: it compares text as bytes already; nothing changes
there.

Built ``CONCURRENTLY`` as revision 0009 builds its index: rollup writes go on meanwhile (the build:
0.35–0.50 s on those 496k rows; the whole upgrade, 0010's index dropped too, 0.5–0.6 s). An interrupted
build leaves an INVALID index of that name, dropped and built again by the next upgrade; an upgrade
stopped after the build keeps the index and drops 0010's. Downgrading builds 0010's index again, the same way,
before it drops this one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_pg_callers_bytewise_index"
down_revision: str | None = "0010_daily_callers_top_index"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "stats_daily_callers"
INDEX = "idx_stats_daily_callers_top_bytewise"
REPLACED = "idx_stats_daily_callers_top"  # revision 0010's


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        _build(INDEX, [sa.text("day"), sa.text("calls DESC"), sa.text('actor COLLATE "C"')])
        op.drop_index(REPLACED, table_name=TABLE, postgresql_concurrently=True, if_exists=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        _build(REPLACED, [sa.text("day"), sa.text("calls DESC"), sa.text("actor")])
        op.drop_index(INDEX, table_name=TABLE, postgresql_concurrently=True, if_exists=True)


def _build(name: str, columns: list[sa.TextClause]) -> None:
    """Build the index ``name`` concurrently unless a valid one is there (an INVALID one is dropped first:
    ``IF NOT EXISTS`` would take it for done; PostgreSQL never reads it but keeps it on every write)."""
    if _left_invalid(name):
        op.drop_index(name, table_name=TABLE, postgresql_concurrently=True, if_exists=True)
    op.create_index(name, TABLE, columns, postgresql_concurrently=True, if_not_exists=True)


def _left_invalid(name: str) -> bool:
    """Whether an index of that name exists but is INVALID: what an interrupted concurrent build leaves."""
    found = op.get_bind().execute(
        sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": name}
    )
    valid = found.scalar()
    return valid is not None and not valid
