"""The call-log writer's side of the database: its own connection, each journal's mark, and one
transaction per batch (the mark moves, the rows go in, the daily rollups are updated). Only the writer
thread of ``services/logs.py`` uses a :class:`BatchStore`; retrying is the writer's."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col

from app.models import CallLogJournal, utcnow
from services.call_record import CallRecord
from services.log_rows import insert_rows, move_mark, touch_users
from services.rollups import Actor, Rollup

KNOWN_ACTORS_MAX = 200_000
WRITER_CACHE_KIB = 64 * 1024
WRITER_CHECKPOINT_PAGES = 10_000  # about 40 MB of WAL between automatic checkpoints (default 1,000)

Batch = list[tuple[int, CallRecord]]  # (journal sequence number, record), in sequence order


class MarkConflict(Exception):
    """The database's mark for a journal is not where this writer last left it: the records up to it
    were stored already (by an attempt whose commit went through before a crash, or another process)."""


class BatchStore:
    """Stores batches of call records for the writer thread, which alone uses it."""

    def __init__(self, engine: Engine, zone: ZoneInfo) -> None:
        self._engine = engine
        self._zone = zone
        self._marks: dict[str, int | None] = {}  # journal id → its mark in the database (None: no row)
        # active users per period already stored: the same callers come back all day, and their rows in
        # stats_period_actors need writing once, not once per batch
        self._known_actors: set[Actor] = set()
        self._connection: Connection | None = None

    def mark(self, journal_id: str) -> int | None:
        """The journal's mark in the database (None: no row), read once and then kept up to date."""
        if journal_id not in self._marks:
            self._marks[journal_id] = self._read_mark(journal_id)
        return self._marks[journal_id]

    def write(self, journal_id: str, batch: Batch) -> int:
        """One transaction: the journal's mark moves from where this writer left it to the batch's last
        record (or the transaction fails), the rows go in, the rollups are updated."""
        previous = self.mark(journal_id)
        if previous is not None:
            batch = [item for item in batch if item[0] > previous]
            if not batch:
                return previous
        last = batch[-1][0]
        records = [record for _, record in batch]
        rollup = Rollup()
        rollup.add_rows(records, self._zone)
        connection = self._writer_connection()
        try:
            with connection.begin():
                _move_mark(connection, journal_id, previous, last)
                insert_rows(connection, records)
                touch_users(connection, records)
                stored = rollup.apply(connection, known_actors=self._known_actors)
        except MarkConflict:
            del self._marks[journal_id]  # read again by the next attempt
            raise
        self._marks[journal_id] = last
        if len(self._known_actors) > KNOWN_ACTORS_MAX:
            self._known_actors.clear()
        self._known_actors |= stored
        return last

    def drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except SQLAlchemyError:
                pass
            self._connection = None

    def _writer_connection(self) -> Connection:
        """The writer's own connection, kept open. On SQLite it gets a page cache big enough for the
        indexes of ``chat_logs`` that a batch touches, and checkpoints the WAL less often; the pooled
        connections the pages and the API read with keep SQLite's defaults."""
        if self._connection is None or self._connection.closed:
            self._connection = self._engine.connect()
            self._connection.detach()  # its pragmas must not follow it back into the shared pool
            if self._connection.dialect.name == "sqlite":
                self._connection.exec_driver_sql(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
                self._connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
                self._connection.commit()
        return self._connection

    def _read_mark(self, journal_id: str) -> int | None:
        connection = self._writer_connection()
        with connection.begin():
            query = select(col(CallLogJournal.seq)).where(col(CallLogJournal.journal_id) == journal_id)
            value = connection.execute(query).scalar()
        return None if value is None else int(value)


def _move_mark(connection: Connection, journal_id: str, previous: int | None, last: int) -> None:
    """First in the batch's transaction, so that a conflicting writer is found before any row is
    inserted (and on PostgreSQL waits on the mark's row lock instead of inserting twice)."""
    now = utcnow()
    if previous is None:
        try:
            connection.execute(insert(CallLogJournal).values(journal_id=journal_id, seq=last, updated_at=now))
        except IntegrityError:
            raise MarkConflict() from None
        return
    if not move_mark(connection, journal_id, previous, last, now):
        raise MarkConflict()
