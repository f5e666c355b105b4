"""Deleting call logs and admin audit rows older than ``log_retention_days``: at start and then daily, on
a worker thread, in small batches so that request handling never waits long for the database."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col, select

from app.models import AuditLog, ChatLog, utcnow
from services.rollups import prune_actors

log = logging.getLogger("pyaichat.retention")
BATCH = 5_000
INTERVAL_SECONDS = 24 * 3600


def _delete_before(
    engine: Engine,
    table: type[ChatLog] | type[AuditLog],
    cutoff: datetime,
    last: Callable[[Connection], None],
) -> int:
    """Delete ``table``'s rows created before ``cutoff``, a batch per transaction; ``last`` runs in the
    transaction that finds nothing more to delete. Returns how many were deleted."""
    deleted = 0
    while True:
        with engine.begin() as connection:
            ids = (
                connection.execute(select(table.id).where(col(table.created_at) < cutoff).limit(BATCH))
                .scalars()
                .all()
            )
            if not ids:
                last(connection)
                return deleted
            connection.execute(delete(table).where(col(table.id).in_(ids)))
            deleted += len(ids)


def purge_old_logs(engine: Engine, retention_days: int) -> int:
    """Delete call log rows older than the retention; returns how many were deleted."""
    cutoff = utcnow() - timedelta(days=retention_days)
    return _delete_before(engine, ChatLog, cutoff, lambda connection: prune_actors(connection, cutoff.date()))


def purge_old_audit(engine: Engine, retention_days: int) -> int:
    """Delete audit rows older than the (call log's) retention; returns how many were deleted."""
    cutoff = utcnow() - timedelta(days=retention_days)
    return _delete_before(engine, AuditLog, cutoff, lambda _connection: None)


class RetentionJob:
    """Runs :func:`purge_old_logs` and :func:`purge_old_audit` now and every day after, reading the
    current retention each time."""

    def __init__(
        self, engine: Engine, retention_days: Callable[[], int], interval: float = INTERVAL_SECONDS
    ) -> None:
        self._engine = engine
        self._retention_days = retention_days
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pyaichat-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            for purge, what in ((purge_old_logs, "call log"), (purge_old_audit, "audit log")):
                try:
                    deleted = purge(self._engine, self._retention_days())
                    if deleted:
                        log.info("deleted %d %s rows past the retention period", deleted, what)
                except Exception as exc:  # the job must survive a busy or briefly unavailable database
                    log.error("%s retention failed: %s", what, type(exc).__name__)
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
