"""Call logs: a writer that batches inserts on its own thread, so the chat path never waits on the
database (one ``put`` per call, no per-chunk work)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.models import ChatLog
from services.stats import Rollup

log = logging.getLogger("pyaichat.logs")
BATCH_SIZE = 500
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

    def __init__(self, engine: Engine, zone: ZoneInfo) -> None:
        self._engine = engine
        self._zone = zone
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pyaichat-log-writer", daemon=True)
        self._idle = threading.Condition()
        self._pending = 0
        self._flushing = False
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
            deadline = time.monotonic() + LINGER_SECONDS
            while len(batch) < BATCH_SIZE and not stop:
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
                return

    def _write(self, batch: list[CallRecord]) -> None:
        rollup = Rollup()
        for call in batch:
            rollup.add(
                created_at=call.created_at,
                model_id=call.model_id,
                prompt=call.prompt_tokens,
                completion=call.completion_tokens,
                user_id=call.user_id,
                ip=call.ip_address,
                zone=self._zone,
            )
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(ChatLog), [{name: getattr(call, name) for name in _FIELDS} for call in batch]
                )
                rollup.apply(connection)
        except SQLAlchemyError as exc:
            log.error("could not write %d call log rows: %s", len(batch), type(exc).__name__)
        finally:
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()
