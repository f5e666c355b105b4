"""Counters of things that are not call rows (rate-limit refusals, blocked requests), per local day.

The request path only adds one to a dict entry under a lock (well under a microsecond); a thread
stores the sums every :data:`FLUSH_SECONDS` as increments (``count = count + n``) in
``stats_daily_counts``, so any number of instances add to the same rows and nobody overwrites anyone.
A flush the database refuses keeps its sums for the next one; at shutdown :meth:`close` stores what is
left. At most :data:`FLUSH_SECONDS` of counts are lost if the process is killed.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from app.models import utcnow

log = logging.getLogger("pyaichat.stats")
FLUSH_SECONDS = 2.0

REFUSAL_GUEST = "refusal_guest"
REFUSAL_USER = "refusal_user"
REFUSAL_CHANNEL = "refusal_channel"
BLOCKED = "blocked"


class DailyCounters:
    def __init__(
        self,
        engine: Engine,
        zone: ZoneInfo,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        on_add: Callable[[str, int], None] | None = None,
    ) -> None:
        """``on_add`` sees every event as it is counted (the metrics' refusals and blocked attempts)."""
        self._engine = engine
        self._on_add = on_add
        self._zone = zone
        self._flush_seconds = flush_seconds
        self._pending: dict[tuple[date, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush at a time (the thread's and a caller's)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DailyCounters:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="pyaichat-stats-counters", daemon=True)
            self._thread.start()
        return self

    def add(self, name: str, at: datetime | None = None, amount: int = 1) -> None:
        day = (at or utcnow()).astimezone(self._zone).date()
        with self._lock:
            self._pending[(day, name)] += amount
        if self._on_add is not None:
            self._on_add(name, amount)

    def flush(self) -> bool:
        """Store the sums so far; False (and they are kept for the next flush) when the database refuses."""
        from services.rollups import upsert_counts  # rollups imports the models this module shares

        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, defaultdict(int)
            if not pending:
                return True
            try:
                with self._engine.begin() as connection:
                    upsert_counts(connection, pending)
            except Exception as exc:  # counting must never break anything; the sums wait for the next try
                log.warning("could not store %d statistics counters: %s", len(pending), type(exc).__name__)
                with self._lock:
                    for key, value in pending.items():
                        self._pending[key] += value
                return False
            return True

    def _loop(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()
