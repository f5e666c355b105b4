"""Every sort of the log page reads an index of ``chat_logs`` in order instead of sorting the table
(at 10M rows a sort of the whole table took about 2 s), checked on the query plans of SQLite and of a
real PostgreSQL server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from app.migrate import upgrade
from app.models import Channel, User
from services.log_queries import LOG_SORTS, LogFilter, page_query
from tests.postgres_server import create_database, run_postgres

SORTS = [f"{sign}{key}" for key in LOG_SORTS for sign in ("", "-")]
PG_ROWS = 50_000


@pytest.mark.parametrize("sort", SORTS)
def test_each_sort_of_the_first_page_follows_an_index(tmp_path: Path, sort: str) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        # with its parameters bound as the app runs it: SQLite matches an expression index only to the
        # same expression, and a bound 0 in place of a written one is another expression
        compiled = page_query(LogFilter(), page=3, page_size=20, sort=sort).compile(engine)
        parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", parameters)
            plan = [row[-1] for row in rows]
    finally:
        engine.dispose()
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert any(step.startswith("SCAN chat_logs USING INDEX idx_chat_logs_") for step in plan), plan


@pytest.fixture(scope="module")
def postgres_engine() -> Iterator[Engine]:
    """A PostgreSQL database at the newest revision with 50,000 calls (a tenth without a duration, in
    both the first and the last rows), a few users and channels, analysed as autovacuum would."""
    with run_postgres() as server_url:
        url = create_database(server_url)
        upgrade(url)
        engine = create_engine(url)
        with Session(engine) as session:
            session.add_all(User(email=f"u{n}@example.com", password_hash="x") for n in range(50))
            session.add_all(
                Channel(name=f"c{n}", base_url="http://127.0.0.1/v1", api_key="x", model_id="m")
                for n in range(4)
            )
            session.commit()
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO chat_logs (user_id, ip_address, channel_id, model_id, prompt_tokens, "
                "completion_tokens, created_at, status, tokens_estimated, duration_ms) "
                "SELECT CASE WHEN mod(n, 3) = 0 THEN NULL ELSE mod(n, 50) + 1 END, '10.0.0.' || mod(n, 200), "
                "mod(n, 4) + 1, 'model-' || mod(n, 8), mod(n, 500), mod(n, 2000), "
                "now() - n * interval '1 minute', "
                "CASE WHEN mod(n, 20) = 0 THEN 'upstream_error' ELSE 'ok' END, false, "
                "CASE WHEN mod(n, 10) = 0 THEN NULL ELSE mod(n * 7919, 5000) END "
                f"FROM generate_series(1, {PG_ROWS}) AS n"
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
        try:
            yield engine
        finally:
            engine.dispose()


def _postgres_plan(connection: Connection, flt: LogFilter, sort: str) -> dict[str, Any]:
    compiled = page_query(flt, page=3, page_size=20, sort=sort).compile(connection)
    found = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar()
    return dict((found if isinstance(found, list) else json.loads(found))[0]["Plan"])


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _sorts_and_indexes(plan: dict[str, Any]) -> tuple[list[str], set[str]]:
    nodes = list(_nodes(plan))
    # a Sort reads every row it orders; an Incremental Sort only orders the ties of an index's order (the
    # time sort: rows of the same created_at by id), a few rows at a time
    sorts = [node["Node Type"] for node in nodes if node["Node Type"] == "Sort"]
    return sorts, {
        node.get("Index Name", node["Node Type"])
        for node in nodes
        if node.get("Relation Name") == "chat_logs"
    }


# The filters the console offers that no index of their own serves better than a walk of the sort's
# index: a status (most calls are ``ok``), a model (one in eight here); a day range or one user is read
# through its own index and its few rows sorted, which is the right plan for those.
POSTGRES_FILTERS = {
    "none": LogFilter(),
    "status": LogFilter(status="ok"),
    "model": LogFilter(model="model-3"),
}


@pytest.mark.parametrize("filtered", list(POSTGRES_FILTERS))
@pytest.mark.parametrize("sort", SORTS)
def test_each_sort_of_a_page_follows_an_index_on_postgresql(
    postgres_engine: Engine, sort: str, filtered: str
) -> None:
    """Rows without a duration come last both ways (``NULLS LAST``): ascending, that is the order of
    ``idx_chat_logs_duration``; descending, of ``idx_chat_logs_duration_desc`` (revision 0009)."""
    with postgres_engine.connect() as connection:
        plan = _postgres_plan(connection, POSTGRES_FILTERS[filtered], sort)
    sorts, indexes = _sorts_and_indexes(plan)
    assert sorts == [], json.dumps(plan, indent=1)
    expected = {
        "-duration": "idx_chat_logs_duration_desc",
        "duration": "idx_chat_logs_duration",
        "-tokens": "idx_chat_logs_tokens",
        "tokens": "idx_chat_logs_tokens",
    }.get(sort)
    if expected is not None:
        assert indexes == {expected}, json.dumps(plan, indent=1)


@pytest.mark.parametrize("filtered", list(POSTGRES_FILTERS))
def test_without_revision_0009_postgresql_sorts_the_longest_first(
    postgres_engine: Engine, filtered: str
) -> None:
    """What the index is for: without it the same page sorts every (matching) row of the table."""
    with postgres_engine.connect() as connection:
        connection.exec_driver_sql("DROP INDEX idx_chat_logs_duration_desc")  # undone by the rollback
        plan = _postgres_plan(connection, POSTGRES_FILTERS[filtered], "-duration")
        connection.rollback()
    sorts, _ = _sorts_and_indexes(plan)
    assert sorts, json.dumps(plan, indent=1)


def test_the_duration_sort_puts_rows_without_a_duration_last_both_ways(postgres_engine: Engine) -> None:
    with postgres_engine.connect() as connection:
        for sort, longest_first in (("-duration", True), ("duration", False)):
            compiled = page_query(LogFilter(), page=1, page_size=200, sort=sort).compile(connection)
            rows = connection.exec_driver_sql(str(compiled), compiled.params).all()
            durations = [row.duration_ms for row in rows]
            assert None not in durations and durations == sorted(durations, reverse=longest_first)
            last_page = page_query(LogFilter(), page=PG_ROWS // 200, page_size=200, sort=sort)
            compiled = last_page.compile(connection)
            tail = [row.duration_ms for row in connection.exec_driver_sql(str(compiled), compiled.params)]
            assert tail[-1] is None and len(tail) == 200
