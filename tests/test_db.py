"""The schema of docs/data-model.md, SQLite pragmas, settings seeding and the admin account at start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlmodel import select

from app.config import load_settings
from app.db import session_scope
from app.main import build_state
from app.models import Admin, SystemConfig
from services import auth
from services.errors import AuthenticationFailed
from services.settings import SystemSettings, read_settings, update_settings
from tests.helpers import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY

REQUIRED_COLUMNS = {
    "users": {"id", "email", "password_hash", "created_at"},
    "channels": {
        "id",
        "name",
        "base_url",
        "api_key",
        "model_id",
        "rpm_limit",
        "is_enabled",
        "created_at",
        "updated_at",
    },
    "system_config": {"id", "key", "value", "description", "updated_at"},
    "blocked_ips": {"id", "ip_address", "reason", "created_at"},
    "chat_logs": {
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
    },
    "blocked_attempts": {"id", "ip_address", "path", "matched_rule", "created_at"},
}
REQUIRED_INDEXES = {
    "idx_chat_logs_created_at": "chat_logs",
    "idx_chat_logs_user_id": "chat_logs",
    "idx_chat_logs_ip_address": "chat_logs",
    "idx_users_email": "users",
    "idx_blocked_ips_ip_address": "blocked_ips",
}


@pytest.fixture
def prod_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> pytest.MonkeyPatch:
    monkeypatch.setenv("DATABASE_PATH", str(data_dir / "chat.db"))
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    monkeypatch.setenv("ADMIN_PASSWORD", "first-password")
    for name in (
        "ADMIN_USERNAME",
        "GUEST_RPM",
        "USER_RPM",
        "LOG_RETENTION_DAYS",
        "REGISTER_PER_IP_PER_HOUR",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_tables_indexes_and_pragmas(prod_env: pytest.MonkeyPatch, data_dir: Path) -> None:
    settings, _ = load_settings()
    state = build_state(settings)
    state.engine.dispose()
    with sqlite3.connect(data_dir / "chat.db") as db:
        for table, columns in REQUIRED_COLUMNS.items():
            found = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            assert columns <= found, f"{table} lacks {columns - found}"
        indexes = dict(db.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'").fetchall())
        for name, table in REQUIRED_INDEXES.items():
            assert indexes.get(name) == table
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        unique = [row for row in db.execute("PRAGMA index_list(users)") if row[2] == 1]
        assert unique, "users.email must be UNIQUE"
    with state.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_settings_seeded_from_env_then_admin_values_win(prod_env: pytest.MonkeyPatch) -> None:
    prod_env.setenv("GUEST_RPM", "7")
    settings, _ = load_settings()
    state = build_state(settings)
    with session_scope(state.engine) as session:
        assert read_settings(session=session, defaults=state.setting_defaults) == SystemSettings(7, 60, 90)
        keys = {row.key: row.description for row in session.exec(select(SystemConfig))}
        assert {"guest_rpm", "user_rpm", "log_retention_days"} <= set(keys) and all(keys.values())
        update_settings(session=session, changes={"guest_rpm": 3}, defaults=state.setting_defaults)
    state.engine.dispose()

    prod_env.setenv("GUEST_RPM", "9")  # a restart with another env value keeps the admin's choice
    settings, _ = load_settings()
    state = build_state(settings)
    with session_scope(state.engine) as session:
        assert read_settings(session=session, defaults=state.setting_defaults).guest_rpm == 3
    state.engine.dispose()


def test_admin_account_created_then_updated(prod_env: pytest.MonkeyPatch) -> None:
    settings, _ = load_settings()
    state = build_state(settings)
    with session_scope(state.engine) as session:
        admin = auth.authenticate_admin(session=session, username="admin", password="first-password")
        first_hash = admin.password_hash
        assert first_hash.startswith("$2")  # bcrypt
    state.engine.dispose()

    prod_env.setenv("ADMIN_PASSWORD", "second-password")
    prod_env.setenv("ADMIN_USERNAME", "root")
    settings, _ = load_settings()
    state = build_state(settings)
    with session_scope(state.engine) as session:
        assert len(session.exec(select(Admin)).all()) == 1
        auth.authenticate_admin(session=session, username="root", password="second-password")
        with pytest.raises(AuthenticationFailed):
            auth.authenticate_admin(session=session, username="root", password="first-password")
        with pytest.raises(AuthenticationFailed):
            auth.authenticate_admin(session=session, username="admin", password="second-password")
    state.engine.dispose()
