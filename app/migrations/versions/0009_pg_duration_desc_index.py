"""PostgreSQL: an index for the log page's duration sort, longest first: without it, a first page sorted
that way read and sorted all of ``chat_logs`` (250 ms at 1M rows); with it it reads a page's rows.

Revision ID: 0009_pg_duration_desc_index
Revises: 0008_log_sort_indexes
Create Date: 2026-11-30

Rows without a duration come last in both directions (``DESC NULLS LAST``). Read backwards,
``idx_chat_logs_duration`` (revision 0008) gives ``DESC NULLS FIRST`` on PostgreSQL, which cannot serve
that order, so PostgreSQL sorted the table; SQLite (NULL sorts lowest) reads that index backwards and
needs nothing: this revision changes nothing there.

One new index on PostgreSQL; no row changes. It is built ``CONCURRENTLY``, outside a transaction: the
build reads the table twice (1.6 s at a million rows) but never holds inserts, so instances still running
the previous version keep writing their calls meanwhile (165 inserts during that build, the slowest
45 ms). It does wait for transactions already open in the database to end (a running CSV export among
them). This revision is therefore not all-or-nothing: a build that is interrupted (the migrating instance
killed, the server restarted) leaves an INVALID index of that name behind and the database at revision
0008; the next upgrade drops that index and builds it again. An index that exists and is valid (an upgrade
stopped after the build, before its revision was recorded) is kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_pg_duration_desc_index"
down_revision: str | None = "0008_log_sort_indexes"
branch_labels: str | None = None
depends_on: str | None = None

INDEX = "idx_chat_logs_duration_desc"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        if _left_invalid(INDEX):
            op.drop_index(INDEX, table_name="chat_logs", postgresql_concurrently=True, if_exists=True)
        op.create_index(
            INDEX,
            "chat_logs",
            [sa.text("duration_ms DESC NULLS LAST"), sa.text("id DESC")],
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="chat_logs", postgresql_concurrently=True, if_exists=True)


def _left_invalid(name: str) -> bool:
    """Whether an index of that name exists but is INVALID: what an interrupted concurrent build leaves
    (``IF NOT EXISTS`` would take it for done; PostgreSQL never uses it but maintains it on every insert)."""
    found = op.get_bind().execute(
        sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": name}
    )
    valid = found.scalar()
    return valid is not None and not valid
