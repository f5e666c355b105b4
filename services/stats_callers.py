"""The dashboard's top users, top IPs and count of callers for a range of local days, from
``stats_daily_callers`` (one row per day and caller).

A range of several days sums each caller over its days, so its cost grows with callers × days (41k rows
for 30 days at 100k calls, 206k at 10M). Every day of a range but the last is, as a rule, closed: its
rows no longer change. So the sums over those days are kept per engine and reused for as long as their
fingerprint holds, and only the last day (today, in the default ranges) is read again.

The fingerprint is what the dashboard has already read from ``stats_daily_models`` for those days (calls
per day and model) and the earliest day left in ``stats_daily_callers``:

- every log row adds one call to its day in both tables, in one transaction (services/rollups.py), so a
  late row, another replica's write or a rebuild changes the calls of a day the sums cover;
- forgetting callers (services/retention.py) deletes whole days from the start, which moves the earliest
  day.

Both are read *before* the sums are computed, so kept sums are never older than their fingerprint.
"""

from __future__ import annotations

import heapq
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.models import DailyCaller

TOP_CALLERS = 10
PREFIXES = ("u:", "ip:")
KEPT_RANGES = 8  # per engine: the dashboard's ranges (7 days, 30 days, a few custom ones)
# per engine, callers over all kept ranges (about 170 bytes each: ~70 MB at most); a range with more is
# summed on every request instead (a public service with a million guest IPs a month)
KEPT_CALLERS = 400_000

Callers = tuple[dict[str, list[tuple[str, int]]], int]  # the tops by kind ("u:" / "ip:"), the count


@dataclass(frozen=True)
class _Sums:
    fingerprint: tuple[Any, ...]
    calls: dict[str, int]  # actor → calls over the days
    ranked: dict[str, list[tuple[str, int]]]  # per prefix: every (actor, calls), most calls first


class _Kept:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sums: OrderedDict[tuple[date, date], _Sums] = OrderedDict()


_kept: weakref.WeakKeyDictionary[Any, _Kept] = weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def _ranked(calls: Mapping[str, int]) -> dict[str, list[tuple[str, int]]]:
    """Most calls first, ties by actor (its prefix is shared, so by id or address as text)."""
    ranked: dict[str, list[tuple[str, int]]] = {prefix: [] for prefix in PREFIXES}
    for actor, n in sorted(calls.items(), key=lambda item: (-item[1], item[0])):
        ranked["u:" if actor.startswith("u:") else "ip:"].append((actor, n))
    return ranked


def _tops(ranked: Mapping[str, Iterable[tuple[str, int]]]) -> dict[str, list[tuple[str, int]]]:
    top: dict[str, list[tuple[str, int]]] = {}
    for prefix in PREFIXES:
        rows: list[tuple[str, int]] = []
        for actor, n in ranked[prefix]:
            if len(rows) == TOP_CALLERS:
                break
            rows.append((actor[len(prefix) :], n))
        top[prefix] = rows
    return top


def callers(session: Session, begin: date, last: date, *, day_model_calls: Mapping[Any, int]) -> Callers:
    """The top users and top IPs of the days ``begin``..``last`` by calls (``u:`` / ``ip:`` → up to
    ``TOP_CALLERS`` of (id or address, calls), most calls first, ties by id / address as text), and how
    many distinct callers there were.

    ``day_model_calls``: the calls per (day, model) of at least the days ``begin``..``last - 1``, read
    from ``stats_daily_models`` before this call (the kept sums' fingerprint)."""
    if begin == last:
        return callers_of_a_day(session, begin)
    closed_last = last - timedelta(days=1)
    connection = session.connection()  # Core rows: the ORM's row handling cost 3 µs per caller
    earliest = connection.execute(sa_select(func.min(col(DailyCaller.day)))).scalar_one_or_none()
    fingerprint = (
        earliest,
        tuple(sorted((key, n) for key, n in day_model_calls.items() if begin <= key[0] <= closed_last)),
    )
    sums = _closed_sums(session, begin, closed_last, fingerprint)
    rows = connection.execute(
        sa_select(col(DailyCaller.actor), col(DailyCaller.calls)).where(col(DailyCaller.day) == last)
    )
    closed = sums.calls
    last_day: dict[str, int] = dict(rows.tuples().all())  # fetchall: row by row cost twice as much
    new = last_day.keys() - closed.keys()
    most_today = max(last_day.values(), default=0)
    top: dict[str, list[tuple[str, int]]] = {}
    for prefix in PREFIXES:
        # Only a few callers can reach the tops, so the 3,115 of a day at 10M calls are not each visited
        # in Python: every caller's sum only grows with the last day, so the tenth best sum of the
        # closed days is a floor no top caller is below.
        ranked = sums.ranked[prefix]
        floor = ranked[TOP_CALLERS - 1][1] if len(ranked) >= TOP_CALLERS else 0
        pool: list[tuple[int, str]] = []  # (-calls, actor): ordered as the tops are, compared natively
        for name, n in ranked:
            if n + most_today < floor:
                break  # neither this caller nor any after it (fewer calls) can reach the floor
            pool.append((-(n + last_day.get(name, 0)), name))
        pool.extend(
            (-last_day[name], name) for name in new if name.startswith(prefix) and last_day[name] >= floor
        )
        top[prefix] = [(name[len(prefix) :], -neg) for neg, name in heapq.nsmallest(TOP_CALLERS, pool)]
    return top, len(closed) + len(new)


def _closed_sums(session: Session, begin: date, last: date, fingerprint: tuple[Any, ...]) -> _Sums:
    """Each caller's calls over ``begin``..``last``: kept ones while the fingerprint holds, else summed
    in the database (one GROUP BY over the days' rows) and kept."""
    engine = session.get_bind()
    with _kept_lock:
        kept = _kept.get(engine)
        if kept is None:
            kept = _kept[engine] = _Kept()
    key = (begin, last)
    with kept.lock:
        sums = kept.sums.get(key)
        if sums is not None and sums.fingerprint == fingerprint:
            kept.sums.move_to_end(key)
            return sums
    day, actor = col(DailyCaller.day), col(DailyCaller.actor)
    calls = dict(
        session.connection()
        .execute(
            sa_select(actor, func.sum(DailyCaller.calls)).where(day >= begin, day <= last).group_by(actor)
        )
        .tuples()
        .all()
    )
    calls = {name: int(n) for name, n in calls.items()}
    sums = _Sums(fingerprint, calls, _ranked(calls))
    if len(calls) > KEPT_CALLERS:
        return sums
    with kept.lock:
        kept.sums.pop(key, None)
        while kept.sums and (
            len(kept.sums) >= KEPT_RANGES
            or sum(len(other.calls) for other in kept.sums.values()) + len(calls) > KEPT_CALLERS
        ):
            kept.sums.popitem(last=False)  # the least recently asked first
        kept.sums[key] = sums
    return sums


def callers_of_a_day(session: Session, day: date) -> Callers:
    """:func:`callers` for one day: the first ``TOP_CALLERS`` users and IPs of the day by calls, read in
    order from ``idx_stats_daily_callers_top``, and the day's rows counted, without ranking every caller
    of the day (the default range, today: 3,115 callers at 10M calls)."""
    actor, calls = col(DailyCaller.actor), col(DailyCaller.calls)
    top: dict[str, list[tuple[str, int]]] = {}
    for prefix in PREFIXES:
        rows = session.execute(
            sa_select(actor, calls)
            .where(col(DailyCaller.day) == day, actor.startswith(prefix))
            .order_by(calls.desc(), actor)
            .limit(TOP_CALLERS)
        ).all()
        ordered = sorted(rows, key=lambda row: (-int(row[1]), row[0]))  # as Python orders text
        top[prefix] = [(name[len(prefix) :], int(n)) for name, n in ordered]
    count = session.execute(sa_select(func.count()).where(col(DailyCaller.day) == day)).scalar_one()
    return top, int(count)
