"""Baseline: the schema of pyaichat 0.1, before Alembic.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-28

On an empty database this creates every table. A database made before pyaichat used Alembic already
holds these tables (created at start by ``create_all``), so the upgrade only adds what such a database
may lack (two columns of ``blocked_attempts``, filled for its existing rows) and brings the call-log
indexes to their current shape; no other row is touched. The tables are written out here, not taken
from ``app.models``, so this revision means the same thing forever.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision: str = "0001_baseline"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

log = logging.getLogger("pyaichat.migrations")

# indexes of versions before the baseline that were folded into the current ones (dropped, never made)
RETIRED_INDEXES = {"chat_logs": ("idx_chat_logs_username_created", "idx_chat_logs_ip_created")}


def _baseline() -> sa.MetaData:
    metadata = sa.MetaData()
    moment = sa.DateTime(timezone=True)
    sa.Table(
        "admins",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
    )
    sa.Table(
        "blocked_attempts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ip_address", sa.String(64), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("matched_rule", sa.String(64), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("last_seen_at", moment, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Index("idx_blocked_attempts_last_seen_at", "last_seen_at"),
    )
    sa.Table(
        "blocked_ips",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ip_address", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("created_at", moment, nullable=False),
        sa.Index("idx_blocked_ips_ip_address", "ip_address"),
    )
    sa.Table(
        "channels",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("api_key", sa.Text, nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("rpm_limit", sa.Integer, nullable=False),
        sa.Column("is_enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.Index("ix_channels_model_id", "model_id"),
    )
    sa.Table(
        "chat_logs",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer),
        sa.Column("username", sa.String(254)),
        sa.Column("ip_address", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.Integer),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("tokens_estimated", sa.Boolean, nullable=False),
        sa.Column("duration_ms", sa.Integer),
        sa.Index("idx_chat_logs_created_at", "created_at"),
        sa.Index("idx_chat_logs_ip_address", "ip_address", "created_at"),
        sa.Index("idx_chat_logs_user_id", "user_id", "created_at"),
        sa.Index("idx_chat_logs_model_created", "model_id", "created_at"),
    )
    sa.Table(
        "stats_daily_models",
        metadata,
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("model_id", sa.String(200), primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
    )
    sa.Table(
        "stats_period_actors",
        metadata,
        sa.Column("kind", sa.String(1), primary_key=True),
        sa.Column("start", sa.Date, primary_key=True),
        sa.Column("actor", sa.String(80), primary_key=True),
    )
    sa.Table(
        "system_config",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("value", sa.String, nullable=False),
        sa.Column("description", sa.String),
        sa.Column("updated_at", moment, nullable=False),
    )
    sa.Table(
        "users",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Index("idx_users_email", "email"),
    )
    return metadata


# columns that databases of earlier 0.1 builds lack, with the value their existing rows get
LATE_COLUMNS = {
    ("blocked_attempts", "last_seen_at"): "created_at",
    ("blocked_attempts", "hits"): "1",
}


def upgrade() -> None:
    bind = op.get_bind()
    metadata = _baseline()
    metadata.create_all(bind, checkfirst=True)  # an empty database: everything is made here
    inspector = sa.inspect(bind)
    for table in metadata.sorted_tables:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        for (table_name, column_name), fill in LATE_COLUMNS.items():
            if table_name == table.name and column_name not in columns:
                _add_late_column(table, column_name, fill)
        _reshape_indexes(bind, inspector, table)


def _add_late_column(table: sa.Table, name: str, fill: str) -> None:
    log.info("adding %s.%s", table.name, name)
    column = table.c[name]
    with op.batch_alter_table(table.name) as batch:
        batch.add_column(sa.Column(name, column.type, nullable=True))
    op.execute(sa.text(f"UPDATE {table.name} SET {name} = {fill}"))  # noqa: S608 - names from this file
    with op.batch_alter_table(table.name) as batch:
        batch.alter_column(name, existing_type=column.type, nullable=False)


def _reshape_indexes(bind: sa.Connection, inspector: sa.Inspector, table: sa.Table) -> None:
    """Indexes the baseline names but an earlier build made with other columns are rebuilt; indexes it
    retired are dropped; an operator's own indexes are left alone."""
    found = {str(index["name"]): list(index["column_names"]) for index in inspector.get_indexes(table.name)}
    for name in RETIRED_INDEXES.get(table.name, ()):
        if name in found:
            log.info("dropping index %s (folded into other indexes)", name)
            op.drop_index(name, table_name=table.name)
    for index in table.indexes:
        columns = [column.name for column in index.columns]
        if found.get(str(index.name)) == columns:
            continue
        if index.name in found:
            log.info("rebuilding index %s on %s(%s)", index.name, table.name, ", ".join(columns))
            op.drop_index(str(index.name), table_name=table.name)
        index.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    _baseline().drop_all(bind, checkfirst=True)
