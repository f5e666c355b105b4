"""Schema migrations on a real PostgreSQL server: a database made before pyaichat used Alembic upgrades
with nothing lost, instances starting at once migrate it exactly once (the advisory lock), and revisions
0009 and 0011 build their indexes concurrently, again after an interrupted build, and drop them on the way
down (0011 replacing 0010's index, which its downgrade builds again)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine, make_url

from app.migrate import (
    ADVISORY_LOCK_KEY,
    UpgradeResult,
    alembic_config,
    head_revision,
    migration_engine,
    read_revision,
    upgrade,
)
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
from tests.test_migrations import CALLER_DAYS, linked, schema_differences, table_columns


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


def _migrate(url: str, action: str, revision: str) -> None:
    """``alembic upgrade|downgrade <revision>`` on ``url``, as app.migrate runs revisions."""
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            getattr(command, action)(alembic_config(connection), revision)
            connection.commit()
    finally:
        engine.dispose()


@contextmanager
def _connected(url: str) -> Iterator[Connection]:
    """A connection to ``url`` of an engine made for it and disposed of after."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _at_0008_with_calls(url: str, rows: int = 20_000) -> None:
    _migrate(url, "upgrade", "0008_log_sort_indexes")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO chat_logs (ip_address, model_id, created_at, status, tokens_estimated, duration_ms) "
            "SELECT '10.0.0.1', 'm', now(), 'ok', false, CASE WHEN mod(n, 10) = 0 THEN NULL ELSE n END "
            f"FROM generate_series(1, {rows}) AS n"
        )
    engine.dispose()


def _duration_desc_index(url: str) -> tuple[str, bool] | None:
    """The longest-first index's definition and whether it is valid (None: there is none)."""
    with _connected(url) as connection:
        found = connection.exec_driver_sql(
            "SELECT pg_get_indexdef(indexrelid), indisvalid FROM pg_index "
            "WHERE indexrelid = to_regclass('idx_chat_logs_duration_desc')"
        ).first()
        return None if found is None else (str(found[0]), bool(found[1]))


def _call_count(url: str) -> int:
    with _connected(url) as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM chat_logs").scalar_one())


def test_revision_0009_builds_the_longest_first_index_concurrently_and_0008_drops_it(
    database_url: str,
) -> None:
    _at_0008_with_calls(database_url)
    assert _duration_desc_index(database_url) is None

    result = upgrade(
        database_url
    )  # as start-up runs it: the build needs app.migrate's connection in autocommit
    assert result.before == "0008_log_sort_indexes" and result.applied[:1] == ["0009_pg_duration_desc_index"]
    definition, valid = _duration_desc_index(database_url) or ("", False)
    assert valid and definition.endswith("(duration_ms DESC NULLS LAST, id DESC)"), definition
    assert _call_count(database_url) == 20_000
    assert schema_differences(database_url) == []

    _migrate(database_url, "downgrade", "0008_log_sort_indexes")
    assert read_revision(database_url) == "0008_log_sort_indexes"
    assert _duration_desc_index(database_url) is None
    assert _call_count(database_url) == 20_000
    assert upgrade(database_url).applied[:1] == ["0009_pg_duration_desc_index"]
    assert _duration_desc_index(database_url) == (definition, True)


def test_an_interrupted_build_of_revision_0009_is_built_again(database_url: str) -> None:
    """A concurrent build that fails leaves an INVALID index of its name; ``IF NOT EXISTS`` alone would
    take it for done (PostgreSQL then never reads it, yet keeps it up to date on every insert)."""
    import psycopg

    _at_0008_with_calls(database_url)
    plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as connection, pytest.raises(psycopg.errors.UniqueViolation):
        # a build that fails half-way: the same name, and a unique index the rows cannot satisfy
        connection.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY idx_chat_logs_duration_desc ON chat_logs (model_id)"
        )
    assert _duration_desc_index(database_url) == (
        "CREATE UNIQUE INDEX idx_chat_logs_duration_desc ON public.chat_logs USING btree (model_id)",
        False,
    )

    assert upgrade(database_url).applied[:1] == ["0009_pg_duration_desc_index"]
    definition, valid = _duration_desc_index(database_url) or ("", False)
    assert valid and definition.endswith("(duration_ms DESC NULLS LAST, id DESC)"), definition
    assert schema_differences(database_url) == []


BYTEWISE = "idx_stats_daily_callers_top_bytewise"
BY_DATABASE_COLLATION = {"idx_stats_daily_callers_top": ("(day, calls DESC, actor)", True)}  # revision 0010
BY_BYTES = {BYTEWISE: ('(day, calls DESC, actor COLLATE "C")', True)}


def _at_0010_with_callers(url: str) -> None:
    """Revision 0010 with 20,000 caller rows over 20 days (a thousand one-call guests a day)."""
    _migrate(url, "upgrade", "0010_daily_callers_top_index")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO stats_daily_callers (day, actor, calls) "
            "SELECT DATE '2026-03-01' + n / 1000, 'ip:10.0.' || n / 250 || '.' || mod(n, 250), 1 "
            "FROM generate_series(0, 19999) AS n"
        )
    engine.dispose()


def _callers_indexes(url: str) -> dict[str, tuple[str, bool]]:
    """Each index of ``stats_daily_callers`` for one day's top callers (revisions 0010, 0011): its columns
    as PostgreSQL defines them, and whether it is valid."""
    with _connected(url) as connection:
        found = connection.exec_driver_sql(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisvalid FROM pg_index "
            "WHERE indrelid = 'stats_daily_callers'::regclass AND NOT indisprimary "
            "AND starts_with(indexrelid::regclass::text, 'idx_stats_daily_callers_top')"
        ).all()
        return {str(name): (str(text)[str(text).index("(") :], bool(valid)) for name, text, valid in found}


def _caller_calls(url: str) -> int:
    with _connected(url) as connection:
        return int(connection.exec_driver_sql("SELECT sum(calls) FROM stats_daily_callers").scalar_one())


def test_revision_0011_replaces_0010s_index_concurrently_and_0010_gets_it_back(database_url: str) -> None:
    _at_0010_with_callers(database_url)
    assert _callers_indexes(database_url) == BY_DATABASE_COLLATION
    assert schema_differences(database_url) != []  # the collation is compared: 0010's index is not 0011's

    result = upgrade(database_url)  # as start-up runs it: the builds need autocommit
    assert result.before == "0010_daily_callers_top_index"
    assert result.applied[:1] == ["0011_pg_callers_bytewise_index"]
    assert _callers_indexes(database_url) == BY_BYTES
    assert _caller_calls(database_url) == 20_000
    assert schema_differences(database_url) == []

    _migrate(database_url, "downgrade", "0010_daily_callers_top_index")
    assert read_revision(database_url) == "0010_daily_callers_top_index"
    assert _callers_indexes(database_url) == BY_DATABASE_COLLATION
    assert _caller_calls(database_url) == 20_000
    assert upgrade(database_url).applied[:1] == ["0011_pg_callers_bytewise_index"]
    assert _callers_indexes(database_url) == BY_BYTES


def test_an_interrupted_build_of_revision_0011_is_built_again(database_url: str) -> None:
    import psycopg

    _at_0010_with_callers(database_url)
    plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as connection, pytest.raises(psycopg.errors.UniqueViolation):
        connection.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {BYTEWISE} ON stats_daily_callers (day)")
    assert _callers_indexes(database_url) == {**BY_DATABASE_COLLATION, BYTEWISE: ("(day)", False)}

    assert upgrade(database_url).applied[:1] == ["0011_pg_callers_bytewise_index"]
    assert _callers_indexes(database_url) == BY_BYTES
    assert schema_differences(database_url) == []


def test_an_upgrade_to_0011_stopped_after_its_build_keeps_the_index_and_drops_0010s(
    database_url: str,
) -> None:
    _at_0010_with_callers(database_url)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f'CREATE INDEX {BYTEWISE} ON stats_daily_callers (day, calls DESC, actor COLLATE "C")'
        )
    engine.dispose()

    assert upgrade(database_url).applied[:1] == ["0011_pg_callers_bytewise_index"]
    assert _callers_indexes(database_url) == BY_BYTES


PERIOD_ACTORS_COUNTED = (
    "SELECT kind, start::text, count(*) FROM stats_period_actors GROUP BY kind, start ORDER BY kind, start"
)
PERIOD_ACTORS_KEPT = "SELECT kind, start::text, actors FROM stats_period_actor_counts ORDER BY kind, start"


def _period_actor_objects(url: str) -> set[str]:
    """The counts' table, function and triggers that exist."""
    with _connected(url) as connection:
        found = connection.exec_driver_sql(
            "SELECT relname FROM pg_class WHERE relname = 'stats_period_actor_counts' "
            "UNION ALL SELECT proname FROM pg_proc WHERE proname = 'stats_period_actor_counts_apply' "
            "UNION ALL SELECT tgname FROM pg_trigger WHERE tgrelid = 'stats_period_actors'::regclass"
        ).scalars()
        return {str(name) for name in found}


def _period_actor_counts(url: str) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """What stats_period_actor_counts keeps, and count(*) of each period's actors."""
    with _connected(url) as connection:
        kept = [tuple(row) for row in connection.exec_driver_sql(PERIOD_ACTORS_KEPT).all()]
        counted = [tuple(row) for row in connection.exec_driver_sql(PERIOD_ACTORS_COUNTED).all()]
        return kept, counted  # type: ignore[return-value]


def test_revision_0012_counts_the_period_actors_there_and_to_come(database_url: str) -> None:
    """The counts are made from the actors a database at 0011 holds, including those an instance of that
    version commits while the upgrade waits for its lock; from then on the triggers keep them (an insert
    ignoring duplicates, a delete); a downgrade drops table, function and triggers, not the actors, and
    the next upgrade counts them again."""

    _migrate(database_url, "upgrade", "0011_pg_callers_bytewise_index")
    assert _period_actor_objects(database_url) == set()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO stats_period_actors (kind, start, actor) "
            "SELECT 'd', DATE '2026-03-01' + mod(n, 3), 'ip:10.0.' || n / 250 || '.' || mod(n, 250) "
            "FROM generate_series(0, 2999) AS n"
        )
    results = _upgrade_during_an_insert(
        database_url,
        engine,
        "INSERT INTO stats_period_actors (kind, start, actor) VALUES ('m', '2026-03-01', 'u:1'), "
        "('m', '2026-03-01', 'u:2'), ('d', '2026-03-01', 'u:1')",
    )
    assert [result.applied[:1] for result in results] == [["0012_period_actor_counts"]]
    assert _period_actor_objects(database_url) == {
        "stats_period_actor_counts",
        "stats_period_actor_counts_apply",
        "stats_period_actors_count_in",
        "stats_period_actors_count_out",
    }
    assert schema_differences(database_url) == []
    kept, counted = _period_actor_counts(database_url)
    assert (
        kept
        == counted
        == [
            ("d", "2026-03-01", 1001),
            ("d", "2026-03-02", 1000),
            ("d", "2026-03-03", 1000),
            ("m", "2026-03-01", 2),
        ]
    )
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO stats_period_actors (kind, start, actor) "
            "SELECT 'w', DATE '2026-02-23', 'u:' || mod(n, 40) FROM generate_series(0, 99) AS n "
            "ON CONFLICT DO NOTHING"
        )
        connection.exec_driver_sql(
            "INSERT INTO stats_period_actors (kind, start, actor) VALUES ('m', '2026-03-01', 'u:1') "
            "ON CONFLICT DO NOTHING"
        )
        connection.exec_driver_sql(
            "DELETE FROM stats_period_actors WHERE start = '2026-03-02' OR actor = 'u:2'"
        )
    kept, counted = _period_actor_counts(database_url)
    assert (
        kept
        == counted
        == [
            ("d", "2026-03-01", 1001),
            ("d", "2026-03-03", 1000),
            ("m", "2026-03-01", 1),
            ("w", "2026-02-23", 39),  # u:2 deleted there too
        ]
    )

    _migrate(database_url, "downgrade", "0011_pg_callers_bytewise_index")
    assert _period_actor_objects(database_url) == set()
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM stats_period_actors WHERE kind = 'w'")
    assert upgrade(database_url).applied[:1] == ["0012_period_actor_counts"]
    kept, counted = _period_actor_counts(database_url)
    assert kept == counted and len(kept) == 3
    engine.dispose()


def _upgrade_during_an_insert(database_url: str, engine: Engine, insert: str) -> list[UpgradeResult]:
    """The upgrade to the newest revision, started while an instance of the older version has run
    ``insert`` and not committed it yet (committed once the upgrade waits for its lock)."""
    import threading

    results: list[UpgradeResult] = []
    with engine.connect() as old_instance:
        old_instance.begin()
        old_instance.exec_driver_sql(insert)
        upgrading = threading.Thread(target=lambda: results.append(upgrade(database_url)))
        upgrading.start()
        wait_until(lambda: _waiting_for_a_lock(engine), what="the upgrade waiting for the instance's insert")
        old_instance.commit()
    upgrading.join(timeout=HANG_SECONDS)
    assert not upgrading.is_alive()
    return results


def _waiting_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).scalar()
        )


def test_revision_0013_links_each_callers_days_there_and_to_come(database_url: str) -> None:
    """The previous days are set for the rows a database at 0012 holds, including a day an instance of that
    version commits while the upgrade waits for its lock; from then on the trigger keeps them, for rows in
    any order and the upserts of the log writer; a downgrade drops column, indexes, trigger and function."""

    _migrate(database_url, "upgrade", "0012_period_actor_counts")
    engine = create_engine(database_url)

    def rows() -> list[tuple[str, str, str | None]]:
        with engine.connect() as connection:
            found = connection.exec_driver_sql(CALLER_DAYS).all()
        return [(actor, str(day), None if prev is None else str(prev)) for actor, day, prev in found]

    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO stats_daily_callers (day, actor, calls) "
            "SELECT DATE '2026-03-01' + 2 * mod(n, 5), 'ip:10.0.0.' || n / 5, 1 "
            "FROM generate_series(0, 999) n"
        )
    results = _upgrade_during_an_insert(
        database_url,
        engine,
        "INSERT INTO stats_daily_callers (day, actor, calls) VALUES ('2026-03-04', 'ip:10.0.0.7', 1)",
    )
    assert [result.applied for result in results] == [["0013_daily_callers_prev_day"]]
    assert schema_differences(database_url) == []
    linked_rows = rows()
    assert linked(linked_rows) and len(linked_rows) == 1001
    assert [row[1:] for row in linked_rows if row[0] == "ip:10.0.0.7"] == [
        ("2026-03-01", None),
        ("2026-03-03", "2026-03-01"),
        ("2026-03-04", "2026-03-03"),
        ("2026-03-05", "2026-03-04"),
        ("2026-03-07", "2026-03-05"),
        ("2026-03-09", "2026-03-07"),
    ]
    upsert = (
        "INSERT INTO stats_daily_callers (day, actor, calls) VALUES (%s, %s, 1) "
        "ON CONFLICT (day, actor) DO UPDATE SET calls = stats_daily_callers.calls + excluded.calls"
    )
    with engine.begin() as connection:
        connection.exec_driver_sql(
            upsert,
            [
                ("2026-03-02", "ip:10.0.0.1"),  # between two days
                ("2026-02-27", "ip:10.0.0.2"),  # before all
                ("2026-03-11", "ip:10.0.0.3"),  # after all
                ("2026-03-11", "ip:10.0.0.3"),  # the same again: an update
                ("2026-03-05", "ip:10.0.0.4"),  # a day already there
                ("2026-03-04", "u:1"),  # a new caller
            ],
        )
        # several rows of one caller in one statement, in no order
        connection.exec_driver_sql(
            "INSERT INTO stats_daily_callers (day, actor, calls) "
            "VALUES ('2026-03-08', 'u:2', 1), ('2026-03-02', 'u:2', 1), ('2026-03-05', 'u:2', 1)"
        )
    linked_rows = rows()
    assert linked(linked_rows) and len(linked_rows) == 1001 + 3 + 1 + 3
    with engine.connect() as connection:
        assert (
            connection.exec_driver_sql(
                "SELECT calls FROM stats_daily_callers WHERE day = '2026-03-11' AND actor = 'ip:10.0.0.3'"
            ).scalar_one()
            == 2
        )

    _migrate(database_url, "downgrade", "0012_period_actor_counts")
    assert "prev_day" not in table_columns(database_url)["stats_daily_callers"]
    with engine.connect() as connection:
        assert (
            connection.exec_driver_sql(
                "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'stats_daily_callers_link')"
                " + (SELECT count(*) FROM pg_proc WHERE proname = 'stats_daily_callers_link')"
            ).scalar_one()
            == 0
        )
        assert connection.exec_driver_sql("SELECT count(*) FROM stats_daily_callers").scalar_one() == 1008
    assert upgrade(database_url).applied == ["0013_daily_callers_prev_day"]
    assert linked(rows())
    engine.dispose()
