"""Channel health: what the chat path saw of each channel (last success, last error, consecutive
failures, average latency), the automatic pause after N failures in a row, and the background re-tests
that bring a paused channel back.

The chat path only touches memory (:meth:`ChannelHealth.success` / :meth:`ChannelHealth.failure` are a
few dict operations on the event loop); a thread of its own writes what changed to ``channels`` once a
second, at most, and pauses a channel there. A pause or a resume goes through the directory's
``refresher.changed()``, so every instance stops (or starts) using the channel at once.

Several instances share one row per channel, so the count of consecutive failures lives in the row, not
in a process: each flush adds the failures seen since the last one (``SET consecutive_failures =
consecutive_failures + n``, or sets it to the failures after a success seen meanwhile), and the pause is
decided in the same transaction on the row's own count and threshold (``UPDATE … WHERE
consecutive_failures >= COALESCE(auto_pause_after, default) AND NOT auto_paused``), so two instances
each seeing half of the failures pause the channel as one would, and exactly one of them announces it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import Channel, utcnow
from services import audit
from services.audit import Actor
from services.channel_directory import ChannelDirectory, ChannelTarget

log = logging.getLogger("pyaichat.health")
LATENCY_WINDOW = 20  # the average latency covers this many of the last successful calls
FLUSH_SECONDS = 1.0
MAX_RETEST_SECONDS = 600.0
MAX_ERROR_CHARS = 300


@dataclass(slots=True)
class _Health:
    """What this instance saw of a channel since its last flush."""

    failures: int = 0  # failures since the last flush, or since the success seen after it
    succeeded: bool = False  # a success since the last flush: the row's count starts again
    latencies: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    dirty: bool = False


@dataclass(frozen=True, slots=True)
class _Change:
    failures: int
    succeeded: bool
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RetestResult:
    ok: bool
    error: str | None = None
    latency_ms: int | None = None


class ChannelHealth:
    def __init__(
        self,
        engine: Engine,
        directory: ChannelDirectory,
        default_pause_after: Callable[[], int],
        *,
        retest_seconds: float = 30.0,
    ) -> None:
        self._engine = engine
        self._directory = directory
        self._default_pause_after = default_pause_after
        self.retest_seconds = retest_seconds
        self._entries: dict[int, _Health] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._retest_task: asyncio.Task[None] | None = None
        self._next_retest: dict[int, tuple[float, float]] = {}  # channel id -> (when, the wait after it)

    # ---- what the chat path reports (event loop: memory only) ------------------------------------
    def _entry(self, target: ChannelTarget) -> _Health:
        entry = self._entries.get(target.id)
        if entry is None:
            entry = self._entries[target.id] = _Health()
        entry.dirty = True
        return entry

    def success(self, target: ChannelTarget, latency_ms: int) -> None:
        with self._lock:
            entry = self._entry(target)
            entry.failures = 0
            entry.succeeded = True
            entry.latencies.append(max(latency_ms, 0))
            entry.last_success_at = utcnow()

    def failure(self, target: ChannelTarget, reason: str) -> None:
        """``reason``: a reason code and the HTTP status if any (``services.reasons.stored``), never a
        body, a URL or a key; put in words when read, in the reader's language."""
        with self._lock:
            entry = self._entry(target)
            entry.failures += 1
            entry.last_error = reason[:MAX_ERROR_CHARS]
            entry.last_error_at = utcnow()
        if target.auto_pause_after != 0:
            self._wake.set()  # a pause may be due (the shared count decides): write now

    # ---- the writer thread -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pyaichat-channel-health", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._retest_task is not None:
            self._retest_task.cancel()
            self._retest_task = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # the database is away: the counts stay in memory, tried again
                log.warning("could not store the channels' health: %s", exc)
        self.flush()

    def _taken(self) -> dict[int, _Change]:
        """What changed since the last flush, per channel."""
        changes: dict[int, _Change] = {}
        with self._lock:
            for channel_id, entry in self._entries.items():
                if not entry.dirty:
                    continue
                values: dict[str, Any] = {}
                if entry.last_success_at is not None:
                    values["last_success_at"] = entry.last_success_at
                if entry.latencies:
                    values["latency_ms"] = round(sum(entry.latencies) / len(entry.latencies))
                if entry.last_error_at is not None:
                    values["last_error"] = entry.last_error
                    values["last_error_at"] = entry.last_error_at
                changes[channel_id] = _Change(entry.failures, entry.succeeded, values)
                entry.dirty, entry.failures, entry.succeeded = False, 0, False
        return changes

    def _given_back(self, changes: dict[int, _Change]) -> None:
        """A flush that failed: its counts are added to what came since, for the next one."""
        with self._lock:
            for channel_id, change in changes.items():
                entry = self._entries.setdefault(channel_id, _Health())
                entry.dirty = True
                if not entry.succeeded:  # a newer success would have ended the older streak
                    entry.failures += change.failures
                    entry.succeeded = change.succeeded

    def flush(self) -> None:
        changes = self._taken()
        if not changes:
            return
        try:
            paused = self._store(changes)
        except BaseException:
            self._given_back(changes)
            raise
        if paused:
            log.warning("channels %s paused after consecutive failures; re-tested in the background", paused)
            now = time.monotonic()
            for channel_id in paused:
                self._next_retest[channel_id] = (now + self.retest_seconds, self.retest_seconds)
            self._directory.refresher.changed()

    def _store(self, changes: dict[int, _Change]) -> list[int]:
        """One transaction: each row's count moves by what this instance saw, then the channels whose
        shared count reached their threshold are paused; returns the ones this flush paused."""
        default = self._default_pause_after()
        paused: list[int] = []
        with Session(self._engine) as session:
            for channel_id, change in changes.items():
                count = col(Channel.consecutive_failures)
                values = {**change.values, "consecutive_failures": change.failures}
                if not change.succeeded:
                    values["consecutive_failures"] = count + change.failures
                row = col(Channel.id) == channel_id
                session.execute(update(Channel).where(row).values(**values))
                if not change.failures:
                    continue
                threshold = func.coalesce(col(Channel.auto_pause_after), default)
                pause = (
                    update(Channel)
                    .where(
                        row,
                        col(Channel.is_enabled).is_(True),  # never pause what an admin has just disabled
                        col(Channel.auto_paused).is_(False),
                        threshold > 0,
                        count >= threshold,
                    )
                    .values(auto_paused=True)
                )
                if session.execute(pause).rowcount:  # type: ignore[attr-defined]
                    paused.append(channel_id)
            session.commit()
        return paused

    # ---- background re-tests of paused channels (event loop) -------------------------------------
    def start_retests(self, probe: Callable[[Channel], Awaitable[RetestResult]]) -> None:
        if self._retest_task is None:
            self._retest_task = asyncio.get_running_loop().create_task(self._retest_loop(probe))

    async def _retest_loop(self, probe: Callable[[Channel], Awaitable[RetestResult]]) -> None:
        tick = max(min(self.retest_seconds / 2, 5.0), 0.2)
        while True:
            await asyncio.sleep(tick)
            try:
                await self.retest_due(probe)
            except Exception as exc:
                log.warning("channel re-tests failed: %s", exc)

    def _paused(self) -> list[Channel]:
        with Session(self._engine) as session:
            query = select(Channel).where(
                col(Channel.auto_paused).is_(True), col(Channel.is_enabled).is_(True)
            )
            return list(session.exec(query).all())

    async def retest_due(self, probe: Callable[[Channel], Awaitable[RetestResult]]) -> None:
        """Test each paused channel whose turn has come; a pass resumes it, a failure doubles its wait
        (up to ``MAX_RETEST_SECONDS``)."""
        now = time.monotonic()
        for channel in await asyncio.to_thread(self._paused):
            assert channel.id is not None
            when, wait = self._next_retest.setdefault(channel.id, (now, self.retest_seconds))
            if when > now:
                continue
            result = await probe(channel)
            if result.ok:
                self._next_retest.pop(channel.id, None)
                await asyncio.to_thread(self.resumed, channel.id, result.latency_ms)
                log.info("channel %s (%s) passed its re-test and serves again", channel.id, channel.name)
            else:
                wait = min(wait * 2, MAX_RETEST_SECONDS)
                self._next_retest[channel.id] = (time.monotonic() + wait, wait)
                await asyncio.to_thread(self._store_error, channel.id, result.error or "server_error")

    def resumed(self, channel_id: int, latency_ms: int | None = None, actor: Actor | None = None) -> None:
        """A test passed (background or the admin's button): the channel serves again, here at once.
        ``actor``: the admin whose test it was; a resume is then ``channel.resume`` in the audit log,
        committed with it (a background re-test is no admin's change)."""
        with self._lock:
            entry = self._entries.get(channel_id)
            if entry is not None:  # failures seen before the resume are not counted against it
                entry.failures = 0
        values: dict[str, Any] = {
            "auto_paused": False,
            "consecutive_failures": 0,
            "last_success_at": utcnow(),
        }
        if latency_ms is not None:
            values["latency_ms"] = latency_ms
        with Session(self._engine) as session:
            found = session.exec(
                select(Channel.auto_paused, Channel.name).where(col(Channel.id) == channel_id)
            ).first()
            was_paused = found is not None and found[0]
            if actor is not None and found is not None and was_paused:
                target = audit.channel_target(channel_id, found[1])
                changes = {"auto_paused": {"old": True, "new": False}}
                audit.add(session, actor, "channel.resume", target=target, changes=changes)
            session.execute(update(Channel).where(col(Channel.id) == channel_id).values(**values))
            session.commit()
        self._next_retest.pop(channel_id, None)
        if was_paused:
            self._directory.refresher.changed()

    def _store_error(self, channel_id: int, error: str) -> None:
        with Session(self._engine) as session:
            session.execute(
                update(Channel)
                .where(col(Channel.id) == channel_id)
                .values(last_error=error[:MAX_ERROR_CHARS], last_error_at=utcnow())
            )
            session.commit()
