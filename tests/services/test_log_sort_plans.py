"""Every sort of the log page reads an index of ``chat_logs`` in order instead of sorting the table
(at 10M rows a sort of the whole table took about 2 s), checked on SQLite's own query plans."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from app.migrate import upgrade
from services.log_queries import LOG_SORTS, LogFilter, page_query


@pytest.mark.parametrize("sort", [f"{sign}{key}" for key in LOG_SORTS for sign in ("", "-")])
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
