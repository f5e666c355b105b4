"""Call logs: a writer that batches inserts on its own thread, so the chat path never waits on the
database (one journal append per call, no per-chunk work).

Every record is first appended to the call-log journal (``services/journal.py``), then kept in memory
for the writer thread, which stores batches in one transaction each (rows, daily rollups, and the
journal's mark in ``call_log_journals``: ``services/log_store.py``), retrying a refused batch with
backoff until the database takes it. Memory holds at most ``backlog_max`` records; past that the writer
reads them back from the journal, so an absent database costs disk, not memory. At start the journals
earlier runs left are replayed first; the marks make each row land exactly once.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from services.call_record import CallRecord as CallRecord  # re-exported: the type every caller logs
from services.call_record import encode_fields
from services.journal import SEGMENT_BYTES, JournalUnavailable, LiveJournal
from services.journal_files import OldJournal
from services.log_store import Batch, BatchStore, MarkConflict

log = logging.getLogger("pyaichat.logs")
BATCH_SIZE = 10_000
BACKLOG_MAX = 2 * BATCH_SIZE  # records kept in memory (~300 B each); the rest wait in the journal only
LINGER_SECONDS = 0.2  # after the first record, wait this long for more: one commit for many calls
SYNC_SECONDS = 1.0  # fdatasync of the journal at most this long after a write
RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 5.0
REPORT_SECONDS = 30.0  # a lasting failure is logged again this often

_T = TypeVar("_T")


class LogWriter:
    """Collects call records from any thread or task and inserts them in batches on one thread, updating
    the daily statistics in the same transaction. :meth:`start` (once the schema is current) opens the
    journal and starts the thread; records are taken from then on."""

    def __init__(
        self,
        engine: Engine,
        zone: ZoneInfo,
        *,
        journal_dir: Path,
        batch_size: int = BATCH_SIZE,
        linger_seconds: float = LINGER_SECONDS,
        backlog_max: int = BACKLOG_MAX,
        segment_bytes: int = SEGMENT_BYTES,
        on_record: Callable[[CallRecord], None] | None = None,
    ) -> None:
        """``batch_size=1, linger_seconds=0`` commits every record on its own (benchmark 5's baseline).
        ``on_record`` sees each record journaled by :meth:`record` (the metrics count calls there)."""
        self._engine = engine
        self._batch_size = batch_size
        self._linger = linger_seconds
        self._backlog_max = max(backlog_max, batch_size)
        self._journal_dir = journal_dir
        self._segment_bytes = segment_bytes
        self._live: LiveJournal | None = None  # opened by start()
        self._leftovers: list[OldJournal] = []
        self._cond = threading.Condition(threading.Lock())  # guards what follows up to _stop_at
        self._backlog: deque[tuple[int, CallRecord]] = deque()
        self._spill_from: int | None = None  # records from this seq on are in the journal only
        self._appended = 0  # the last seq handed in
        self._stored = 0  # the last seq of this run's journal the database holds
        self._behind_since: float | None = None  # monotonic: rows wait since then (or the last batch)
        self._on_record = on_record
        self._writer_idle = False
        self._flushing = 0
        self._stop_at: float | None = None  # monotonic deadline once close() began
        self._lost = 0
        self.failed_writes = 0  # database attempts that failed since start (each is retried)
        self._batches = BatchStore(engine, zone)  # only the writer thread touches it
        self._thread = threading.Thread(target=self._supervise, name="pyaichat-log-writer", daemon=True)

    def start(self) -> LogWriter:
        """Take a journal slot (journals earlier runs left there, or in slots nobody holds, are replayed
        first) and start the writer thread."""
        self._live = LiveJournal.open(
            self._journal_dir, self._segment_bytes, target=database_key(self._engine)
        )
        self._leftovers = list(self._live.leftovers)
        self._thread.start()
        return self

    @property
    def _journal(self) -> LiveJournal:
        if self._live is None:
            raise RuntimeError("the log writer is not started")
        return self._live

    @property
    def journal_id(self) -> str:
        return self._journal.journal_id

    @property
    def waiting(self) -> int:
        """Records of this run handed in but not yet in the database."""
        with self._cond:
            return self._appended - self._stored

    def write_lag(self) -> float:
        """Seconds since the database last took a batch (or since the first row began waiting), while
        rows of this run wait; 0 when none do."""
        with self._cond:
            since = self._behind_since
        return 0.0 if since is None else max(0.0, time.monotonic() - since)

    # ---- the chat path ----------------------------------------------------------------------------
    def record(self, call: CallRecord) -> None:
        """Journal the record (one write) and queue it; returns once the record would survive a crash."""
        fields = encode_fields(call)
        journal = self._journal
        with self._cond:
            try:
                seq = journal.append(fields)
            except JournalUnavailable as exc:
                self._lost += 1
                if self._lost == 1 or self._lost % 1000 == 0:
                    log.error("call log row lost: %s (%d lost since start)", exc, self._lost)
                return
            self._appended = seq
            if self._behind_since is None:
                self._behind_since = time.monotonic()
            if self._spill_from is None and len(self._backlog) < self._backlog_max:
                self._backlog.append((seq, call))
            elif self._spill_from is None:
                self._spill_from = seq  # memory is full: from here on the writer reads the journal
                log.warning(
                    "%d call log rows wait in memory; the next ones wait in the journal only, read back "
                    "from there once the database takes rows again",
                    len(self._backlog),
                )
            # wake the writer only when that changes something: it waits for a first record, or its
            # linger ends early at a full batch (a notify per call cost ~5 µs)
            if self._writer_idle:
                self._writer_idle = False
                self._cond.notify()
            elif len(self._backlog) == self._batch_size:
                self._cond.notify()
        if self._on_record is not None:
            self._on_record(call)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record handed in so far is in the database (tests and shutdown)."""
        with self._cond:
            target = self._appended
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._stored >= target, timeout=timeout)
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 10.0) -> None:
        """Store what is queued (for up to ``timeout`` seconds), stop the thread, sync and close the
        journal. What the database did not take stays in the journal for the next start."""
        with self._cond:
            if self._stop_at is None:
                self._stop_at = time.monotonic() + timeout
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout + 1)
        with self._cond:
            stored, waiting = self._stored, self._appended - self._stored
        if waiting:
            log.warning("%d call log rows are not in the database yet: the journal keeps them", waiting)
        if self._live is not None:
            self._live.close(stored_seq=stored)
        if not self._thread.is_alive():
            self._batches.drop_connection()

    # ---- the writer thread -----------------------------------------------------------------------
    def _supervise(self) -> None:
        """The writer's loop, started again after anything it did not expect (a bug, not the database:
        database failures are retried inside). Nothing is lost meanwhile: records leave memory only
        once stored, and the journal holds them anyway."""
        crashes = 0
        while True:
            try:
                self._run()
                return
            except Exception:
                crashes += 1
                log.exception("the call log writer failed; restarting it (%d restarts so far)", crashes)
                self._batches.drop_connection()
                if self._past_deadline():
                    return
                self._pause(min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2**crashes))

    def _run(self) -> None:
        self._replay_leftovers()
        synced = time.monotonic()
        while True:
            batch = self._next_batch()
            if time.monotonic() - synced >= SYNC_SECONDS:
                self._journal.sync()
                synced = time.monotonic()
            if batch is None:
                self._journal.sync()
                return
            if not batch:
                continue
            stored = self._store(self.journal_id, batch)
            if stored is None:
                return  # stopping, and the database still refuses: the journal keeps the rest
            self._advance(stored)

    def _next_batch(self) -> Batch | None:
        """The next records of this run: from memory, or read back from the journal after memory
        overflowed. ``[]`` when a sync interval passed without any, None when stopping with nothing left."""
        with self._cond:
            if not self._backlog and self._spill_from is None:
                if self._stop_at is not None:
                    return None
                self._writer_idle = True
                self._cond.wait(SYNC_SECONDS)
                self._writer_idle = False
                if not self._backlog and self._spill_from is None:
                    return []
            if self._backlog:
                deadline = time.monotonic() + self._linger
                while len(self._backlog) < self._batch_size and not self._flushing and self._stop_at is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                return list(itertools.islice(self._backlog, self._batch_size))
            start = self._spill_from
        if start is None:
            return []
        records, covered = self._journal.read(start, self._batch_size)
        if records:
            return records
        with self._cond:  # nothing readable up to ``covered`` (damaged lines, logged by the reader)
            log.error("call log rows %d to %d could not be read back from the journal", start, covered)
            self._spill_from = covered + 1 if covered < self._appended else None
            self._stored = max(self._stored, covered)
            if self._stored >= self._appended:
                self._behind_since = None
            self._cond.notify_all()
        return []

    def _advance(self, stored: int) -> None:
        with self._cond:
            while self._backlog and self._backlog[0][0] <= stored:
                self._backlog.popleft()
            if self._spill_from is not None and stored >= self._spill_from:
                self._spill_from = stored + 1 if stored < self._appended else None
                if self._spill_from is None:
                    log.warning("the call log rows read back from the journal are stored")
            self._stored = max(self._stored, stored)
            self._behind_since = None if self._stored >= self._appended else time.monotonic()
            self._cond.notify_all()
        self._journal.checkpoint(stored)

    def _replay_leftovers(self) -> None:
        """Store what journals of earlier runs hold beyond their marks, then delete them."""
        while self._leftovers:
            if not self._replay(self._leftovers[0]):
                return
            self._leftovers.pop(0)

    def _replay(self, old: OldJournal) -> bool:
        """One earlier journal into the database, then deleted; False when stopped before the end."""
        mark = self._retry(
            lambda: f"could not read the mark of journal {old.journal_id}", lambda: self._mark(old)
        )
        if mark is None:
            return False
        replayed = 0
        while records := old.read(mark + 1, self._batch_size):
            stored = self._store(old.journal_id, records)
            if stored is None:
                return False
            replayed += sum(1 for seq, _ in records if seq > mark)
            mark = max(stored, records[-1][0])
        log.info("call-log journal %s replayed: %d rows stored", old.journal_id, replayed)
        old.delete()
        old.release()
        return True

    def _mark(self, journal: OldJournal) -> int:
        return self._batches.mark(journal.journal_id) or 0

    def _store(self, journal_id: str, batch: Batch) -> int | None:
        """Store ``batch``, retrying until the database takes it; returns the journal's mark after it
        (None: gave up at the stop deadline)."""
        return self._retry(
            lambda: f"could not write {len(batch)} call log rows",
            lambda: self._batches.write(journal_id, batch),
        )

    def _retry(self, what: Callable[[], str], attempt: Callable[[], _T]) -> _T | None:
        delay, failures, first, reported = RETRY_FIRST_SECONDS, 0, 0.0, 0.0
        while True:
            try:
                result = attempt()
            except MarkConflict:
                failures += 1
                log.warning(
                    "%s: the journal was stored further than expected; skipping what is stored", what()
                )
                if failures == 1:
                    continue
            except Exception as exc:
                now = time.monotonic()
                failures += 1
                self.failed_writes += 1
                if failures == 1:
                    first = now
                if failures == 1 or now - reported >= REPORT_SECONDS:
                    reported = now
                    reason = exc.orig if isinstance(exc, DBAPIError) else exc
                    log.error(
                        "%s (%s: %s); retrying until the database takes them (%d rows waiting)",
                        what(),
                        type(exc).__name__,
                        reason,
                        self.waiting,
                    )
                self._batches.drop_connection()
            else:
                if failures:
                    log.warning("call log writes go through again after %.1f s", time.monotonic() - first)
                return result
            if self._past_deadline():
                return None
            self._pause(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            self._journal.sync()  # meanwhile the journal keeps being synced, its refused lines retried

    def _pause(self, seconds: float) -> None:
        with self._cond:
            if self._stop_at is not None:
                seconds = min(seconds, max(0.0, self._stop_at - time.monotonic()))
            if seconds > 0:
                self._cond.wait(seconds)

    def _past_deadline(self) -> bool:
        return self._stop_at is not None and time.monotonic() >= self._stop_at


def database_key(engine: Engine) -> str:
    """Which database a journal's rows belong to: a digest of the engine's URL without its password (a
    SQLite file by its absolute path). The same database reached by another URL (another host name) is
    taken for another one: its journals are kept, not replayed, which errs on the side of no mixing."""
    url = engine.url.set(password=None)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=os.path.abspath(url.database))
    return hashlib.sha256(url.render_as_string(hide_password=False).encode()).hexdigest()[:32]
