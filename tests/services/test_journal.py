"""The call-log journal on real files: the line format, damaged lines, segments, slots between
processes (instances), and a disk without room (a real tmpfs when this machine lets the test mount one)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services import journal as journal_module
from services import journal_files
from services.call_record import CallRecord, decode_line, encode_fields
from services.journal import LiveJournal

SMALL_SEGMENT = 64 * 1024  # the smallest segment the journal makes


def record(i: int = 0, **changes: object) -> CallRecord:
    values: dict[str, object] = {
        "user_id": i % 7 or None,
        "username": f"user{i}@example.com" if i % 7 else None,
        "ip_address": f"10.1.{i // 250 % 250}.{i % 250}",
        "channel_id": 3,
        "model_id": "gpt-test",
        "prompt_tokens": 11,
        "completion_tokens": i,
        "created_at": datetime(2026, 11, 28, 12, 0, 0, i % 1_000_000, tzinfo=UTC),
        "status": "ok",
        "tokens_estimated": bool(i % 2),
        "duration_ms": 1200 + i,
    }
    values.update(changes)
    return CallRecord(**values)  # type: ignore[arg-type]


def test_every_field_survives_the_line_format_including_awkward_text() -> None:
    awkward = [
        record(1),
        record(2, username=None, user_id=None, channel_id=None, prompt_tokens=None, completion_tokens=None),
        record(3, username="tab\there\\and\nnewline\rcr@example.com", model_id="模型\\N"),
        record(4, username="\\N", model_id="\u200bzero-width", ip_address="::ffff:1.2.3.4"),
        record(5, created_at=datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), duration_ms=0),
        record(6, username="nul\x00here@example.com", model_id="m\x00\\0"),  # NUL ends a segment's data
    ]
    for seq, call in enumerate(awkward, start=1):
        body = b"%d\t%s" % (seq, encode_fields(call))
        assert b"\0" not in body
        line = b"%08x\t%s\n" % (__import__("zlib").crc32(body), body)
        assert decode_line(line) == (seq, call)


def test_the_personal_key_field_and_lines_from_before_it() -> None:
    """``api_key_id`` then ``ttft_ms`` are the last fields; lines journaled before them (12 or 13 fields
    after the sequence number) still replay, without a key or a time to first event."""
    zlib = __import__("zlib")

    def line(fields: bytes) -> bytes:
        body = b"9\t" + fields
        return b"%08x\t%s\n" % (zlib.crc32(body), body)

    with_key = record(3, api_key_id=42, error="http_429", ttft_ms=250)
    assert decode_line(line(encode_fields(with_key))) == (9, with_key)
    before_ttft = encode_fields(with_key).rsplit(b"\t", 1)[0]
    assert decode_line(line(before_ttft)) == (9, record(3, api_key_id=42, error="http_429"))
    before_key = encode_fields(with_key).rsplit(b"\t", 2)[0]
    assert decode_line(line(before_key)) == (9, record(3, api_key_id=None, error="http_429"))
    assert decode_line(line(encode_fields(with_key) + b"\t1")) is None  # a field this version does not know


def test_the_journal_reads_back_what_it_was_given_in_order(tmp_path: Path) -> None:
    journal = LiveJournal.open(tmp_path)
    calls = [record(i) for i in range(1, 501)]
    assert [journal.append(encode_fields(c)) for c in calls] == list(range(1, 501))
    records, covered = journal.read(1, 1000)
    assert covered == 500 and [r for _, r in records] == calls
    records, _ = journal.read(201, 100)  # from the middle, in batches
    assert [seq for seq, _ in records] == list(range(201, 301))
    records, _ = journal.read(301, 100)
    assert [seq for seq, _ in records] == list(range(301, 401))
    journal.close(stored_seq=0)


def test_damaged_and_torn_lines_are_skipped_and_the_rest_is_read(tmp_path: Path) -> None:
    journal = LiveJournal.open(tmp_path)
    for i in range(1, 11):
        journal.append(encode_fields(record(i)))
    journal.close(stored_seq=0)  # kept: the database holds none of it
    (segment,) = tmp_path.glob("slot-0/*.seg")
    data = bytearray(segment.read_bytes())
    lines = bytes(data).split(b"\n")
    data[len(lines[0]) + 1 + 20] ^= 0x01  # one bit of the second line flipped
    end = bytes(data).index(b"\0")
    data[end : end + 30] = lines[3][:30]  # a line torn by a crash inside the copy, then zeros
    segment.write_bytes(bytes(data))

    reopened = LiveJournal.open(tmp_path)
    (old,) = reopened.leftovers
    assert [seq for seq, _ in old.read(1, 100)] == [1, 3, 4, 5, 6, 7, 8, 9, 10]
    reopened.close(stored_seq=0)


def test_full_segments_rotate_and_are_deleted_once_stored(tmp_path: Path) -> None:
    journal = LiveJournal.open(tmp_path, segment_bytes=SMALL_SEGMENT)
    for i in range(1, 2001):  # ~95 bytes a line, ~690 lines a segment: three segments or more
        journal.append(encode_fields(record(i)))
    journal.sync()
    segments = sorted(tmp_path.glob("slot-0/*.seg"))
    assert len(segments) >= 3
    records, _ = journal.read(1, 5000)
    assert [seq for seq, _ in records] == list(range(1, 2001))
    journal.checkpoint(1000)
    left = sorted(tmp_path.glob("slot-0/*.seg"))
    first_left = int(left[0].stem.rsplit("-", 1)[1])
    assert first_left <= 1001 and len(left) < len(segments)
    records, _ = journal.read(1001, 5000)
    assert [seq for seq, _ in records] == list(range(1001, 2001))
    journal.close(stored_seq=2000)
    assert not list(tmp_path.glob("slot-0/*.seg")), "a journal the database holds entirely is deleted"


def test_instances_sharing_a_directory_take_their_own_slots(tmp_path: Path) -> None:
    first = LiveJournal.open(tmp_path)
    second = LiveJournal.open(tmp_path)
    assert first.slot != second.slot and first.journal_id != second.journal_id
    first.append(encode_fields(record(1)))
    second.append(encode_fields(record(2)))
    assert [r.completion_tokens for _, r in first.read(1, 10)[0]] == [1]
    assert [r.completion_tokens for _, r in second.read(1, 10)[0]] == [2]
    first.close(stored_seq=0)
    second.close(stored_seq=0)


def _die(journal: LiveJournal) -> None:
    """What ``kill -9`` leaves: the files as they are, the slot's lock released by the kernel."""
    assert journal._slot_lock is not None
    journal_files.unlock(journal._slot_lock)
    journal._slot_lock = None


def test_a_slot_whose_process_is_gone_is_replayed_by_the_next_instance(tmp_path: Path) -> None:
    first, second = LiveJournal.open(tmp_path), LiveJournal.open(tmp_path)
    for i in range(1, 4):
        first.append(encode_fields(record(i)))
        second.append(encode_fields(record(100 + i)))
    first.sync()
    second.sync()
    _die(first)
    _die(second)
    third = LiveJournal.open(tmp_path)  # takes slot-0 and finds slot-1 abandoned
    assert third.slot == first.slot
    found = {old.journal_id: [r.completion_tokens for _, r in old.read(1, 10)] for old in third.leftovers}
    assert found == {first.journal_id: [1, 2, 3], second.journal_id: [101, 102, 103]}
    fourth = LiveJournal.open(tmp_path)
    assert fourth.slot != second.slot, "the abandoned slot stays locked until its journal is replayed"
    for old in third.leftovers:
        old.delete()
        old.release()
    fifth = LiveJournal.open(tmp_path)
    assert fifth.slot == second.slot and not fifth.leftovers
    for journal in (third, fourth, fifth):
        journal.close(stored_seq=0)


def test_without_room_for_a_segment_lines_wait_in_memory_until_there_is_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = LiveJournal.open(tmp_path, segment_bytes=SMALL_SEGMENT)
    full = OSError(28, "No space left on device")

    def no_room(path: Path, size: int) -> object:
        raise full

    journal._spare = None  # the writer thread would have made one; this journal has none
    monkeypatch.setattr(journal_module, "_allocate", no_room)
    seqs = [journal.append(encode_fields(record(i))) for i in range(1, 1501)]  # past the first segment
    assert seqs == list(range(1, 1501))
    records, covered = journal.read(1, 5000)
    assert covered == 1500 and [seq for seq, _ in records] == seqs, "waiting lines are read from memory"
    journal.sync()  # still no room: nothing changes
    monkeypatch.undo()
    journal.sync()  # room again: the waiting lines go to disk, in order
    _die(journal)
    (old,) = LiveJournal.open(tmp_path).leftovers
    assert [seq for seq, _ in old.read(1, 5000)] == seqs


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that fills up for real. Skipped where mounting is not allowed."""
    mount_point = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_really_full_disk_delays_journal_lines_and_loses_none(small_tmpfs: Path) -> None:
    journal = LiveJournal.open(small_tmpfs / "journal", segment_bytes=SMALL_SEGMENT)
    journal.sync()  # makes the spare: two segments allocated
    filler = small_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # take every block left
        while os.write(fd, b"x" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    seqs = [journal.append(encode_fields(record(i))) for i in range(1, 2001)]  # 3+ segments' worth
    journal.sync()
    assert journal._unwritten.lines, "the disk refused a segment: lines wait in memory"
    assert [seq for seq, _ in journal.read(1, 5000)[0]] == seqs
    filler.unlink()
    journal.sync()
    assert not journal._unwritten.lines
    _die(journal)
    (old,) = LiveJournal.open(small_tmpfs / "journal", segment_bytes=SMALL_SEGMENT).leftovers
    assert [seq for seq, _ in old.read(1, 5000)] == seqs
    os.sync()
