"""Benchmark 5 (throughput): the batching log writer against committing one row at a time."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from app.db import make_engine
from app.migrate import declared_for, upgrade
from app.models import ChatLog
from bench.databases import Database
from bench.report import Result
from services.log_rows import SQLITE_INSERT, sqlite_row
from services.log_store import WRITER_CACHE_KIB, WRITER_CHECKPOINT_PAGES
from services.logs import BATCH_SIZE, CallRecord, LogWriter
from tests.postgres_server import libpq_url

ZONE = ZoneInfo("Asia/Shanghai")


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


def _through_writer(url: str, path: Path, records: list[CallRecord], **options: float) -> float:
    """Rows per second from the first ``record`` until every row is committed (the journal by ``path``)."""
    upgrade(url)
    engine = make_engine(url)
    writer = LogWriter(engine, ZONE, journal_dir=path.parent / f"{path.stem}-journal", **options)  # type: ignore[arg-type]
    writer.start()
    started = time.perf_counter()
    for record in records:
        writer.record(record)
    writer.flush(timeout=600)
    rate = len(records) / (time.perf_counter() - started)
    writer.close()
    engine.dispose()
    return rate


def _bare_inserts(url: str, records: list[CallRecord]) -> float:
    """One INSERT of the row alone per transaction (no daily rollups), through SQLAlchemy."""
    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    for record in records:
        with engine.begin() as connection:
            connection.execute(insert(ChatLog), [asdict(record)])
    rate = len(records) / (time.perf_counter() - started)
    engine.dispose()
    return rate


def _sqlite_floor(path: Path, records: list[CallRecord]) -> float:
    """The same rows as tuples straight into sqlite3's executemany, batches as the writer's, same
    pragmas: what SQLite itself needs for the table and its indexes (no rollups, no Python objects)."""
    upgrade(f"sqlite:///{path}")
    rows = [sqlite_row(r) for r in records]  # the writer's own tuples, built before the clock starts
    sql = SQLITE_INSERT
    connection = sqlite3.connect(path, isolation_level=None)
    pragmas = (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        f"cache_size=-{WRITER_CACHE_KIB}",
        f"wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}",
    )
    for pragma in pragmas:
        connection.execute(f"PRAGMA {pragma}")
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH_SIZE):
        connection.execute("BEGIN")
        connection.executemany(sql, rows[start : start + BATCH_SIZE])
        connection.execute("COMMIT")
    rate = len(rows) / (time.perf_counter() - started)
    connection.close()
    return rate


def _postgres_floor(url: str, records: list[CallRecord]) -> float:
    """The same rows as tuples straight into psycopg's executemany (pipelined), batches as the writer's:
    what PostgreSQL itself needs for the table and its indexes (no rollups, no Python objects)."""
    import psycopg

    upgrade(url)
    rows = [tuple(getattr(r, name) for name in CallRecord.__slots__) for r in records]
    sql = "INSERT INTO chat_logs ({}) VALUES ({})".format(  # noqa: S608 (the record's field names)
        ", ".join(CallRecord.__slots__), ", ".join(["%s"] * len(CallRecord.__slots__))
    )
    with psycopg.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH_SIZE):
            cursor.executemany(sql, rows[start : start + BATCH_SIZE])
            connection.commit()
        rate = len(rows) / (time.perf_counter() - started)
    return rate


def bench_log_inserts(work_dir: Path, *, rows: int, baseline_rows: int, db: Database | None = None) -> Result:
    db = db or Database()
    result = Result(f"5. Sustained call-log inserts{db.label}: batching writer ÷ commit-per-row")
    records = [_call(i) for i in range(rows)]
    per_row, bare, batched = (work_dir / f"logs-{name}.db" for name in ("per-row", "bare", "batched"))
    baseline_rate = _through_writer(
        db.url(per_row), per_row, records[:baseline_rows], batch_size=1, linger_seconds=0
    )
    bare_rate = _bare_inserts(db.url(bare), records[:baseline_rows])
    writer_rate = _through_writer(db.url(batched), batched, records)
    if db.server is None:
        floor_rate = _sqlite_floor(work_dir / "logs-floor.db", records)
        floor = "sqlite3 executemany"
    else:
        floor_rate = _postgres_floor(db.url(work_dir / "unused"), records)
        floor = "psycopg executemany"
    ratio = writer_rate / baseline_rate
    result.add("commit per row: the writer with batches of one (row + rollups)", baseline_rate, unit="rows/s")
    result.add("commit per row: bare INSERT, no rollups", bare_rate, unit="rows/s")
    result.add("batching writer (row + rollups)", writer_rate, unit="rows/s")
    result.add("writer ÷ commit-per-row (same work)", ratio, "≥ 50", ratio >= 50)
    result.add("writer ÷ bare INSERT per row", writer_rate / bare_rate)
    result.add(f"{floor} of the same rows, no rollups (engine floor)", floor_rate, unit="rows/s")
    result.add("writer ÷ engine floor", writer_rate / floor_rate)
    where = (
        "file with the app's settings (WAL, synchronous=NORMAL)"
        if db.server is None
        else "database on one local PostgreSQL server (fsync on, synchronous_commit=off)"
    )
    dialect = "sqlite" if db.server is None else "postgresql"
    indexes = sum(
        declared_for(dialect)(index, index.name, "index", False, None) for index in ChatLog.__table__.indexes
    )
    result.notes.append(
        f"{rows:,} rows through LogWriter vs {baseline_rows:,} one-row transactions; every database a fresh "
        f"{where}; chat_logs carries {indexes} indexes + its key"
    )
    return result
