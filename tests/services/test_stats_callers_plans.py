"""One day's top users and top IPs (``callers_of_a_day`` in services/stats_callers.py) are the first ten
rows of an index in their order, however many callers tie at the tenth place: checked on the plans of
the very statements it issues, on SQLite and on a real PostgreSQL server (its databases' own collation
and a language's, ICU en-US). A range ending today reads today's callers that can reach a top by name, an
index seek each, and counts those new to the range in ``idx_stats_daily_callers_new`` (revision 0013)."""

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
from app.models import DailyCaller, PeriodActor
from services.stats_callers import TOP_CALLERS, CallerSums, callers_of_a_day
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


TODAY = date(2026, 3, 4)
NEW_GUESTS = 100  # callers of today new to the range


def _range_issued(url: str) -> tuple[Engine, list[tuple[str, Any]]]:
    """Above the rows of ``_filled``: 20 guests with 100 calls on 2026-03-02, and today (2026-03-04)
    3,000 of the guests of 2026-03-01, ``NEW_GUESTS`` new ones and every user, one call each. The
    statements the range 2026-03-01..today issues on today's callers, read by bound (checked by its
    answer: ``u:49``'s 50 + 50 + 1 calls lead)."""
    engine = _filled(url)
    rows = [{"day": date(2026, 3, 2), "actor": f"ip:10.99.0.{n}", "calls": 100} for n in range(20)]
    today = [f"ip:10.{n // 250}.{n % 250}.1" for n in range(3_000)]
    today += [f"ip:10.200.{n // 250}.{n % 250}" for n in range(NEW_GUESTS)] + [f"u:{n}" for n in range(50)]
    rows += [{"day": TODAY, "actor": actor, "calls": 1} for actor in today]
    with engine.begin() as connection:
        connection.execute(insert(DailyCaller), rows)
        connection.execute(insert(PeriodActor), [{"kind": "d", "start": TODAY, "actor": a} for a in today])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")
    issued: list[tuple[str, Any]] = []

    def remember(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if "prev_day" in statement or " IN (" in statement:
            issued.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        with Session(engine) as session:
            top, count = CallerSums().top_callers(session, DAY, TODAY, today=TODAY)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    assert top["u:"][0] == ("49", 50 + 50 + 1) and top["ip:"][0] == ("10.99.0.0", 100)
    assert count == GUESTS + 50 + 20 + NEW_GUESTS
    assert len(issued) == 3, issued  # today's calls of the callers that can reach a top; two counts
    return engine, issued


def test_sqlite_reads_todays_callers_by_name_and_counts_the_new_ones_in_the_index(tmp_path: Path) -> None:
    engine, issued = _range_issued(f"sqlite:///{tmp_path / 'chat.db'}")
    try:
        with engine.connect() as connection:
            plans = [
                [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
                for statement, parameters in issued
            ]
        search = "SEARCH stats_daily_callers USING"
        assert plans == [
            [f"{search} INDEX sqlite_autoindex_stats_daily_callers_1 (day=? AND actor=?)"],
            [f"{search} COVERING INDEX idx_stats_daily_callers_new (day=? AND prev_day=?)"],
            [f"{search} COVERING INDEX idx_stats_daily_callers_new (day=? AND prev_day<?)"],
        ]
    finally:
        engine.dispose()


def test_postgresql_reads_todays_callers_by_name_and_counts_the_new_ones_in_the_index(
    postgres_url: str,
) -> None:
    engine, issued = _range_issued(create_database(postgres_url))
    try:
        with engine.connect() as connection:
            # by name: an index seek per caller (by (day, actor) or (actor, day)); the counts: two ranges
            expected = [{"stats_daily_callers_pkey", "idx_stats_daily_callers_actor"}]
            expected += [{"idx_stats_daily_callers_new"}] * 2
            for (statement, parameters), indexes in zip(issued, expected, strict=True):
                nodes = _postgres_plan(connection, statement, parameters, run=True)
                used = {node["Index Name"] for node in nodes if "Index Name" in node}
                shown = json.dumps(nodes[0], indent=1)
                assert used and used <= indexes, shown
                assert not [node for node in nodes if node["Node Type"] == "Seq Scan"], shown
    finally:
        engine.dispose()
