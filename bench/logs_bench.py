"""Benchmark 5 (throughput): the batching log writer against committing one row at a time."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from app.db import init_db, make_engine
from app.models import ChatLog
from bench.report import Result
from services.logs import CallRecord, LogWriter


def _call(i: int) -> CallRecord:
    return CallRecord(
        user_id=i % 50 or None,
        username=None,
        ip_address=f"10.0.{i % 200}.{i % 250}",
        channel_id=1,
        model_id=f"model-{i % 5}",
        prompt_tokens=20,
        completion_tokens=200,
        created_at=datetime.now(UTC),
        status="ok",
        tokens_estimated=False,
        duration_ms=1200,
    )


def bench_log_inserts(work_dir: Path, *, rows: int, baseline_rows: int) -> Result:
    result = Result("5. Sustained call-log inserts: batching writer ÷ commit-per-row")
    engine = make_engine(f"sqlite:///{work_dir / 'logs-bench.db'}")
    init_db(engine)
    started = time.perf_counter()
    for i in range(baseline_rows):
        with engine.begin() as connection:  # one transaction (and WAL commit) per row
            connection.execute(insert(ChatLog), [asdict(_call(i))])
    baseline_rate = baseline_rows / (time.perf_counter() - started)

    writer = LogWriter(engine, ZoneInfo("UTC"))
    records = [_call(i) for i in range(rows)]
    started = time.perf_counter()
    for record in records:
        writer.record(record)
    writer.flush(timeout=600)
    writer_rate = rows / (time.perf_counter() - started)
    writer.close()
    engine.dispose()
    ratio = writer_rate / baseline_rate
    result.add("commit per row", baseline_rate, unit="rows/s")
    result.add("batching writer (incl. daily rollups)", writer_rate, unit="rows/s")
    result.add("writer ÷ commit-per-row", ratio, "≥ 50", ratio >= 50)
    result.notes.append(
        f"{rows:,} rows through LogWriter vs {baseline_rows:,} single-row transactions, same "
        "SQLite file settings (WAL, synchronous=NORMAL)"
    )
    return result
