"""The log writer on a real SQLite file: a database that refuses writes for a while (another connection
holds an exclusive lock), memory bounded meanwhile, a crash between the commit and the journal's
cleanup (replayed exactly once), and a writer thread that fails and is restarted."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from services import journal_files
from services.call_log import Caller, CallLog
from services.logs import LogWriter
from tests.helpers import HANG_SECONDS, migrated_engine, wait_until
from tests.services.test_journal import record

UTC_ZONE = ZoneInfo("UTC")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_engine(tmp_path / "chat.db")
    yield engine
    engine.dispose()


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Another connection holds ``BEGIN EXCLUSIVE``: the writer's inserts wait 5 s, then fail."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def stored(path: Path) -> tuple[int, int, int, int]:
    """Rows, distinct IPs, and the rollup's calls and completion tokens."""
    with sqlite3.connect(path) as db:
        rows, ips = db.execute("SELECT count(*), count(DISTINCT ip_address) FROM chat_logs").fetchone()
        calls, tokens = db.execute(
            "SELECT sum(calls), sum(completion_tokens) FROM stats_daily_models"
        ).fetchone()
    return rows, ips, calls or 0, tokens or 0


def failures_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum("could not write" in r.getMessage() for r in caplog.records)


def test_rows_the_database_refuses_are_retried_until_it_takes_them(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="pyaichat.logs")
    writer = LogWriter(engine, UTC_ZONE, journal_dir=tmp_path / "journal", linger_seconds=0).start()
    calls = [record(i) for i in range(1, 301)]
    with exclusive_lock(tmp_path / "chat.db"):
        for call in calls:
            writer.record(call)
        # each attempt waits out SQLite's busy timeout (5 s); a lasting failure is logged every 30 s
        wait_until(
            lambda: writer.failed_writes >= 2, poll=0.05, what="the writer retried the locked database"
        )
        assert failures_logged(caplog) == 1, "logged once, not once per attempt"
        assert stored(tmp_path / "chat.db")[0] == 0
    assert writer.flush(timeout=HANG_SECONDS)
    assert stored(tmp_path / "chat.db") == (300, 300, 300, sum(c.completion_tokens or 0 for c in calls))
    writer.close()


def test_memory_holds_a_bounded_backlog_and_the_journal_the_rest(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pyaichat.logs")
    writer = LogWriter(
        engine, UTC_ZONE, journal_dir=tmp_path / "journal", batch_size=100, backlog_max=100, linger_seconds=0
    ).start()
    calls = [record(i) for i in range(1, 2001)]
    with exclusive_lock(tmp_path / "chat.db"):
        for call in calls:
            writer.record(call)
        assert len(writer._backlog) <= 100, "memory keeps at most backlog_max records"
        assert writer.waiting == 2000
        wait_until(lambda: failures_logged(caplog) >= 1, poll=0.05, what="the writer hit the lock")
        assert any("wait in the journal only" in r.getMessage() for r in caplog.records)
    assert writer.flush(timeout=HANG_SECONDS)
    assert stored(tmp_path / "chat.db") == (2000, 2000, 2000, sum(c.completion_tokens or 0 for c in calls))
    assert any("read back from the journal are stored" in r.getMessage() for r in caplog.records)
    writer.close()


def _crash(writer: LogWriter) -> None:
    """What ``kill -9`` leaves of a writer: its journal files as they are, its slot free."""
    with writer._cond:
        writer._stop_at = 0.0  # the thread gives up at its next step, writing nothing more
        writer._cond.notify_all()
    writer._thread.join(HANG_SECONDS)
    journal = writer._journal
    assert journal._slot_lock is not None
    journal_files.unlock(journal._slot_lock)
    journal._slot_lock = None


def test_a_crash_after_the_commit_is_replayed_exactly_once(tmp_path: Path, engine: Engine) -> None:
    first = LogWriter(engine, UTC_ZONE, journal_dir=tmp_path / "journal", batch_size=100).start()
    calls = [record(i) for i in range(1, 351)]
    for call in calls[:300]:
        first.record(call)
    assert first.flush(timeout=HANG_SECONDS)  # stored, but the journal still holds them (its active segment)
    with exclusive_lock(tmp_path / "chat.db"):
        for call in calls[300:]:
            first.record(call)  # journaled, never stored: the crash comes first
        _crash(first)
    assert stored(tmp_path / "chat.db")[0] == 300

    second = LogWriter(engine, UTC_ZONE, journal_dir=tmp_path / "journal").start()
    assert second.flush(timeout=HANG_SECONDS)
    wait_until(lambda: not second._leftovers, what="the earlier journal replayed")
    assert stored(tmp_path / "chat.db") == (350, 350, 350, sum(c.completion_tokens or 0 for c in calls))
    assert not [p for p in (tmp_path / "journal").rglob("*.seg") if first.journal_id in p.name]
    second.close()


def test_a_journal_is_replayed_only_into_the_database_it_was_written_for(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """One data directory, two databases in turn (DATABASE_URL changed after a crash): the rows wait
    for their own database instead of landing in the other one."""
    caplog.set_level(logging.WARNING, logger="pyaichat.journal")
    journal_dir = tmp_path / "journal"
    first = LogWriter(engine, UTC_ZONE, journal_dir=journal_dir).start()
    calls = [record(i) for i in range(1, 51)]
    with exclusive_lock(tmp_path / "chat.db"):
        for call in calls:
            first.record(call)
        _crash(first)

    other_engine = migrated_engine(tmp_path / "other.db")
    other = LogWriter(other_engine, UTC_ZONE, journal_dir=journal_dir).start()
    other.record(record(99))
    assert other.flush(timeout=HANG_SECONDS)
    other.close()
    other_engine.dispose()
    assert stored(tmp_path / "other.db")[0] == 1, "only its own row"
    assert any("written for another database" in r.getMessage() for r in caplog.records)
    assert [p for p in journal_dir.rglob("*.seg") if first.journal_id in p.name], "kept for its database"

    again = LogWriter(engine, UTC_ZONE, journal_dir=journal_dir).start()
    wait_until(lambda: not again._leftovers, what="the first journal replayed into its own database")
    assert stored(tmp_path / "chat.db")[:3] == (50, 50, 50)
    again.close()
    assert not list(journal_dir.rglob("*.seg")) and not list(journal_dir.rglob("*.target"))


def test_the_writer_thread_is_restarted_after_an_unexpected_failure(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = LogWriter(engine, UTC_ZONE, journal_dir=tmp_path / "journal", linger_seconds=0).start()
    failing = {"left": 2}
    checkpoint = writer._journal.checkpoint

    def broken_checkpoint(stored_seq: int) -> None:  # a bug outside the database's retry loop
        if failing["left"]:
            failing["left"] -= 1
            raise RuntimeError("a bug in the writer")
        checkpoint(stored_seq)

    monkeypatch.setattr(writer._journal, "checkpoint", broken_checkpoint)  # before any record
    for i in range(1, 51):
        writer.record(record(i))
    assert writer.flush(timeout=HANG_SECONDS)
    for i in range(51, 101):
        writer.record(record(i))
    assert writer.flush(timeout=HANG_SECONDS)
    wait_until(
        lambda: sum("restarting it" in r.getMessage() for r in caplog.records) == 2,
        what="both failures logged (the second follows the flush: it is in the step after the commit)",
    )
    assert writer._thread.is_alive()
    assert stored(tmp_path / "chat.db")[:3] == (100, 100, 100)
    writer.close()


def test_token_counts_past_a_32_bit_column_are_clamped(tmp_path: Path, engine: Engine) -> None:
    writer = LogWriter(engine, UTC_ZONE, journal_dir=tmp_path / "journal", linger_seconds=0).start()
    call = CallLog(writer, Caller(ip="10.9.9.9"), "gpt-test", [])
    call.usage = (10**12, -5)  # what a broken upstream may report
    call.write("ok")
    assert writer.flush(timeout=HANG_SECONDS)
    with sqlite3.connect(tmp_path / "chat.db") as db:
        assert db.execute("SELECT prompt_tokens, completion_tokens FROM chat_logs").fetchone() == (
            2**31 - 1,
            0,
        )
    writer.close()
