"""The call-log journal's files on disk, and the journals earlier runs left.

Naming and finding a slot's segments (``<journal id>-<first seq>.seg``) and ``.target`` files, the
slot's lock, and reading records back: :class:`Reader` for any journal, :class:`OldJournal` for one an
earlier run left, replayed into the database and then deleted. The layout, and how this run's journal
writes, are ``services.journal``'s (its module doc).

**Reading.** Text lines (``services/call_record.py``), each with a checksum; the unused tail of a
segment is zeros, where reading stops.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.call_record import CallRecord, decode_line

log = logging.getLogger("pyaichat.journal")
_READ_CHUNK = 1024 * 1024
SUFFIX = ".seg"
TARGET = ".target"


@dataclass(frozen=True)
class Segment:
    journal_id: str
    first_seq: int
    path: Path


def slot_segments(slot: Path) -> dict[str, list[Segment]]:
    """The segment files of a slot by journal id, each list in sequence order."""
    found: dict[str, list[Segment]] = {}
    for path in slot.glob(f"*{SUFFIX}"):
        journal_id, _, first = path.stem.rpartition("-")
        if journal_id and first.isdigit():
            found.setdefault(journal_id, []).append(Segment(journal_id, int(first), path))
    for segments in found.values():
        segments.sort(key=lambda s: s.first_seq)
    return found


def _target(slot: Path, journal_id: str) -> str | None:
    """The database a journal was written for (None: not recorded)."""
    try:
        return (slot / f"{journal_id}{TARGET}").read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def split_by_target(
    slot: Path, found: dict[str, list[Segment]], target: str
) -> tuple[list[tuple[str, list[Segment]]], list[str]]:
    """The journals of a slot that belong to ``target`` (or say nothing), and the ids of the others.
    Target files left without segments (a run that died before its first line) are deleted."""
    for path in slot.glob(f"*{TARGET}"):
        if path.stem not in found:
            path.unlink(missing_ok=True)
    ours: list[tuple[str, list[Segment]]] = []
    foreign: list[str] = []
    for journal_id, segments in found.items():
        if _target(slot, journal_id) in (None, target):
            ours.append((journal_id, segments))
        else:
            foreign.append(journal_id)
    return ours, foreign


def try_lock(slot: Path) -> int | None:
    """The descriptor holding the slot's lock, or None when another process holds it."""
    slot.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(slot / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lines(path: Path, offset: int, end: int | None) -> Iterator[tuple[bytes, int]]:
    """Lines from ``offset`` up to ``end`` (None: the first zero byte, or the end of the file) with the
    offset after each. A torn last line (the process died inside the copy) is yielded as it is, for the
    checksum to refuse."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        handle.seek(offset)
        read_to = base = offset  # base: the file offset of data[0]
        rest = b""
        done = False
        while not done and (end is None or read_to < end):
            chunk = handle.read(_READ_CHUNK if end is None else min(_READ_CHUNK, end - read_to))
            if not chunk:
                break
            read_to += len(chunk)
            zero = chunk.find(b"\0")
            if zero >= 0:  # the unused, zeroed tail of the segment
                chunk, done = chunk[:zero], True
            data = rest + chunk
            start = 0
            while (newline := data.find(b"\n", start)) >= 0:
                yield data[start : newline + 1], base + newline + 1
                start = newline + 1
            base += start
            rest = data[start:]
        if rest:
            yield rest, base + len(rest)


class Reader:
    """Reads records from segments, remembering where the last read stopped, so that a backlog read in
    batches costs one pass over the file, not one per batch."""

    def __init__(self) -> None:
        self._cursor: tuple[Path, int, int] | None = None  # (segment, byte offset, seq expected there)

    def read(
        self, segments: list[tuple[Segment, int | None]], from_seq: int, limit: int
    ) -> list[tuple[int, CallRecord]]:
        """Up to ``limit`` records with seq >= ``from_seq``; each segment up to its byte end."""
        records: list[tuple[int, CallRecord]] = []
        start = 0
        for index, (segment, _end) in enumerate(segments):
            if segment.first_seq <= from_seq:
                start = index
        for segment, end in segments[start:]:
            offset = 0
            if self._cursor is not None and self._cursor[0] == segment.path and self._cursor[2] <= from_seq:
                offset = self._cursor[1]
            for line, after in _lines(segment.path, offset, end):
                decoded = decode_line(line)
                if decoded is None:
                    log.warning("skipped a damaged line in the call-log journal %s", segment.path.name)
                    continue
                if decoded[0] < from_seq:
                    continue
                records.append(decoded)
                if len(records) >= limit:
                    self._cursor = (segment.path, after, decoded[0] + 1)
                    return records
        self._cursor = None
        return records


class OldJournal:
    """A journal an earlier run left (in this instance's slot, or in a slot nobody holds any more):
    read-only, replayed into the database, then deleted."""

    def __init__(self, journal_id: str, segments: list[Segment], slot_lock: int | None = None) -> None:
        self.journal_id = journal_id
        self.segments = segments
        self._slot_lock = slot_lock  # an abandoned slot stays locked while its journals are replayed
        self._reader = Reader()

    def read(self, from_seq: int, limit: int) -> list[tuple[int, CallRecord]]:
        return self._reader.read([(s, None) for s in self.segments], from_seq, limit)

    def delete(self) -> None:
        for segment in self.segments:
            segment.path.unlink(missing_ok=True)
        if self.segments:
            (self.segments[0].path.parent / f"{self.journal_id}{TARGET}").unlink(missing_ok=True)

    def release(self) -> None:
        if self._slot_lock is not None:
            unlock(self._slot_lock)
            self._slot_lock = None
