"""Schema migrations (app/migrate.py, app/migrations/) on real SQLite files: a new database, one made
before pyaichat used Alembic, one from a newer version, the lock between instances, a failing revision,
and ``python -m app db``. PostgreSQL's side is in tests/test_migrations_postgres.py."""

from __future__ import annotations

import fcntl
import json
import logging
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, create_engine, inspect, text
from sqlalchemy.schema import CreateIndex
from sqlmodel import SQLModel

from app import models  # noqa: F401 - the tables the newest revision must match
from app.migrate import (
    MIGRATIONS_DIR,
    SchemaVersionError,
    alembic_config,
    collated_indexes,
    declared_for,
    head_revision,
    migration_engine,
    read_revision,
    upgrade,
)
from tests import legacy_database
from tests.chat_helpers import chat_body
from tests.helpers import HANG_SECONDS, ROOT, TEST_ADMIN_PASSWORD, production_env, run_app, wait_until
from tests.upstream_server import UpstreamServer


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def table_columns(url: str) -> dict[str, set[str]]:
    """Each table of the database and its columns."""
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {
            table: {c["name"] for c in inspector.get_columns(table)} for table in inspector.get_table_names()
        }
    finally:
        engine.dispose()


def schema_differences(url: str) -> list[object]:
    """What autogenerate would write to make the database match the models (nothing, when they agree).
    Alembic cannot read an index on an expression back from SQLite, nor an index element's own collation
    back from PostgreSQL, so those are compared here: by the expression's text in the index's SQL, and by
    PostgreSQL's definition of the index against the models' ``CREATE INDEX``."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*expression-based index")
            context = MigrationContext.configure(
                connection, opts={"include_object": declared_for(connection.dialect.name)}
            )
            found = list(compare_metadata(context, SQLModel.metadata))
            if connection.dialect.name == "sqlite":
                found += _sqlite_expression_indexes_missing(connection)
            if connection.dialect.name == "postgresql":
                found += _postgres_collated_indexes_differing(connection)
            return found
    finally:
        engine.dispose()


def _sqlite_expression_indexes_missing(connection: Connection) -> list[object]:
    def squeezed(sql: str) -> str:
        return re.sub(r"\s+", "", sql).lower()

    stored = dict(connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all())
    missing: list[object] = []
    for table in SQLModel.metadata.tables.values():
        for index in table.indexes:
            if not declared_for("sqlite")(index, index.name, "index", False, None):
                continue
            expressions = [  # as written in the index's SQL: no table name in front of a column
                str(e).replace(f"{table.name}.", "")
                for e in index.expressions
                if not isinstance(e, (Column, str))
            ]
            sql = squeezed(stored.get(index.name) or "")
            if any(squeezed(expression) not in sql for expression in expressions):
                missing.append(("expression index", index.name))
    return missing


def _postgres_collated_indexes_differing(connection: Connection) -> list[object]:
    def squeezed(sql: str) -> str:
        # PostgreSQL prints the schema and the default method, SQLAlchemy brackets an element's COLLATE
        return re.sub(r"[\s()]+", "", sql.replace("public.", "").replace(" USING btree", ""))

    differing: list[object] = []
    for index in collated_indexes("postgresql"):
        declared = str(CreateIndex(index).compile(dialect=connection.dialect))
        stored = connection.execute(
            text("SELECT pg_get_indexdef(to_regclass(:name))"), {"name": index.name}
        ).scalar()
        if stored is None or squeezed(stored) != squeezed(declared):
            differing.append(("collated index", index.name, stored, declared))
    return differing


@pytest.fixture(scope="module")
def legacy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database as pre-Alembic pyaichat left it, with users, channels, settings, block list,
    attempts, rollups and 100k call logs (built once, copied per test)."""
    path = tmp_path_factory.mktemp("legacy") / "chat.db"
    engine = create_engine(sqlite_url(path))
    with engine.begin() as connection:
        legacy_database.create_legacy_schema(connection)
        legacy_database.fill(connection)
    engine.dispose()
    return path


@pytest.fixture
def legacy_copy(legacy_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "data" / "chat.db"
    path.parent.mkdir()
    shutil.copy(legacy_file, path)
    return path


def test_a_new_database_gets_the_newest_revision_and_it_matches_the_models(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new.db")
    result = upgrade(url)
    assert result.before is None and result.after == head_revision() and result.applied
    assert read_revision(url) == head_revision()
    assert schema_differences(url) == []
    assert upgrade(url).applied == []  # the next start finds nothing to do


def test_a_database_made_before_migrations_upgrades_with_nothing_lost(legacy_copy: Path) -> None:
    url = sqlite_url(legacy_copy)
    engine = create_engine(url)
    with engine.connect() as connection:
        before = legacy_database.fingerprint(connection)
    assert len(before["chat_logs"]) == legacy_database.LOG_ROWS

    assert upgrade(url).before is None
    with engine.connect() as connection:
        assert legacy_database.fingerprint(connection) == before
        channels = connection.exec_driver_sql("SELECT model_id, models, priority, weight FROM channels").all()
    assert channels and all(json.loads(listed) == [model] for model, listed, _, _ in channels), channels
    assert {(priority, weight) for _, _, priority, weight in channels} == {(0, 1)}
    engine.dispose()
    assert read_revision(url) == head_revision()
    assert schema_differences(url) == []


def test_an_upgraded_database_serves_what_it_held(legacy_copy: Path, tmp_path: Path) -> None:
    """Started on a pre-migration database, the app upgrades it and serves its accounts, channels,
    saved settings, block list and logs."""
    upstream = UpstreamServer().start()
    try:
        with sqlite3.connect(legacy_copy) as db:
            db.execute("UPDATE channels SET base_url = ?", (upstream.base_url("ok"),))
        env = production_env(legacy_copy.parent, GUEST_RPM="50", USER_RPM="50")
        with run_app(env, log_path=tmp_path / "app.log") as app, httpx.Client(base_url=app.base_url) as http:
            assert "upgrading the database schema from an unversioned database" in app.log_text()
            login = http.post(
                "/api/auth/login",
                json={"email": legacy_database.USER_EMAIL, "password": legacy_database.USER_PASSWORD},
            )
            assert login.status_code == 200, login.text
            admin_login = http.post(
                "/api/auth/admin/login", json={"username": "admin", "password": TEST_ADMIN_PASSWORD}
            )
            admin = {"Authorization": f"Bearer {admin_login.json()['access_token']}"}
            config = http.get("/api/admin/config", headers=admin).json()
            assert {key: str(config[key]) for key in legacy_database.SAVED_SETTINGS} == (
                legacy_database.SAVED_SETTINGS
            )
            channels = http.get("/api/admin/channels", headers=admin).json()
            assert [c["name"] for c in channels] == ["主渠道", "备用"]
            assert all(c["api_key_readable"] for c in channels)
            rules = http.get("/api/admin/blocked-ips", headers=admin).json()
            assert sorted(r["ip_address"] for r in rules) == ["2001:db8::1", "203.0.113.0/24"]
            # the last page of 200: the count reaches every row (it stops 10,000 past the page asked for)
            last_page = {"page": legacy_database.LOG_ROWS // 200, "page_size": 200}
            logs = http.get("/api/admin/logs", headers=admin, params=last_page).json()
            assert (logs["total"], logs["total_capped"]) == (legacy_database.LOG_ROWS, False)
            assert len(logs["items"]) == 200
            answer = http.post(
                "/api/chat/completions",
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
                json=chat_body("legacy-model", stream=False),
            )
            assert answer.status_code == 200, answer.text
            wait_until(
                lambda: (
                    http.get("/api/admin/logs", headers=admin, params=last_page).json()["total"]
                    == legacy_database.LOG_ROWS + 1
                ),
                poll=0.1,
            )
            assert "Traceback" not in app.log_text()
    finally:
        upstream.stop()


def test_the_call_log_indexes_of_an_earlier_build_are_reshaped_and_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_engine(sqlite_url(path))
    with engine.begin() as connection:
        legacy_database.create_legacy_schema(connection)
    engine.dispose()
    with sqlite3.connect(path) as db:  # the index layout of an earlier build
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

    upgrade(sqlite_url(path))
    names = _sqlite_indexes(path, "chat_logs")
    with sqlite3.connect(path) as db:
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


def _sqlite_indexes(path: Path, table: str) -> set[str]:
    """The names of ``table``'s indexes in the SQLite file at ``path``."""
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute(f"PRAGMA index_list({table})")}


def test_revision_0009_changes_nothing_on_sqlite(tmp_path: Path) -> None:
    """PostgreSQL's longest-first index: SQLite reads idx_chat_logs_duration backwards for that order."""
    path = tmp_path / "chat.db"
    upgrade(sqlite_url(path))

    def indexes() -> set[str]:
        return _sqlite_indexes(path, "chat_logs")

    at_head = indexes()
    assert "idx_chat_logs_duration" in at_head and "idx_chat_logs_duration_desc" not in at_head
    _downgrade(path, "0008_log_sort_indexes")
    assert read_revision(sqlite_url(path)) == "0008_log_sort_indexes" and indexes() == at_head
    assert upgrade(sqlite_url(path)).applied[:1] == ["0009_pg_duration_desc_index"] and indexes() == at_head


def _downgrade(path: Path, revision: str) -> None:
    """Alembic's downgrade of the SQLite file at ``path`` to ``revision``."""
    engine = migration_engine(sqlite_url(path))
    try:
        with engine.connect() as connection:
            command.downgrade(alembic_config(connection), revision)
            connection.commit()
    finally:
        engine.dispose()


def test_attempts_of_an_early_build_get_their_later_columns(tmp_path: Path) -> None:
    path = tmp_path / "early.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE blocked_attempts (id INTEGER NOT NULL PRIMARY KEY, ip_address VARCHAR(64) NOT NULL,"
            " path VARCHAR(500) NOT NULL, matched_rule VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL)"
        )
        db.execute(
            "INSERT INTO blocked_attempts VALUES (1, '203.0.113.9', '/', '203.0.113.0/24',"
            " '2026-01-02 03:04:05.000000')"
        )
    upgrade(sqlite_url(path))
    with sqlite3.connect(path) as db:
        assert db.execute(
            "SELECT ip_address, created_at, last_seen_at, hits FROM blocked_attempts"
        ).fetchall() == [("203.0.113.9", "2026-01-02 03:04:05.000000", "2026-01-02 03:04:05.000000", 1)]
    assert schema_differences(sqlite_url(path)) == []


def _stamp(path: Path, revision: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))


def test_a_database_from_a_newer_version_is_refused_with_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / "chat.db"
    upgrade(sqlite_url(path))
    _stamp(path, "0099_from_the_future")
    with pytest.raises(SchemaVersionError, match="0099_from_the_future"):
        upgrade(sqlite_url(path))

    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=production_env(data_dir),
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "0099_from_the_future" in lines[0] and "newer pyaichat" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    with sqlite3.connect(path) as db:  # nothing was changed by the refused start
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0099_from_the_future",)]
        assert db.execute("SELECT count(*) FROM admins").fetchone() == (0,)


def test_an_instance_waits_while_another_holds_the_migration_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "chat.db"
    caplog.set_level(logging.INFO, logger="pyaichat.migrations")
    with (tmp_path / "chat.db.migrate-lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another instance is migrating
        outcome: list[object] = []
        worker = threading.Thread(target=lambda: outcome.append(upgrade(sqlite_url(path))))
        worker.start()
        wait_until(
            lambda: "waiting for it" in caplog.text,
        )
        assert not outcome
        assert not path.exists() or not table_columns(sqlite_url(path))
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(HANG_SECONDS)
    assert not worker.is_alive() and read_revision(sqlite_url(path)) == head_revision()


FAILING_REVISION = '''"""A revision that fails half-way."""

import sqlalchemy as sa
from alembic import op

revision = "0002_fails"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("nickname", sa.String(50)))
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO no_such_table VALUES (1)")


def downgrade() -> None:
    pass
'''


def test_a_failing_revision_leaves_the_previous_one_intact(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "chat.db")
    upgrade(url)
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0002_fails.py").write_text(FAILING_REVISION.format(down=head_revision()))
    with pytest.raises(Exception, match="no_such_table"):
        upgrade(url, script_location=scripts)
    assert read_revision(url) == head_revision()
    tables = table_columns(url)
    assert "half_done" not in tables and "nickname" not in tables["users"]


def _db_command(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "db", *args],
        cwd=ROOT,
        env=production_env(data_dir),
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )


def test_db_commands_for_operators(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    head = head_revision()
    current = _db_command(data_dir, "current")
    assert current.returncode == 0 and current.stdout.startswith("none"), current.stderr
    upgraded = _db_command(data_dir, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded the database schema from none to {head}" in upgraded.stdout
    assert _db_command(data_dir, "upgrade").stdout.strip() == f"the database schema is current ({head})"
    assert _db_command(data_dir, "current").stdout.strip() == f"{head} (head)"
    history = _db_command(data_dir, "history").stdout.splitlines()
    assert history[0].startswith("0001_baseline") and history[-1].endswith("(current, head)")

    _stamp(data_dir / "chat.db", "0099_from_the_future")
    refused = _db_command(data_dir, "upgrade")
    assert refused.returncode == 2 and "0099_from_the_future" in refused.stderr
    assert "Traceback" not in refused.stderr
    wrong = _db_command(data_dir, "sideways")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr


SECRET_PASSWORD = "S3cret-pw"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"DATABASE_URL": f"postgresql+psycopg://app:{SECRET_PASSWORD}@127.0.0.1:{{port}}/db"}, "refused"),
        ({"DATABASE_URL": f"postgresql+psycopg://app:{SECRET_PASSWORD}@x@127.0.0.1/db"}, "%40"),
        ({"DATABASE_URL": f"postgresql+psycopg://app:{SECRET_PASSWORD}@host:port/db"}, "not a database URL"),
        ({"DATABASE_PATH": "/etc/hostname/chat.db"}, "/etc/hostname"),
    ],
)
@pytest.mark.parametrize("command", [(), ("db", "upgrade")])
def test_an_unusable_database_is_one_line_without_the_password(
    tmp_path: Path, overrides: dict[str, str], fragment: str, command: tuple[str, ...]
) -> None:
    from tests.helpers import free_port

    values = {key: value.replace("{port}", str(free_port())) for key, value in overrides.items()}
    result = subprocess.run(
        [sys.executable, "-m", "app", *command],
        cwd=ROOT,
        env=production_env(tmp_path / "data", **values),
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert SECRET_PASSWORD not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_db_history_lists_the_revisions_even_when_the_database_is_out_of_reach(tmp_path: Path) -> None:
    from tests.helpers import free_port

    url = f"postgresql+psycopg://app:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/db"
    result = subprocess.run(
        [sys.executable, "-m", "app", "db", "history"],
        cwd=ROOT,
        env=production_env(tmp_path / "data", DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    assert result.returncode == 2
    assert result.stdout.startswith("0001_baseline") and "(head)" in result.stdout
    assert "cannot use the database" in result.stderr and SECRET_PASSWORD not in result.stderr


def test_revision_0010_indexes_one_days_top_callers_and_keeps_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    upgrade(sqlite_url(path))
    _downgrade(path, "0010_daily_callers_top_index")
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO stats_daily_callers (day, actor, calls) VALUES (?, ?, ?)",
            [("2026-03-01", f"u:{n}", n) for n in range(1, 50)],
        )

    def state() -> tuple[set[str], int]:
        with sqlite3.connect(path) as db:
            calls = db.execute("SELECT sum(calls) FROM stats_daily_callers").fetchone()[0]
        return _sqlite_indexes(path, "stats_daily_callers"), calls

    assert state() == ({"idx_stats_daily_callers_top", "sqlite_autoindex_stats_daily_callers_1"}, 1225)
    _downgrade(path, "0009_pg_duration_desc_index")
    assert state() == ({"sqlite_autoindex_stats_daily_callers_1"}, 1225)
    assert upgrade(sqlite_url(path)).applied[:1] == ["0010_daily_callers_top_index"]
    assert "idx_stats_daily_callers_top" in state()[0] and state()[1] == 1225
    assert schema_differences(sqlite_url(path)) == []


def test_revision_0011_changes_nothing_on_sqlite(tmp_path: Path) -> None:
    """PostgreSQL's index with ties in bytes' order: SQLite compares text as bytes, 0010's index serves."""
    path = tmp_path / "chat.db"
    upgrade(sqlite_url(path))
    _downgrade(path, "0011_pg_callers_bytewise_index")

    def indexes() -> set[str]:
        return _sqlite_indexes(path, "stats_daily_callers")

    at_0011 = indexes()
    assert at_0011 == {"idx_stats_daily_callers_top", "sqlite_autoindex_stats_daily_callers_1"}
    _downgrade(path, "0010_daily_callers_top_index")
    assert read_revision(sqlite_url(path)) == "0010_daily_callers_top_index" and indexes() == at_0011
    assert (
        upgrade(sqlite_url(path)).applied[:1] == ["0011_pg_callers_bytewise_index"] and indexes() >= at_0011
    )


PERIOD_ACTORS_COUNTED = (
    "SELECT kind, start, count(*) FROM stats_period_actors GROUP BY kind, start ORDER BY kind, start"
)
PERIOD_ACTORS_KEPT = "SELECT kind, start, actors FROM stats_period_actor_counts ORDER BY kind, start"


def test_revision_0012_counts_the_period_actors_there_and_to_come(tmp_path: Path) -> None:
    """The counts are made from the actors a database at 0011 holds; from then on the triggers keep them
    (an insert ignoring duplicates, a delete); a downgrade drops the table and the triggers, not the
    actors, and the next upgrade counts them again."""
    path = tmp_path / "chat.db"
    upgrade(sqlite_url(path))
    _downgrade(path, "0011_pg_callers_bytewise_index")

    def objects() -> set[tuple[str, str]]:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT type, name FROM sqlite_master WHERE name LIKE 'stats_period_actor%'")
            return {(kind, name) for kind, name in rows if not name.startswith("sqlite_autoindex")}

    at_0011 = {("table", "stats_period_actors")}
    assert objects() == at_0011
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO stats_period_actors (kind, start, actor) VALUES (?, ?, ?)",
            [("d", f"2026-03-0{d}", f"u:{n}") for d in range(1, 4) for n in range(d * 10)]
            + [("m", "2026-03-01", f"ip:10.0.0.{n}") for n in range(7)],
        )
    assert upgrade(sqlite_url(path)).applied[:1] == ["0012_period_actor_counts"]
    assert objects() == at_0011 | {
        ("table", "stats_period_actor_counts"),
        ("trigger", "stats_period_actors_count_in"),
        ("trigger", "stats_period_actors_count_out"),
    }
    assert schema_differences(sqlite_url(path)) == []
    with sqlite3.connect(path) as db:
        assert db.execute(PERIOD_ACTORS_KEPT).fetchall() == [
            ("d", "2026-03-01", 10),
            ("d", "2026-03-02", 20),
            ("d", "2026-03-03", 30),
            ("m", "2026-03-01", 7),
        ]
        db.executemany(
            "INSERT OR IGNORE INTO stats_period_actors (kind, start, actor) VALUES (?, ?, ?)",
            [("d", "2026-03-01", f"u:{n}") for n in range(5, 15)] + [("w", "2026-02-23", "u:1")],
        )
        db.execute("DELETE FROM stats_period_actors WHERE start = '2026-03-02' OR actor = 'u:25'")
        assert db.execute(PERIOD_ACTORS_KEPT).fetchall() == [
            ("d", "2026-03-01", 15),
            ("d", "2026-03-03", 29),
            ("m", "2026-03-01", 7),
            ("w", "2026-02-23", 1),
        ]
        assert db.execute(PERIOD_ACTORS_KEPT).fetchall() == db.execute(PERIOD_ACTORS_COUNTED).fetchall()

    _downgrade(path, "0011_pg_callers_bytewise_index")
    assert objects() == at_0011
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM stats_period_actors WHERE kind = 'm'")
        assert db.execute("SELECT count(*) FROM stats_period_actors").fetchone() == (45,)
    assert upgrade(sqlite_url(path)).applied[:1] == ["0012_period_actor_counts"]
    with sqlite3.connect(path) as db:
        kept = db.execute(PERIOD_ACTORS_KEPT).fetchall()
        assert kept == db.execute(PERIOD_ACTORS_COUNTED).fetchall() and len(kept) == 3


CALLER_DAYS = "SELECT actor, day, prev_day FROM stats_daily_callers ORDER BY actor, day"


def linked(rows: list[tuple[str, str, str | None]]) -> bool:
    """Each row's prev_day is the caller's day before it in ``rows`` (ordered by actor and day), or none."""
    return all(
        prev == (rows[i - 1][1] if i and rows[i - 1][0] == actor else None)
        for i, (actor, _, prev) in enumerate(rows)
    )


def test_revision_0013_links_each_callers_days_there_and_to_come(tmp_path: Path) -> None:
    """The previous days are set for the rows a database at 0012 holds; from then on the trigger keeps
    them: a caller's first day, a later one, a late row between two days and one before all of them, an
    upsert of a day already there (no change); a downgrade drops column, indexes and trigger, not rows."""
    path = tmp_path / "chat.db"
    upgrade(sqlite_url(path))
    _downgrade(path, "0012_period_actor_counts")
    assert _sqlite_indexes(path, "stats_daily_callers") == {
        "idx_stats_daily_callers_top",
        "sqlite_autoindex_stats_daily_callers_1",
    }
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO stats_daily_callers (day, actor, calls) VALUES (?, ?, ?)",
            [(f"2026-03-{d:02}", f"u:{n}", d + n) for d in (9, 1, 5, 3) for n in range(d)],
        )
    assert upgrade(sqlite_url(path)).applied == ["0013_daily_callers_prev_day"]
    assert schema_differences(sqlite_url(path)) == []
    with sqlite3.connect(path) as db:
        rows = db.execute(CALLER_DAYS).fetchall()
        assert linked(rows) and len(rows) == 18
        assert [row for row in rows if row[0] == "u:0"] == [
            ("u:0", "2026-03-01", None),
            ("u:0", "2026-03-03", "2026-03-01"),
            ("u:0", "2026-03-05", "2026-03-03"),
            ("u:0", "2026-03-09", "2026-03-05"),
        ]
        upsert = (
            "INSERT INTO stats_daily_callers (day, actor, calls) VALUES (?, ?, 1) "
            "ON CONFLICT (day, actor) DO UPDATE SET calls = calls + excluded.calls"
        )
        # a new caller, a later day, a late day between two, one before all, and days already there
        db.executemany(
            upsert,
            [
                ("2026-03-04", "ip:10.0.0.1"),
                ("2026-03-10", "u:0"),
                ("2026-03-04", "u:1"),
                ("2026-02-27", "u:2"),
                ("2026-03-09", "u:8"),
                ("2026-03-05", "u:1"),
            ],
        )
        rows = db.execute(CALLER_DAYS).fetchall()
        assert linked(rows) and len(rows) == 22
        assert [row[1:] for row in rows if row[0] == "u:1"] == [
            ("2026-03-03", None),
            ("2026-03-04", "2026-03-03"),
            ("2026-03-05", "2026-03-04"),
            ("2026-03-09", "2026-03-05"),
        ]
        assert db.execute(
            "SELECT calls FROM stats_daily_callers WHERE day = '2026-03-09' AND actor = 'u:8'"
        ).fetchone() == (18,)
    _downgrade(path, "0012_period_actor_counts")
    with sqlite3.connect(path) as db:
        assert "prev_day" not in {row[1] for row in db.execute("PRAGMA table_info(stats_daily_callers)")}
        assert db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'stats_daily_callers'"
        ).fetchone() == (0,)
        assert db.execute("SELECT count(*), sum(calls) FROM stats_daily_callers").fetchone() == (22, 165 + 6)
        db.execute("INSERT INTO stats_daily_callers (day, actor, calls) VALUES ('2026-03-02', 'u:0', 1)")
    assert upgrade(sqlite_url(path)).applied == ["0013_daily_callers_prev_day"]
    with sqlite3.connect(path) as db:
        assert linked(db.execute(CALLER_DAYS).fetchall())
