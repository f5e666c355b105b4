"""Call logs: a writer that batches inserts on its own thread, so the chat path never waits on the
database (one ``put`` per call, no per-chunk work)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from app.models import ChatLog
from services.stats import Actor, Rollup

log = logging.getLogger("pyaichat.logs")
BATCH_SIZE = 10_000
KNOWN_ACTORS_MAX = 200_000
WRITER_CACHE_KIB = 64 * 1024
WRITER_CHECKPOINT_PAGES = 10_000  # about 40 MB of WAL between automatic checkpoints (default 1,000)
LINGER_SECONDS = 0.2  # after the first record, wait this long for more: one commit for many calls


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One chat call, as logged. There is deliberately no field for message content."""

    user_id: int | None
    username: str | None
    ip_address: str
    channel_id: int | None
    model_id: str
    prompt_tokens: int | None
    completion_tokens: int | None
    created_at: datetime
    status: str
    tokens_estimated: bool
    duration_ms: int


_FIELDS = CallRecord.__slots__  # dataclasses.asdict() deep-copies and costs several times more per row


class LogWriter:
    """Collects call records from any thread or task and inserts them in batches on one thread, updating
    the daily statistics in the same transaction."""

    _STOP = object()

    def __init__(
        self,
        engine: Engine,
        zone: ZoneInfo,
        *,
        batch_size: int = BATCH_SIZE,
        linger_seconds: float = LINGER_SECONDS,
    ) -> None:
        """``batch_size=1, linger_seconds=0`` commits every record on its own (benchmark 5's baseline)."""
        self._engine = engine
        self._zone = zone
        self._batch_size = batch_size
        self._linger = linger_seconds
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pyaichat-log-writer", daemon=True)
        self._idle = threading.Condition()
        self._pending = 0
        self._flushing = False
        # active users per period already stored: the same callers come back all day, and their rows in
        # stats_period_actors need writing once, not once per batch (only this thread touches the set)
        self._known_actors: set[Actor] = set()
        self._connection: Connection | None = None  # only the writer thread uses it
        self._thread.start()

    def record(self, call: CallRecord) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(call)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record handed in so far is written (tests and shutdown)."""
        self._flushing = True
        try:
            with self._idle:
                return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)
        finally:
            self._flushing = False

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(self._STOP)
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[CallRecord] = []
            stop = item is self._STOP
            if not stop:
                batch.append(item)  # type: ignore[arg-type]
            deadline = time.monotonic() + self._linger
            while len(batch) < self._batch_size and not stop:
                # take what is queued; wait for more only up to the linger deadline, and not while flushing
                wait = 0.0 if self._flushing else max(0.0, deadline - time.monotonic())
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is self._STOP:
                    stop = True
                    continue
                batch.append(item)  # type: ignore[arg-type]
            if batch:
                self._write(batch)
            if stop:
                if self._connection is not None:
                    self._connection.close()
                return

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

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except SQLAlchemyError:
                pass
            self._connection = None

    def _write(self, batch: list[CallRecord]) -> None:
        rollup = Rollup()
        rollup.add_rows(batch, self._zone)
        try:
            connection = self._writer_connection()
            with connection.begin():
                _insert_rows(connection, batch)
                stored = rollup.apply(connection, known_actors=self._known_actors)
            if len(self._known_actors) > KNOWN_ACTORS_MAX:
                self._known_actors.clear()
            self._known_actors |= stored
        except SQLAlchemyError as exc:
            log.error("could not write %d call log rows: %s", len(batch), type(exc).__name__)
            self._drop_connection()
        finally:
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()


_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
# the column names are CallRecord's fields, never input
_INSERT_SQL = "INSERT INTO chat_logs (" + ", ".join(_FIELDS) + ") VALUES ({marks})"  # noqa: S608


_SQLITE_INSERT = _INSERT_SQL.format(marks=", ".join("?" * len(_FIELDS)))


def _sqlite_row(c: CallRecord) -> tuple[object, ...]:
    """The row in ``_FIELDS`` order as SQLAlchemy stores it on SQLite: the time in UTC as
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (no offset), the flag as 0/1. One tuple, no per-column calls (a test
    compares the stored rows with SQLAlchemy's own insert)."""
    at = c.created_at  # calls are stamped in UTC; any other zone is converted first
    return (
        c.user_id,
        c.username,
        c.ip_address,
        c.channel_id,
        c.model_id,
        c.prompt_tokens,
        c.completion_tokens,
        (at if at.tzinfo is UTC else at.astimezone(UTC)).isoformat(" ", "microseconds")[:26],
        c.status,
        1 if c.tokens_estimated else 0,
        c.duration_ms,
    )


def _insert_rows(connection: Connection, batch: list[CallRecord]) -> None:
    """One DBAPI ``executemany`` of plain tuples: on SQLite built in one step, elsewhere each column
    passed through its type's bind processor.

    ``connection.execute(insert(ChatLog), dicts)`` does the same with SQLAlchemy's per-row parameter
    processing, which was most of the writer's time in benchmark 5.
    """
    dialect = connection.dialect
    if dialect.name == "sqlite":
        connection.exec_driver_sql(_SQLITE_INSERT, [_sqlite_row(call) for call in batch])
        return
    mark = _MARKS.get(dialect.paramstyle)
    if mark is None:
        connection.execute(insert(ChatLog), [{name: getattr(c, name) for name in _FIELDS} for c in batch])
        return
    columns = ChatLog.__table__.c  # type: ignore[attr-defined]
    processors = [
        (index, process)
        for index, name in enumerate(_FIELDS)
        if (process := columns[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    sql = _INSERT_SQL.format(marks=", ".join([mark] * len(_FIELDS)))
    rows: list[tuple[object, ...]] = []
    for call in batch:
        values = [getattr(call, name) for name in _FIELDS]
        for index, process in processors:
            values[index] = process(values[index])
        rows.append(tuple(values))
    connection.exec_driver_sql(sql, rows)
