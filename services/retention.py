"""Deleting call logs older than ``log_retention_days``: at start and then daily, on a worker thread,
in small batches so that request handling never waits long for the database."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from app.models import ChatLog, utcnow
from services.stats import prune_actors

log = logging.getLogger("pyaichat.retention")
BATCH = 5_000
INTERVAL_SECONDS = 24 * 3600


def purge_old_logs(engine: Engine, retention_days: int) -> int:
    """Delete rows older than the retention; returns how many were deleted."""
    cutoff = utcnow() - timedelta(days=retention_days)
    deleted = 0
    while True:
        with engine.begin() as connection:
            ids = (
                connection.execute(select(ChatLog.id).where(col(ChatLog.created_at) < cutoff).limit(BATCH))
                .scalars()
                .all()
            )
            if not ids:
                prune_actors(connection, cutoff.date())
                return deleted
            connection.execute(delete(ChatLog).where(col(ChatLog.id).in_(ids)))
            deleted += len(ids)


class RetentionJob:
    """Runs :func:`purge_old_logs` now and every day after, reading the current retention each time."""

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
            try:
                deleted = purge_old_logs(self._engine, self._retention_days())
                if deleted:
                    log.info("deleted %d call log rows past the retention period", deleted)
            except Exception as exc:  # the job must survive a busy or briefly unavailable database
                log.error("log retention failed: %s", type(exc).__name__)
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
