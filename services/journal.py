"""The call-log journal: each call's row is appended to a file before the client gets its answer, so a
crash (``kill -9``) or a database that refuses writes cannot lose it; the log writer stores the rows
in the database from memory, or from here when memory did not keep them, and replays at start what an
earlier run left.

This module writes this run's journal (:class:`LiveJournal`). Naming, finding, locking and reading the
files, and the journals earlier runs left (:class:`~services.journal_files.OldJournal`), are
``services.journal_files``'s.

Layout, in the data directory::

    call-log-journal/slot-0/lock                          flock'ed by the instance that owns the slot
    call-log-journal/slot-0/<journal id>-<first seq>.seg  this run's segments, 16 MiB each
    call-log-journal/slot-0/<journal id>.target           which database the journal's rows belong to
    call-log-journal/slot-0/spare                         the next segment, made ahead of need

One instance holds one slot for its life (instances sharing a data directory take different slots).
Each run writes a new journal (a random id, sequence numbers from 1), so journals never mix, even when
a volume is copied; the database keeps, per journal, the last sequence number it stored
(``call_log_journals``, in the same transaction as the rows), which is what makes replays exact.
A journal is replayed only into the database it was written for (its ``.target``, a digest of the
database's URL): a data directory that served another database before (``DATABASE_URL`` changed, or
instances of two deployments started from one folder) keeps that database's rows for its own
instances instead of mixing them in.

**Writing.** A segment is allocated in full when it is made (``posix_fallocate``: a full disk shows
there, never later) and mapped into memory (``MAP_SHARED``); a record is one copy into the mapping.
No system call, and the GIL is kept: an ``os.write`` per call released it, and a busy log-writer thread
then held it for up to the 5 ms switch interval each time (the producer loop of benchmark 5 slowed from
6 µs to 35-100 µs per record). The mapping's pages are the file's page cache, which outlives the
process: ``kill -9`` at any moment after the copy loses nothing. The writer thread ``fdatasync``s the
segment about once a second, so a power loss may lose about the last second; syncing per call would put
a disk flush (milliseconds on real disks) on the event loop for every call. ``fdatasync`` on the file's
descriptor, not ``mmap.flush``: on Linux both write the mapping's dirty pages (``msync(MS_SYNC)`` is an
fsync of the range there), but CPython's ``mmap.flush`` keeps the GIL during the ``msync``: flushing a
dirty 16 MiB segment took 35-55 ms on the development machine (ext4 on a virtual disk), and another
thread ran once in that time against about 70 times during an ``fdatasync`` of the same pages.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from services.call_record import CallRecord, decode_line
from services.journal_files import (
    SUFFIX,
    TARGET,
    OldJournal,
    Reader,
    Segment,
    slot_segments,
    split_by_target,
    try_lock,
    unlock,
)

log = logging.getLogger("pyaichat.journal")
SEGMENT_BYTES = 16 * 1024 * 1024
UNWRITTEN_MAX = 100_000  # lines kept in memory while the disk has no room for a segment: ~15 MB
MAX_SLOTS = 256
_SPARE = "spare"


class JournalUnavailable(Exception):
    """The journal cannot take a record (closed, or the disk has refused room for too long)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _File:
    """A segment file, mapped for writing; its descriptor stays open for ``fdatasync`` (module doc)."""

    fd: int
    map: mmap.mmap

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)


def _allocate(path: Path, size: int) -> _File:
    """A new file of ``size`` bytes with its blocks allocated, mapped for writing (raises OSError, e.g.
    ENOSPC; nothing is left behind then)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
        return _File(fd, mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise


@dataclass
class _Unwritten:
    """Lines waiting for room on the disk, in order, from ``first_seq`` on, since ``since``."""

    lines: list[bytes] = field(default_factory=list)
    first_seq: int = 0
    since: float = 0.0


class LiveJournal:
    """This run's journal. :meth:`append` runs on the chat path (any thread); :meth:`sync`,
    :meth:`checkpoint` and :meth:`read` on the log writer's thread."""

    def __init__(
        self,
        slot: Path,
        slot_lock: int,
        leftovers: list[OldJournal],
        segment_bytes: int = SEGMENT_BYTES,
        *,
        target: str = "",
    ) -> None:
        self.slot = slot
        self.journal_id = uuid.uuid4().hex
        if target:
            (slot / f"{self.journal_id}{TARGET}").write_text(target, encoding="ascii")
        self.leftovers = leftovers
        self.segment_bytes = max(segment_bytes, 64 * 1024)  # a line is at most a few KiB
        self._slot_lock: int | None = slot_lock
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        self._file: _File | None = None  # the newest segment
        self._size = 0  # bytes of whole lines in it: what a reader may read
        self._dirty = False  # written since the last sync
        self._dir_dirty = False
        self._retired: list[_File] = []  # full segments, synced and closed by the writer thread
        self._spare: _File | None = None
        self._unwritten = _Unwritten()
        self._next_seq = 1
        self._closed = False
        self._reader = Reader()
        self._failure_logged_at = -60.0
        (slot / _SPARE).unlink(missing_ok=True)  # a spare an earlier run made: its size may differ
        self._new_segment(1)  # a full disk may refuse it: the lines then wait for sync() to make one

    @classmethod
    def open(cls, directory: Path, segment_bytes: int = SEGMENT_BYTES, *, target: str = "") -> LiveJournal:
        """Take the first free slot under ``directory`` and start a journal there for the database
        ``target`` names; journals for it left in that slot, and in slots no process holds (an instance
        that is gone), are handed over for replay. Journals of other databases stay where they are."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        own: tuple[Path, int] | None = None
        leftovers: list[OldJournal] = []
        for number in range(MAX_SLOTS):
            slot = directory / f"slot-{number}"
            if not slot.exists() and own is not None:
                continue
            lock = try_lock(slot)
            if lock is None:
                continue
            ours, foreign = split_by_target(slot, slot_segments(slot), target)
            for journal_id in foreign:
                log.warning(
                    "call-log journal %s in %s was written for another database: kept for that database's "
                    "instances, not replayed here",
                    journal_id,
                    slot,
                )
            if own is None:
                own = (slot, lock)
                leftovers += [OldJournal(jid, segments) for jid, segments in ours]
            elif ours:
                # an abandoned slot's lock goes with its last journal, released once that is replayed
                leftovers += [OldJournal(jid, s) for jid, s in ours[:-1]]
                leftovers.append(OldJournal(ours[-1][0], ours[-1][1], slot_lock=lock))
            else:
                unlock(lock)
        if own is None:
            raise OSError(f"all {MAX_SLOTS} call-log journal slots in {directory} are held by others")
        return cls(own[0], own[1], leftovers, segment_bytes, target=target)

    # ---- the chat path ----------------------------------------------------------------------------
    def append(self, fields: bytes) -> int:
        """Journal one record (:func:`~services.call_record.encode_fields`); returns its sequence number.

        A copy into the mapped segment. Without room on the disk for a segment the line waits in
        memory, in order, for :meth:`sync`; :class:`JournalUnavailable` once that backlog is full."""
        with self._lock:
            if self._closed:
                raise JournalUnavailable("the call-log journal is closed")
            seq = self._next_seq
            body = b"%d\t%s" % (seq, fields)
            line = b"%08x\t%s\n" % (zlib.crc32(body), body)
            if self._unwritten.lines:
                if len(self._unwritten.lines) >= UNWRITTEN_MAX:
                    raise JournalUnavailable(f"no room on the disk for {UNWRITTEN_MAX} journal lines")
                self._unwritten.lines.append(line)
            elif not self._place(line, seq):
                self._unwritten = _Unwritten([line], seq, time.monotonic())
            self._next_seq = seq + 1
            return seq

    def _place(self, line: bytes, seq: int) -> bool:
        end = self._size + len(line)
        if self._file is None or end > self.segment_bytes:
            if not self._new_segment(seq):
                return False
            end = len(line)
        assert self._file is not None
        self._file.map[self._size : end] = line
        self._size = end
        self._dirty = True
        return True

    def _new_segment(self, first_seq: int) -> bool:
        """Start the segment whose first line is ``first_seq``: the spare renamed, or a new file."""
        path = self.slot / f"{self.journal_id}-{first_seq:012d}{SUFFIX}"
        try:
            if self._spare is not None:
                os.rename(self.slot / _SPARE, path)
                new, self._spare = self._spare, None
            else:
                new = _allocate(path, self.segment_bytes)
        except OSError as exc:
            self._note_failure(exc)
            return False
        if self._file is not None:
            self._retired.append(self._file)
        self._file, self._size = new, 0
        self._segments.append(Segment(self.journal_id, first_seq, path))
        self._dir_dirty = True
        return True

    def _note_failure(self, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._failure_logged_at >= 30:
            self._failure_logged_at = now
            log.error(
                "cannot make a call-log journal segment in %s (%s); rows wait in memory", self.slot, exc
            )

    # ---- the writer thread -----------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    def read(self, from_seq: int, limit: int) -> tuple[list[tuple[int, CallRecord]], int]:
        """Up to ``limit`` records from ``from_seq`` on (from the files, then from the lines that wait
        for room), and the last seq appended when the read began: how far it looked."""
        with self._lock:
            covered = self._next_seq - 1
            segments: list[tuple[Segment, int | None]] = [(s, None) for s in self._segments]
            if segments:
                segments[-1] = (segments[-1][0], self._size)
            waiting = list(self._unwritten.lines)
        records = self._reader.read(segments, from_seq, limit)
        for line in waiting:
            if len(records) >= limit:
                break
            decoded = decode_line(line)
            if decoded is not None and decoded[0] >= from_seq:
                records.append(decoded)
        return records, covered

    def sync(self) -> None:
        """About once a second, from the writer thread: place the lines that waited for room (once the
        disk has it again), ``fdatasync`` what was written, close full segments, make the spare."""
        with self._lock:
            self._place_unwritten()
            current, dirty, self._dirty = self._file, self._dirty, False
            retired, self._retired = self._retired, []
            dir_dirty, self._dir_dirty = self._dir_dirty, False
            need_spare = self._spare is None and not self._closed
        try:
            for old in retired:
                old.sync()
                old.close()
            if dirty and current is not None:
                current.sync()
            if dir_dirty:
                _fsync_dir(self.slot)
        except OSError as exc:  # also EBADF: closed meanwhile by close()
            log.warning("could not sync the call-log journal: %s", exc)
        if need_spare:
            self._make_spare()

    def _place_unwritten(self) -> None:
        waiting = self._unwritten
        if not waiting.lines:
            return
        for index, line in enumerate(waiting.lines):
            if not self._place(line, waiting.first_seq + index):
                del waiting.lines[:index]
                waiting.first_seq += index
                return
        log.warning(
            "call-log journal has room again: %d rows journaled after %.0f s",
            len(waiting.lines),
            time.monotonic() - waiting.since,
        )
        self._unwritten = _Unwritten()

    def _make_spare(self) -> None:
        """The next segment, allocated off the chat path (a rotation there is then a rename)."""
        try:
            spare = _allocate(self.slot / _SPARE, self.segment_bytes)
        except OSError:
            return  # no room: a rotation will try (and report) itself
        with self._lock:
            if self._spare is None and not self._closed:
                self._spare = spare
                return
        spare.close()
        (self.slot / _SPARE).unlink(missing_ok=True)

    def checkpoint(self, stored_seq: int) -> None:
        """Delete the full segments whose every record the database holds."""
        with self._lock:
            done: list[Segment] = []
            while len(self._segments) > 1 and self._segments[1].first_seq - 1 <= stored_seq:
                done.append(self._segments.pop(0))
        for segment in done:
            try:
                segment.path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not delete the stored journal segment %s: %s", segment.path.name, exc)

    def close(self, *, stored_seq: int) -> None:
        """Sync and close; a journal the database holds entirely is deleted. Later appends raise."""
        self.sync()
        with self._lock:
            self._closed = True
            complete = stored_seq >= self.last_seq and not self._unwritten.lines
            files = [*self._retired, self._file, self._spare]
            self._retired, self._file, self._spare = [], None, None
        for file in files:
            if file is None:
                continue
            try:
                file.sync()
            except OSError as exc:  # the lines stay in the page cache; only a power loss would take them
                log.warning("could not sync the call-log journal: %s", exc)
            file.close()
        (self.slot / _SPARE).unlink(missing_ok=True)
        if complete:
            for segment in self._segments:
                segment.path.unlink(missing_ok=True)
            (self.slot / f"{self.journal_id}{TARGET}").unlink(missing_ok=True)
        if self._slot_lock is not None:
            unlock(self._slot_lock)
            self._slot_lock = None
