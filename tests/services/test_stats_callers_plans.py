"""One day's top users and top IPs (``callers_of_a_day`` in services/stats_callers.py) are the first ten
rows of an index in their order, however many callers tie at the tenth place: checked on the plans of
the very statements it issues, on SQLite and on a real PostgreSQL server (its databases' own collation
and a language's, ICU en-US)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from app.db import make_engine
from app.migrate import upgrade
from app.models import DailyCaller
from services.stats_callers import TOP_CALLERS, callers_of_a_day
from tests.postgres_server import create_database, run_postgres

DAY = date(2026, 3, 1)
GUESTS = 20_000  # one call each: all tied at the tenth place of the top IPs
USERS = 30  # 2..31 calls: the top users are above the guests' tie
ICU_EN_US = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US-u-ka-shifted'"
BYTEWISE_INDEX = "idx_stats_daily_callers_top_bytewise"  # revision 0011


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with run_postgres() as url:
        yield url


def _filled(url: str) -> Engine:
    """The newest revision, and a day of ``GUESTS`` one-call guests, ``USERS`` users and (on other
    days) a few callers more, analysed as autovacuum would."""
    upgrade(url)
    engine = make_engine(url)
    rows = [{"day": DAY, "actor": f"ip:10.{n // 250}.{n % 250}.1", "calls": 1} for n in range(GUESTS)]
    rows += [{"day": DAY, "actor": f"u:{n}", "calls": n + 2} for n in range(USERS)]
    rows += [{"day": date(2026, 3, d), "actor": f"u:{n}", "calls": n + 1} for d in (2, 3) for n in range(50)]
    with engine.begin() as connection:
        connection.execute(insert(DailyCaller), rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")
    return engine


def _tops_issued(engine: Engine) -> list[tuple[str, Any]]:
    """The statements ``callers_of_a_day`` issues for the tops (with their parameters), and checks its
    answer."""
    issued: list[tuple[str, Any]] = []

    def remember(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if "ORDER BY" in statement:
            issued.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        with Session(engine) as session:
            top, count = callers_of_a_day(session, DAY)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert count == GUESTS + USERS
    assert top["u:"] == [(str(n), n + 2) for n in range(USERS - 1, USERS - 1 - TOP_CALLERS, -1)]
    guests = sorted(f"10.{n // 250}.{n % 250}.1" for n in range(GUESTS))  # ties by address as bytes
    assert top["ip:"] == [(ip, 1) for ip in guests[:TOP_CALLERS]]
    assert len(issued) == 2, issued
    return issued


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _postgres_plan(
    connection: Connection, statement: str, parameters: Any, *, run: bool
) -> list[dict[str, Any]]:
    options = "ANALYZE, FORMAT JSON" if run else "FORMAT JSON"
    found = connection.exec_driver_sql(f"EXPLAIN ({options}) {statement}", parameters).scalar()
    return list(_nodes((found if isinstance(found, list) else json.loads(found))[0]["Plan"]))


def test_sqlite_reads_each_top_from_the_index_in_order(tmp_path: Path) -> None:
    engine = _filled(f"sqlite:///{tmp_path / 'chat.db'}")
    try:
        with engine.connect() as connection:
            for statement, parameters in _tops_issued(engine):
                plan = [
                    row[-1]
                    for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                ]
                assert plan == [
                    "SEARCH stats_daily_callers USING COVERING INDEX idx_stats_daily_callers_top (day=?)"
                ]
    finally:
        engine.dispose()


@pytest.mark.parametrize("collation", ["database's", "ICU en-US"])
def test_postgresql_reads_ten_rows_of_the_bytewise_index_for_each_top(
    postgres_url: str, collation: str
) -> None:
    """Ties are ordered ``actor COLLATE "C"`` (bytes, as Python orders text): an index in the database's
    collation (revision 0010's) gave PostgreSQL the order of ``calls`` alone, and it sorted all 20,000
    guests tied at one call to find the first ten. Revision 0011's index gives the whole order: no sort,
    ten rows read. Without it, the same statements sort (which is what makes this test fail)."""
    engine = _filled(create_database(postgres_url, ICU_EN_US if collation == "ICU en-US" else ""))
    try:
        issued = _tops_issued(engine)
        with engine.connect() as connection:
            for statement, parameters in issued:
                nodes = _postgres_plan(connection, statement, parameters, run=True)
                shown = json.dumps(nodes[0], indent=1)
                assert not [node for node in nodes if "Sort" in node["Node Type"]], shown
                scans = [node for node in nodes if node.get("Relation Name") == "stats_daily_callers"]
                assert [(node.get("Index Name"), node["Actual Rows"]) for node in scans] == [
                    (BYTEWISE_INDEX, TOP_CALLERS)
                ], shown
            connection.exec_driver_sql(f"DROP INDEX {BYTEWISE_INDEX}")  # undone by the rollback
            for statement, parameters in issued:
                nodes = _postgres_plan(connection, statement, parameters, run=False)
                assert [node for node in nodes if "Sort" in node["Node Type"]], json.dumps(nodes[0], indent=1)
            connection.rollback()
    finally:
        engine.dispose()
