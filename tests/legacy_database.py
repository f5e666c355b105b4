"""A database as pyaichat made it before Alembic (tests/fixtures/schema_before_alembic.*.sql), filled
with what a running deployment holds, and a fingerprint of every row to prove an upgrade kept them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import MetaData, Table, inspect, text
from sqlalchemy.engine import Connection

from services.security import KeyCipher, hash_password
from tests.helpers import TEST_ENCRYPTION_KEY

FIXTURES = Path(__file__).parent / "fixtures"
LEGACY_TABLES = (
    "admins",
    "blocked_attempts",
    "blocked_ips",
    "channels",
    "chat_logs",
    "stats_daily_models",
    "stats_period_actors",
    "system_config",
    "users",
)
LEGACY_COLUMNS = {  # the columns each table had before Alembic (tests/fixtures/schema_before_alembic.*.sql)
    "admins": ("id", "username", "password_hash", "created_at", "updated_at"),
    "blocked_attempts": ("id", "ip_address", "path", "matched_rule", "created_at", "last_seen_at", "hits"),
    "blocked_ips": ("id", "ip_address", "reason", "created_at"),
    "channels": (
        "id",
        "name",
        "base_url",
        "api_key",
        "model_id",
        "rpm_limit",
        "is_enabled",
        "created_at",
        "updated_at",
    ),
    "chat_logs": (
        "id",
        "user_id",
        "username",
        "ip_address",
        "channel_id",
        "model_id",
        "prompt_tokens",
        "completion_tokens",
        "created_at",
        "status",
        "tokens_estimated",
        "duration_ms",
    ),
    "stats_daily_models": ("day", "model_id", "calls", "prompt_tokens", "completion_tokens"),
    "stats_period_actors": ("kind", "start", "actor"),
    "system_config": ("id", "key", "value", "description", "updated_at"),
    "users": ("id", "email", "password_hash", "created_at"),
}
USER_EMAIL = "kept@example.com"
USER_PASSWORD = "kept-password-1"
LOG_ROWS = 100_000
CHANNEL_KEY = "sk-legacy-channel-key-0123456789"
# settings an admin saved: the upgraded instance must keep them, whatever its environment says
SAVED_SETTINGS = {"guest_rpm": "7", "user_rpm": "9", "log_retention_days": "3650"}


def create_legacy_schema(connection: Connection) -> None:
    dialect = connection.dialect.name
    script = (FIXTURES / f"schema_before_alembic.{dialect}.sql").read_text()
    for statement in script.split(";"):
        lines = [line for line in statement.splitlines() if not line.lstrip().startswith("--")]
        if "".join(lines).strip():
            connection.exec_driver_sql("\n".join(lines))


def fill(connection: Connection, *, upstream_url: str = "http://127.0.0.1:9/v1") -> None:
    """Every table of the legacy schema with rows, ``LOG_ROWS`` of them call logs over the last 30 days."""
    now = datetime.now(UTC).replace(microsecond=0)
    cipher = KeyCipher(TEST_ENCRYPTION_KEY)
    rows: dict[str, list[dict[str, object]]] = {
        "admins": [
            {
                "username": "admin",
                "password_hash": hash_password("old-admin-pw"),
                "created_at": now,
                "updated_at": now,
            }
        ],
        "users": [
            {"email": USER_EMAIL, "password_hash": hash_password(USER_PASSWORD), "created_at": now},
            {
                "email": "second@example.com",
                "password_hash": hash_password("second-pw-12"),
                "created_at": now,
            },
        ],
        "channels": [
            {
                "name": name,
                "base_url": upstream_url,
                "api_key": cipher.encrypt(CHANNEL_KEY),
                "model_id": model,
                "rpm_limit": 60,
                "is_enabled": enabled,
                "created_at": now,
                "updated_at": now,
            }
            for name, model, enabled in (("主渠道", "legacy-model", True), ("备用", "legacy-off", False))
        ],
        "system_config": [
            {"key": key, "value": value, "description": f"saved {key}", "updated_at": now}
            for key, value in {**SAVED_SETTINGS, "stats_time_zone": "UTC"}.items()
        ],
        "blocked_ips": [
            {"ip_address": "203.0.113.0/24", "reason": "scanner", "created_at": now},
            {"ip_address": "2001:db8::1", "reason": None, "created_at": now},
        ],
        "blocked_attempts": [
            {
                "ip_address": f"203.0.113.{i}",
                "path": "/api/chat/completions",
                "matched_rule": "203.0.113.0/24",
                "created_at": now - timedelta(minutes=i),
                "last_seen_at": now,
                "hits": i,
            }
            for i in range(1, 4)
        ],
        "stats_daily_models": [
            {
                "day": (now - timedelta(days=d)).date(),
                "model_id": "legacy-model",
                "calls": 10 + d,
                "prompt_tokens": 100 * d,
                "completion_tokens": 7 * d,
            }
            for d in range(30)
        ],
        "stats_period_actors": [
            {"kind": "d", "start": now.date(), "actor": "u:1"},
            {"kind": "m", "start": now.date().replace(day=1), "actor": "ip:198.51.100.4"},
        ],
    }
    metadata = MetaData()
    for table, values in rows.items():  # typed inserts: values stored as the app's SQLAlchemy stores them
        connection.execute(Table(table, metadata, autoload_with=connection).insert(), values)
    _fill_logs(connection, now)


def _fill_logs(connection: Connection, now: datetime) -> None:
    """``LOG_ROWS`` call logs made by the database itself (fast), spread over 30 days, users and IPs."""
    if connection.dialect.name == "postgresql":
        numbers = f"SELECT g AS n FROM generate_series(1, {LOG_ROWS}) AS g"
        moment = "CAST(:now AS timestamptz) - (n * INTERVAL '25 seconds')"
        when: object = now
    else:
        numbers = (
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s"
            f" WHERE n < {LOG_ROWS}) SELECT n FROM s"
        )
        # the text form SQLAlchemy stores on SQLite
        moment = "strftime('%Y-%m-%d %H:%M:%S', :now, '-' || (n * 25) || ' seconds') || '.000000'"
        when = now.replace(tzinfo=None).isoformat(" ")
    connection.execute(
        text(
            "INSERT INTO chat_logs (user_id, username, ip_address, channel_id, model_id, prompt_tokens,"
            " completion_tokens, created_at, status, tokens_estimated, duration_ms)"
            f" SELECT CASE WHEN n % 3 = 0 THEN 1 END, CASE WHEN n % 3 = 0 THEN '{USER_EMAIL}' END,"
            " '10.0.' || (n % 250) || '.' || (n % 200), 1, 'legacy-model', n % 500, n % 900,"
            f" {moment}, CASE WHEN n % 11 = 0 THEN 'upstream_error' ELSE 'ok' END, (n % 7 = 0),"
            f" n % 4000 FROM ({numbers}) AS numbers"
        ),
        {"now": when},
    )


def fingerprint(connection: Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every legacy table, in primary-key order: the legacy columns only (later revisions
    add columns; what the legacy database held must come through unchanged)."""
    inspector = inspect(connection)
    result: dict[str, list[tuple[object, ...]]] = {}
    for table in LEGACY_TABLES:
        keys = inspector.get_pk_constraint(table)["constrained_columns"]
        columns = ", ".join(LEGACY_COLUMNS[table])
        query = f"SELECT {columns} FROM {table} ORDER BY {', '.join(keys)}"
        result[table] = [tuple(row) for row in connection.exec_driver_sql(query)]
    return result
