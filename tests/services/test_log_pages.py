"""The log page's total: exact while it is near, "more than" past ``COUNT_AHEAD`` rows after the page's
last row (an exact count of 10M calls is a scan of all of them on every page), on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.migrate import upgrade
from app.models import ChatLog
from services import log_queries
from services.log_queries import LogFilter, list_logs

ROWS = 12


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setattr(log_queries, "COUNT_AHEAD", 5)
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    upgrade(url)
    engine = create_engine(url)
    with Session(engine) as session:
        for index in range(ROWS):
            model = "model-a" if index % 3 else "model-b"  # 4 calls of model-b
            session.add(ChatLog(ip_address=f"10.0.0.{index}", model_id=model, duration_ms=index))
        session.commit()
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("page", "page_size", "total", "capped"),
    [
        (1, 2, 7, True),  # the page's 2 and 5 more counted: there are more
        (3, 2, 11, True),  # the horizon moves with the page
        (4, 2, ROWS, False),  # within reach: exact
        (1, 20, ROWS, False),
        (7, 2, ROWS, False),  # past the end: no rows, the exact total
    ],
)
def test_the_total_is_exact_within_reach_and_more_than_beyond(
    engine: Engine, page: int, page_size: int, total: int, capped: bool
) -> None:
    with Session(engine) as session:
        result = list_logs(session=session, flt=LogFilter(), page=page, page_size=page_size)
    assert (result.total, result.total_capped) == (total, capped)
    assert len(result.items) == max(0, min(page_size, ROWS - (page - 1) * page_size))


def test_a_filter_counts_only_its_rows(engine: Engine) -> None:
    with Session(engine) as session:
        result = list_logs(session=session, flt=LogFilter(model="model-b"), page=1, page_size=2)
    assert (result.total, result.total_capped) == (4, False)
    assert {item["model_id"] for item in result.items} == {"model-b"}
