"""Channels with several models, priority, weight, proxy, headers and health; the call log's reason.

Revision ID: 0003_channel_models_and_health
Revises: 0002_call_log_journals
Create Date: 2026-11-29

New columns only, each nullable or with a server default, so no existing row is refused. Existing
one-model channels get ``models = [model_id]``: nothing a channel served before is lost. Written out
here rather than taken from ``app.models``, so that this revision means the same thing forever.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision: str = "0003_channel_models_and_health"
down_revision: str | None = "0002_call_log_journals"
branch_labels: str | None = None
depends_on: str | None = None

CHANNEL_COLUMNS = (
    sa.Column("models", sa.Text, nullable=False, server_default="[]"),
    sa.Column("model_map", sa.Text, nullable=False, server_default="{}"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("weight", sa.Integer, nullable=False, server_default="1"),
    sa.Column("proxy", sa.Text),
    sa.Column("headers", sa.Text),
    sa.Column("auto_pause_after", sa.Integer),
    sa.Column("auto_paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.String(300)),
    sa.Column("last_error_at", sa.DateTime(timezone=True)),
    sa.Column("last_success_at", sa.DateTime(timezone=True)),
    sa.Column("latency_ms", sa.Integer),
    sa.Column("stream_options_unsupported", sa.Boolean, nullable=False, server_default=sa.false()),
)


def upgrade() -> None:
    for column in CHANNEL_COLUMNS:
        op.add_column("channels", column)
    op.add_column("chat_logs", sa.Column("error", sa.String(32)))
    channels = sa.table("channels", sa.column("id", sa.Integer), sa.column("model_id"), sa.column("models"))
    connection = op.get_bind()
    for channel_id, model_id in connection.execute(sa.select(channels.c.id, channels.c.model_id)).all():
        connection.execute(
            channels.update().where(channels.c.id == channel_id).values(models=json.dumps([model_id]))
        )


def downgrade() -> None:
    op.drop_column("chat_logs", "error")
    with op.batch_alter_table("channels") as batch:
        for column in reversed(CHANNEL_COLUMNS):
            batch.drop_column(column.name)
