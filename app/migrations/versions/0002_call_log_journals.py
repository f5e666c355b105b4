"""The call-log journal's marks: per journal, the last record stored in ``chat_logs``.

Revision ID: 0002_call_log_journals
Revises: 0001_baseline
Create Date: 2026-12-01

A new table only; no existing row is read or changed. Written out here rather than taken from
``app.models``, so that this revision means the same thing forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_call_log_journals"
down_revision: str | None = "0001_baseline"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "call_log_journals",
        sa.Column("journal_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("call_log_journals")
