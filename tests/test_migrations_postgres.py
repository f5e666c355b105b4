"""Schema migrations on a real PostgreSQL server: a database made before pyaichat used Alembic upgrades
with nothing lost, and instances starting at once migrate it exactly once (the advisory lock)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from app.migrate import ADVISORY_LOCK_KEY, head_revision, read_revision, upgrade
from tests import legacy_database
from tests.helpers import (
    HANG_SECONDS,
    ROOT,
    production_env,
    run_app,
    stop_process,
    wait_until,
    wait_until_ready,
)
from tests.postgres_server import create_database, run_postgres
from tests.test_migrations import schema_differences, table_columns


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with run_postgres() as url:
        yield url


@pytest.fixture
def database_url(server_url: str) -> str:
    """A new, empty database on the module's server."""
    return create_database(server_url)


def test_a_database_made_before_migrations_upgrades_with_nothing_lost(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        legacy_database.create_legacy_schema(connection)
        legacy_database.fill(connection)
    with engine.connect() as connection:
        before = legacy_database.fingerprint(connection)
    assert len(before["chat_logs"]) == legacy_database.LOG_ROWS

    result = upgrade(database_url)
    assert result.before is None and result.after == head_revision()
    with engine.connect() as connection:
        assert legacy_database.fingerprint(connection) == before
    engine.dispose()
    assert schema_differences(database_url) == []
    assert upgrade(database_url).applied == []


def test_a_new_database_matches_the_models(database_url: str) -> None:
    upgrade(database_url)
    assert read_revision(database_url) == head_revision()
    assert schema_differences(database_url) == []


def test_instances_starting_together_migrate_once(database_url: str, tmp_path: Path) -> None:
    """Two instances start while a third holds the migration lock; once it is released, exactly one
    of them migrates, the other finds the schema current, and both serve."""
    import psycopg

    plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    env = production_env(tmp_path / "data", DATABASE_URL=database_url)
    with psycopg.connect(plain, autocommit=True) as holder, ExitStack() as instances:
        holder.execute(f"SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})")
        apps = [
            instances.enter_context(run_app(env, log_path=tmp_path / f"instance-{i}.log", ready=False))
            for i in range(2)
        ]
        wait_until(lambda: all("waiting for it" in app.log_text() for app in apps), poll=0.1)
        assert table_columns(database_url) == {}  # nobody migrated yet
        holder.execute(f"SELECT pg_advisory_unlock({ADVISORY_LOCK_KEY})")
        for app in apps:
            wait_until_ready(app)
        logs = [app.log_text() for app in apps]
    head = head_revision()
    assert sum("upgrading the database schema from an unversioned database" in log for log in logs) == 1
    assert sum(f"database schema is current (revision {head})" in log for log in logs) == 1
    assert read_revision(database_url) == head
    assert "Traceback" not in "".join(logs)


def test_db_upgrade_commands_run_together_migrate_once(database_url: str, tmp_path: Path) -> None:
    """The same for operators running ``python -m app db upgrade`` on two hosts at once."""
    import psycopg

    plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    env = production_env(tmp_path / "data", DATABASE_URL=database_url)
    with psycopg.connect(plain, autocommit=True) as holder:
        holder.execute(f"SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})")
        logs = [tmp_path / f"instance-{i}.log" for i in range(2)]
        processes = []
        for log in logs:
            with log.open("w") as output:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "app", "db", "upgrade"],
                        cwd=ROOT,
                        env=env,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        try:
            wait_until(lambda: all("waiting for it" in log.read_text() for log in logs), poll=0.1)
            holder.execute(f"SELECT pg_advisory_unlock({ADVISORY_LOCK_KEY})")
            for process in processes:
                assert process.wait(timeout=HANG_SECONDS) == 0
        finally:
            for process in processes:
                stop_process(process, name="db upgrade")
    outputs = [log.read_text() for log in logs]
    head = head_revision()
    assert sum(f"upgraded the database schema from none to {head}" in text for text in outputs) == 1, outputs
    assert sum(f"the database schema is current ({head})" in text for text in outputs) == 1, outputs
