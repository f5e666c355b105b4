"""Log retention and the statistics rollups on a real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import Session, func, select

from app.models import ChatLog, PeriodActor, utcnow
from services.logs import CallRecord, LogWriter
from services.retention import purge_old_logs
from services.rollups import rebuild_rollups, rollups_need_rebuild
from services.stats import dashboard
from tests.helpers import migrated_engine


def _call(days_ago: float, ip: str = "10.0.0.1") -> CallRecord:
    return CallRecord(
        user_id=None,
        username=None,
        ip_address=ip,
        channel_id=None,
        model_id="m",
        prompt_tokens=1,
        completion_tokens=2,
        created_at=utcnow() - timedelta(days=days_ago),
        status="ok",
        tokens_estimated=False,
        duration_ms=5,
    )


def _engine(tmp_path: Path):
    engine = migrated_engine(tmp_path / "chat.db")
    return engine


def test_purge_deletes_only_old_rows(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    writer = LogWriter(engine, ZoneInfo("UTC"), journal_dir=tmp_path / "journal").start()
    for days in (0, 1, 29, 31, 45, 400):
        writer.record(_call(days, ip=f"10.0.0.{days % 250}"))
    writer.flush()
    assert purge_old_logs(engine, retention_days=30) == 3
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(ChatLog)).one() == 3
        days = session.exec(
            select(func.count()).select_from(PeriodActor).where(PeriodActor.kind == "d")
        ).one()
        assert days == 3, "who was active on forgotten days is forgotten too"
    writer.close()


def test_rollups_follow_inserts_and_rebuild_for_another_zone(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    utc = ZoneInfo("UTC")
    assert not rollups_need_rebuild(engine, "UTC"), "an empty database needs no rebuild"
    writer = LogWriter(engine, utc, journal_dir=tmp_path / "journal").start()
    for _ in range(5):
        writer.record(_call(0))
    writer.flush()
    with Session(engine) as session:
        assert dashboard(session=session, zone=utc)["calls"]["today"] == 5
    assert rollups_need_rebuild(engine, "Asia/Tokyo")
    assert rebuild_rollups(engine, ZoneInfo("Asia/Tokyo")) == 5
    assert not rollups_need_rebuild(engine, "Asia/Tokyo")
    with Session(engine) as session:
        stats = dashboard(session=session, zone=ZoneInfo("Asia/Tokyo"))
        assert sum(point["calls"] for point in stats["trend"]) == 5
    writer.close()


def test_writer_stores_every_field_and_counts_each_actor_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    shanghai = ZoneInfo("Asia/Shanghai")
    writer = LogWriter(
        engine, shanghai, journal_dir=tmp_path / "journal", batch_size=7, linger_seconds=0
    ).start()
    first = CallRecord(
        user_id=3,
        username="a@example.com",
        ip_address="2001:db8::1",
        channel_id=9,
        model_id="m-1",
        prompt_tokens=None,
        completion_tokens=40,
        created_at=utcnow(),
        status="client_aborted",
        tokens_estimated=True,
        duration_ms=1234,
    )
    writer.record(first)
    for n in range(60):  # the same three guests again and again, across batches
        writer.record(_call(0, ip=f"10.0.0.{n % 3}"))
    assert writer.flush()
    with Session(engine) as session:
        stored = session.exec(select(ChatLog).order_by(ChatLog.id)).first()
        assert stored is not None
        for name in CallRecord.__slots__:
            assert getattr(stored, name) == getattr(first, name), name
        actors = session.exec(select(PeriodActor.actor).where(PeriodActor.kind == "d")).all()
        assert sorted(actors) == ["ip:10.0.0.0", "ip:10.0.0.1", "ip:10.0.0.2", "u:3"]
        stats = dashboard(session=session, zone=shanghai)
        assert stats["calls"]["today"] == 61 and stats["active_users"]["today"] == 4
    writer.close()


def test_the_writers_connection_settings_stay_its_own(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    writer = LogWriter(engine, ZoneInfo("UTC"), journal_dir=tmp_path / "journal").start()
    writer.record(_call(0))
    assert writer.flush()
    writer.close()  # the writer's connection is closed, not handed back to the pool
    for _ in range(3):
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == -2000  # SQLite's default


def test_the_writer_stores_what_sqlalchemys_own_insert_stores(tmp_path: Path) -> None:
    """The writer builds SQLite's row tuples itself; the stored values must be the ORM's to the byte."""
    engine = _engine(tmp_path)
    kolkata = timezone(timedelta(hours=5, minutes=30))
    records = [
        CallRecord(
            user_id=n or None,
            username=f"u{n}@example.com" if n else None,
            ip_address=f"10.1.0.{n}",
            channel_id=n + 100,
            model_id=f"model-{n}",
            prompt_tokens=n * 3 or None,
            completion_tokens=n * 7,
            created_at=when,
            status=("ok", "upstream_error", "client_aborted")[n % 3],
            tokens_estimated=bool(n % 2),
            duration_ms=n * 11,
        )
        for n, when in enumerate(
            [
                utcnow(),
                utcnow().replace(microsecond=0),
                datetime(2026, 3, 1, 12, 30, 15, 250, tzinfo=kolkata),
                datetime(2026, 10, 25, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")),
            ]
        )
    ]
    writer = LogWriter(engine, ZoneInfo("UTC"), journal_dir=tmp_path / "journal").start()
    for record in records:
        writer.record(record)
    assert writer.flush()
    writer.close()
    with engine.begin() as connection:
        connection.execute(
            insert(ChatLog), [{name: getattr(r, name) for name in CallRecord.__slots__} for r in records]
        )
    columns = ", ".join(CallRecord.__slots__)
    with sqlite3.connect(tmp_path / "chat.db") as db:
        rows = db.execute(f"SELECT {columns}, typeof(created_at) FROM chat_logs ORDER BY id").fetchall()
    assert len(rows) == 2 * len(records)
    assert rows[: len(records)] == rows[len(records) :]
