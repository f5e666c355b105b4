"""The schema of docs/data-model.md, SQLite pragmas, settings seeding and the admin account at start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlmodel import select

from app.config import load_settings
from app.db import init_db, make_engine, session_scope
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
    for name in ("ADMIN_USERNAME", "GUEST_RPM", "USER_RPM", "LOG_RETENTION_DAYS", "DATABASE_URL"):
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


def test_an_earlier_databases_log_indexes_are_reshaped_and_its_rows_kept(data_dir: Path) -> None:
    path = data_dir / "old.db"
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    engine.dispose()
    with sqlite3.connect(path) as db:  # the index layout of the previous version
        db.execute("DROP INDEX idx_chat_logs_user_id")
        db.execute("DROP INDEX idx_chat_logs_ip_address")
        db.execute("CREATE INDEX idx_chat_logs_user_id ON chat_logs (user_id)")
        db.execute("CREATE INDEX idx_chat_logs_ip_address ON chat_logs (ip_address)")
        db.execute("CREATE INDEX idx_chat_logs_username_created ON chat_logs (username, created_at)")
        db.execute("CREATE INDEX idx_chat_logs_ip_created ON chat_logs (ip_address, created_at)")
        db.execute("CREATE INDEX my_own_index ON chat_logs (status)")  # an operator's: left alone
        db.execute(
            "INSERT INTO chat_logs (user_id, ip_address, model_id, created_at, status, tokens_estimated)"
            " VALUES (3, '10.0.0.1', 'm', '2026-01-02 03:04:05.000000', 'ok', 0)"
        )

    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    init_db(engine)  # a second start changes nothing
    engine.dispose()
    with sqlite3.connect(path) as db:
        names = {row[1] for row in db.execute("PRAGMA index_list(chat_logs)")}
        assert "idx_chat_logs_username_created" not in names and "idx_chat_logs_ip_created" not in names
        assert "my_own_index" in names
        for name, columns in (
            ("idx_chat_logs_user_id", ["user_id", "created_at"]),
            ("idx_chat_logs_ip_address", ["ip_address", "created_at"]),
            ("idx_chat_logs_created_at", ["created_at"]),
        ):
            assert [row[2] for row in db.execute(f"PRAGMA index_info({name})")] == columns
        assert db.execute("SELECT user_id, ip_address FROM chat_logs").fetchall() == [(3, "10.0.0.1")]
        plan = " ".join(
            str(row[3])
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM chat_logs WHERE user_id = 3"
                " ORDER BY created_at DESC LIMIT 50"
            )
        )
        assert "idx_chat_logs_user_id" in plan and "TEMP B-TREE" not in plan, plan
