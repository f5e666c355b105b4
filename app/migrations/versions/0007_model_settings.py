"""Per-model settings: an admin's default system prompt, temperature, top-p and max tokens for a public
model name, and whether the model takes images (vision).

Revision ID: 0007_model_settings
Revises: 0006_dashboard_rollups
Create Date: 2026-11-29

A new table only; existing rows are untouched. Written out here rather than taken from ``app.models``,
so that this revision means the same thing forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_model_settings"
down_revision: str | None = "0006_dashboard_rollups"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "model_settings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(200), nullable=False, unique=True),
        sa.Column("system_prompt", sa.Text, nullable=True),
        sa.Column("temperature", sa.Float, nullable=True),
        sa.Column("top_p", sa.Float, nullable=True),
        sa.Column("max_tokens", sa.Integer, nullable=True),
        sa.Column("vision", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_settings")
