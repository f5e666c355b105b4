"""Indexes for the log page's duration and tokens sorts: without them, a first page sorted by either
read and sorted all of ``chat_logs`` (about 2 s at 10M rows); with them it reads a page's rows.

Revision ID: 0008_log_sort_indexes
Revises: 0007_model_settings
Create Date: 2026-11-29

Two new indexes; no row changes. Building them reads the table once (about 2.5 s a million rows on
SQLite): an upgrade of a large call log takes that much longer at start. On PostgreSQL the build holds
inserts into ``chat_logs`` meanwhile: instances still running the previous version wait, their rows kept
in their call-log journals. The tokens index is on the expression the log page sorts by, written out here
so that this revision means the same thing forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_log_sort_indexes"
down_revision: str | None = "0007_model_settings"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("idx_chat_logs_duration", "chat_logs", ["duration_ms", "id"])
    op.create_index(
        "idx_chat_logs_tokens",
        "chat_logs",
        [sa.text("(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0))"), "id"],
    )


def downgrade() -> None:
    op.drop_index("idx_chat_logs_tokens", table_name="chat_logs")
    op.drop_index("idx_chat_logs_duration", table_name="chat_logs")
