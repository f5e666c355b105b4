"""Access control: user state (disabled, token version, own RPM, last active), personal API keys, the
admin audit log, and the call log's key.

Revision ID: 0004_users_keys_audit
Revises: 0003_channel_models_and_health
Create Date: 2026-11-29

New tables and new columns only, each nullable or with a server default: no existing row is refused
and nothing stored changes. Written out here rather than taken from ``app.models``, so that this
revision means the same thing forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_users_keys_audit"
down_revision: str | None = "0003_channel_models_and_health"
branch_labels: str | None = None
depends_on: str | None = None

USER_COLUMNS = (
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rpm_limit", sa.Integer),
    sa.Column("last_active_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    for column in USER_COLUMNS:
        op.add_column("users", column)
    op.add_column("chat_logs", sa.Column("api_key_id", sa.Integer))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("idx_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("admin", sa.String(64), nullable=False),
        sa.Column("ip_address", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300)),
        sa.Column("changes", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("idx_audit_logs_created_at", "audit_logs", ["created_at"])
    op.create_index("idx_audit_logs_action", "audit_logs", ["action", "created_at"])


def downgrade() -> None:
    op.drop_index("idx_audit_logs_action", table_name="audit_logs")
    op.drop_index("idx_audit_logs_created_at", table_name="audit_logs")
    op.drop_table("audit_logs")
    op.drop_index("idx_api_keys_user_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_column("chat_logs", "api_key_id")
    with op.batch_alter_table("users") as batch:
        for column in reversed(USER_COLUMNS):
            batch.drop_column(column.name)
