"""The dashboard's top users, top IPs and count of callers for a range of local days, from
``stats_daily_callers`` (one row per day and caller).

A range of several days sums each caller over its days, so its cost grows with callers × days (41k rows
for 30 days at 100k calls, 206k at 10M). The range's days before today are, as a rule, closed: their
rows no longer change. :class:`CallerSums` (one per process, on ``AppState``) sums them once, keeps the
sums, and reuses them while their fingerprint holds; today (and any day after it) is read on every
request: for a range ending today, only the callers of today that can still reach a top, and the count of
those new to the range (``_tops_reading_few``, revision 0013); otherwise every caller of those days.

The fingerprint, read *before* the sums are computed (so kept sums are never older than it):

- the calls of each closed day in ``stats_daily_models``: every log row adds one call to its day there
  and one to its caller's row of the day here, in one transaction (services/rollups.py), so a late row
  or another replica's writes change it;
- the time zone the rollups were last rebuilt for (``system_config.stats_time_zone``, stored when a
  rebuild ends): a rebuild deletes and recounts every row, which could leave a day's calls as they were
  while its callers moved;
- the earliest day left in ``stats_daily_callers``: the retention run forgets callers by deleting whole
  days from the start. When it moves, every kept sum is dropped (they may name forgotten IP addresses).

Rows only ever grow otherwise, which is what makes a changed count the sign of any change.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import operator
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from app.models import DailyCaller, DailyModelStats, PeriodActorCount, SystemConfig
from services.rollups import ZONE_KEY

TOP_CALLERS = 10
PREFIXES = ("u:", "ip:")
KEPT_RANGES = 8  # the dashboard's ranges (7 days, 30 days, a few custom ones)
# callers over all kept ranges (about 170 bytes each: ~70 MB at most); a range with more is summed once,
# then ranked in the database on each request, as before the sums were kept (a public service with a
# million guest IPs a month)
KEPT_CALLERS = 400_000

Callers = tuple[dict[str, list[tuple[str, int]]], int]  # the tops by kind ("u:" / "ip:"), the count
Ranked = dict[str, list[tuple[int, str]]]  # per prefix: (-calls, actor), most calls first, ties by actor


class _Fingerprint(NamedTuple):
    earliest: date | None  # the earliest day left in stats_daily_callers
    zone: str | None  # the time zone the rollups were last rebuilt for
    days: tuple[tuple[date, int], ...]  # each closed day's calls in stats_daily_models


@dataclass(frozen=True)
class _Sums:
    fingerprint: _Fingerprint
    calls: dict[str, int]  # actor → calls over the closed days
    ranked: Ranked


_NOT_READ = object()


class CallerSums:
    """The closed days' sums per caller of the ranges asked last (at most ``ranges`` of them and
    ``callers`` callers in all, the least recently asked dropped first)."""

    def __init__(self, *, ranges: int = KEPT_RANGES, callers: int = KEPT_CALLERS) -> None:
        self.ranges, self.callers = ranges, callers
        self._lock = threading.Lock()
        self._sums: OrderedDict[tuple[date, date], _Sums] = OrderedDict()
        # ranges with too many callers to keep, ranked in the database: a range's callers only grow until
        # callers are forgotten or the rollups rebuilt, so it stays too large while those hold
        self._too_many: OrderedDict[tuple[date, date], tuple[date | None, str | None]] = OrderedDict()
        self._earliest: object = _NOT_READ

    def kept(self) -> list[tuple[date, date]]:
        """The closed days (first, last) of the kept sums, least recently asked first."""
        with self._lock:
            return list(self._sums)

    def top_callers(self, session: Session, begin: date, last: date, *, today: date) -> Callers:
        """The top users and top IPs of the days ``begin``..``last`` by calls (``u:`` / ``ip:`` → up to
        ``TOP_CALLERS`` of (id or address, calls), most calls first, ties by id / address as text), and
        how many distinct callers there were. The days before ``today`` are closed."""
        if begin == last:
            return callers_of_a_day(session, begin)
        connection = session.connection()  # Core rows: the ORM's row handling cost 3 µs per caller
        closed_last = min(last, today - timedelta(days=1))  # the range's days before today: kept
        live_first = max(begin, today)  # today and any later day of the range: read on every request
        sums: _Sums | None = None
        if closed_last >= begin:
            earliest = connection.execute(sa_select(func.min(col(DailyCaller.day)))).scalar_one_or_none()
            sums = self._closed_sums(connection, earliest, begin, closed_last)
            if sums is None:
                return _ranked_in_the_database(connection, begin, last)
            if live_first == last:  # one live day: the usual range, ending today
                found = _tops_reading_few(connection, sums, max(begin, earliest or begin), last)
                if found is not None:
                    return found
        live: dict[str, int] = {}
        if live_first <= last:
            day = col(DailyCaller.day)
            rows = connection.execute(
                sa_select(col(DailyCaller.actor), col(DailyCaller.calls)).where(
                    day >= live_first, day <= last
                )
            ).all()  # fetchall: row by row cost twice as much
            if live_first == last:
                live = {row[0]: row[1] for row in rows}  # one row per caller; dict(rows) took 2.7× as long
            else:
                for name, n in rows:
                    live[name] = live.get(name, 0) + n
        closed: dict[str, int] = sums.calls if sums else {}
        return _tops(live, closed, sums.ranked if sums else {})

    def _closed_sums(
        self, connection: Connection, earliest: date | None, begin: date, last: date
    ) -> _Sums | None:
        """Each caller's calls over ``begin``..``last`` (closed days): kept ones while the fingerprint
        holds, else summed in the database and kept. None: too many callers to keep; rank in the
        database. ``earliest``: the earliest day in ``stats_daily_callers``, just read."""
        self._forget_if_moved(earliest)
        fingerprint = _fingerprint(connection, earliest, begin, last)
        key = (begin, last)
        with self._lock:
            sums = self._sums.get(key)
            if sums is not None and sums.fingerprint == fingerprint:
                self._sums.move_to_end(key)
                return sums
            if self._too_many.get(key) == (earliest, fingerprint.zone):
                self._too_many.move_to_end(key)
                return None
        day, actor = col(DailyCaller.day), col(DailyCaller.actor)
        rows = connection.execute(
            sa_select(actor, func.sum(DailyCaller.calls)).where(day >= begin, day <= last).group_by(actor)
        ).all()
        calls = {name: int(n) for name, n in rows}
        ranked: Ranked = {prefix: [] for prefix in PREFIXES}
        for item in sorted((-n, name) for name, n in calls.items()):
            ranked["u:" if item[1].startswith("u:") else "ip:"].append(item)
        sums = _Sums(fingerprint, calls, ranked)
        with self._lock:
            self._sums.pop(key, None)
            if earliest != self._earliest:
                return sums  # callers were forgotten meanwhile: these may name some of them
            if len(calls) > self.callers:
                self._too_many[key] = (earliest, fingerprint.zone)
                while len(self._too_many) > self.ranges:
                    self._too_many.popitem(last=False)
                return sums  # used once, not kept
            while self._sums and (
                len(self._sums) >= self.ranges
                or sum(len(other.calls) for other in self._sums.values()) + len(calls) > self.callers
            ):
                self._sums.popitem(last=False)  # the least recently asked first
            self._sums[key] = sums
        return sums

    def _forget_if_moved(self, earliest: date | None) -> None:
        """Drop everything kept once the earliest caller day moves: callers were forgotten (their sums
        may name them), or rows came back before it."""
        with self._lock:
            if earliest != self._earliest:
                self._sums.clear()
                self._too_many.clear()
                self._earliest = earliest


def _tops(live: dict[str, int], closed: dict[str, int], ranked: Ranked) -> Callers:
    """The tops and the count of a range from its live days' callers (``live``: today's, 3,115 at 10M
    calls) and its closed days' sums. Only a caller of the live days, with its whole sum, or one of the
    best absent from them can be among the tops. Every live caller is summed once, in C where it can,
    and only those that can reach a top are ranked: 1.5 ms at 10M calls against 2.8 ms for a loop of
    Python statements ranking them all (docs/performance.md, session 12)."""
    absent = {
        prefix: list(
            itertools.islice((item for item in ranked.get(prefix, ()) if item[1] not in live), TOP_CALLERS)
        )
        for prefix in PREFIXES
    }
    # ten absent callers of a kind outrank every live caller of that kind with fewer calls than the
    # tenth of them (the ones that reach it: 1,555 of 3,115 at 10M calls, far fewer of each kind)
    floors = {prefix: -kind[-1][0] if len(kind) == TOP_CALLERS else 0 for prefix, kind in absent.items()}
    floor = min(floors.values())
    names = list(live)
    totals = map(operator.add, map(closed.get, names, itertools.repeat(0)), live.values())
    reach = [(-total, name) for total, name in zip(totals, names, strict=True) if total >= floor]
    top: dict[str, list[tuple[str, int]]] = {}
    for prefix in PREFIXES:  # (-calls, actor) tuples compare natively, as the tops order
        least = -floors[prefix]
        kind = [item for item in reach if item[0] <= least and item[1].startswith(prefix)]
        best = heapq.nsmallest(TOP_CALLERS, itertools.chain(kind, absent[prefix]))
        top[prefix] = [(name[len(prefix) :], -neg) for neg, name in best]
    known = sum(map(closed.__contains__, names))  # live callers with closed days too
    return top, len(closed) + len(names) - known


# today's first callers of each kind read in order (their calls exact): every other caller of the kind has at
# most the last one's calls today, which bounds who can still reach a top
LEADING = 50
LOOKUPS_PER_STATEMENT = 5_000  # well below SQLite's 32,766 variables


def _tops_reading_few(connection: Connection, sums: _Sums, begin: date, day: date) -> Callers | None:
    """The tops and the count of the closed days summed in ``sums`` and the one live ``day`` after them,
    reading of ``day`` only the callers that can still reach a top, and counting those new to the range in
    ``idx_stats_daily_callers_new`` (revision 0013). At 10M calls, the end of a day of benchmark 6 (7,000
    callers that day), 30 days: 236 callers read by name, and the callers 2.1 ms in all against 9.0-11.4
    for reading and ranking every caller of today (in-process, docs/performance.md, session 13).
    ``begin``: the range's first day, or the earliest still kept when later. None, to read every caller
    of today instead: a kind with fewer than ten callers on the closed days, a caller new to the range
    that could reach a top, or more than half of today's callers to be read by name.

    A caller's total is at least its closed sum, and exactly that plus today's calls for today's first
    ``LEADING`` callers of its kind, read in order: the tenth best of these least totals (the floor) is a
    least total of the kind's top. Any other caller has at most the last of those's calls today (the
    bound), so it reaches the top only with a closed sum of at least the floor less the bound: those
    callers' calls of today are read by name. A caller new to the range reaches it only with at least the
    floor's calls today: where the bound is that high, none of this holds. Raising the floor by today's
    leading callers' whole totals matters where callers call every day: 7 days at 10M calls read 3,239 by
    name with the tenth best closed sum as the floor, 100 with this one."""
    actor, calls, when = col(DailyCaller.actor), col(DailyCaller.calls), col(DailyCaller.day)
    known: dict[str, int] = {}  # today's calls, by caller
    candidates: dict[str, list[str]] = {}  # by kind: the callers that can reach its top
    wanted: list[str] = []  # callers whose calls today are to be read
    for prefix in PREFIXES:
        ranked = sums.ranked[prefix]
        if len(ranked) < TOP_CALLERS:
            return None  # no floor
        leading = connection.execute(
            sa_select(actor, calls)
            .where(when == day, actor.startswith(prefix))
            .order_by(calls.desc(), _bytewise(connection, actor))
            .limit(LEADING)
        ).all()
        known.update({name: n for name, n in leading})
        bound = leading[-1][1] if len(leading) == LEADING else 0  # all of the kind read: the others have 0
        # the least total of the top: the tenth best of the callers' least totals (the leading ones' whole)
        least = {name: -neg for neg, name in ranked[: TOP_CALLERS + len(leading)]}
        least.update({name: sums.calls.get(name, 0) + n for name, n in leading})
        floor = heapq.nlargest(TOP_CALLERS, least.values())[-1]
        if floor <= bound:
            return None  # a caller new to the range could reach the top: today rivals the closed days
        reach = bisect.bisect_right(ranked, bound - floor, key=operator.itemgetter(0))
        candidates[prefix] = [name for _, name in ranked[:reach]] + [name for name, _ in leading]
        if len(leading) == LEADING:  # else every caller of the kind today is known: the others have 0
            wanted.extend(name for _, name in ranked[:reach] if name not in known)
    today_callers = connection.execute(
        sa_select(col(PeriodActorCount.actors)).where(
            col(PeriodActorCount.kind) == "d", col(PeriodActorCount.start) == day
        )
    ).scalar_one_or_none()
    if 2 * len(wanted) > (today_callers or 0):
        return None  # reading all of today costs less (0.5 µs a caller to read, 0.5 to rank; 1.1 by name)
    for start in range(0, len(wanted), LOOKUPS_PER_STATEMENT):
        known.update(_calls_of(connection, day, wanted[start : start + LOOKUPS_PER_STATEMENT]))
    closed = sums.calls
    top: dict[str, list[tuple[str, int]]] = {}
    for prefix, names in candidates.items():
        totals = {(-(closed.get(name, 0) + known.get(name, 0)), name) for name in names}
        top[prefix] = [(name[len(prefix) :], -neg) for neg, name in heapq.nsmallest(TOP_CALLERS, totals)]
    prev = col(DailyCaller.prev_day)
    new = sum(
        connection.execute(sa_select(func.count()).where(when == day, unseen)).scalar_one()
        for unseen in (prev.is_(None), prev < begin)  # two seeks: an OR read every caller of the day
    )
    return top, len(closed) + int(new)


# SQLite, without statistics, reads a day's names through idx_stats_daily_callers_top, every caller of the day
# (it covers the columns): 1.55 ms for 400 names of 7,000, against 0.45 ms through the primary key's index
# (made with the table, revision 0006, under this name)
_SQLITE_BY_NAME = (
    "SELECT actor, calls FROM stats_daily_callers INDEXED BY sqlite_autoindex_stats_daily_callers_1"
    " WHERE day = ? AND actor IN ({})"
)


def _calls_of(connection: Connection, day: date, names: list[str]) -> list[tuple[str, int]]:
    """The calls of ``day`` of those of ``names`` who called that day, by their primary key."""
    if connection.dialect.name == "sqlite":
        sql = _SQLITE_BY_NAME.format(", ".join("?" * len(names)))
        return [(name, n) for name, n in connection.exec_driver_sql(sql, (day.isoformat(), *names))]
    actor = col(DailyCaller.actor)
    query = sa_select(actor, col(DailyCaller.calls)).where(col(DailyCaller.day) == day, actor.in_(names))
    return [(name, n) for name, n in connection.execute(query)]


def _fingerprint(connection: Connection, earliest: date | None, begin: date, last: date) -> _Fingerprint:
    """Read before the sums it vouches for (so kept sums are never older than it)."""
    zone = connection.execute(
        sa_select(col(SystemConfig.value)).where(col(SystemConfig.key) == ZONE_KEY)
    ).scalar_one_or_none()
    day = col(DailyModelStats.day)
    per_day = connection.execute(
        sa_select(day, func.sum(DailyModelStats.calls))
        .where(day >= begin, day <= last)
        .group_by(day)
        .order_by(day)
    ).all()
    return _Fingerprint(earliest, zone, tuple((d, int(n)) for d, n in per_day))


def _ranked_in_the_database(connection: Connection, begin: date, last: date) -> Callers:
    """:meth:`CallerSums.top_callers` for a range with too many callers to keep: one pass over the days'
    rows, ranked in the database (about 20 rows come back)."""
    total = func.sum(DailyCaller.calls)
    actor = col(DailyCaller.actor)
    kind = case((actor.startswith("u:"), "u:"), else_="ip:")
    grouped = (
        sa_select(
            actor.label("actor"),
            kind.label("kind"),
            total.label("calls"),
            func.row_number()
            .over(partition_by=kind, order_by=(total.desc(), _bytewise(connection, actor)))
            .label("rank"),
            func.count().over().label("callers"),
        )
        .where(col(DailyCaller.day) >= begin, col(DailyCaller.day) <= last)
        .group_by(actor)
        .subquery()
    )
    rows = connection.execute(
        sa_select(grouped.c.actor, grouped.c.kind, grouped.c.calls, grouped.c.callers).where(
            grouped.c.rank <= TOP_CALLERS
        )
    ).all()
    top: dict[str, list[tuple[str, int]]] = {prefix: [] for prefix in PREFIXES}
    for name, prefix, calls, _ in sorted(rows, key=lambda row: (-int(row[2]), row[0])):
        top[prefix].append((name[len(prefix) :], int(calls)))
    return top, int(rows[0][3]) if rows else 0


def _bytewise(connection: Connection, actor: Any) -> Any:
    """``actor`` ordered as Python orders text: PostgreSQL's collation may be a language's (en_US puts
    ``ip:100.0.0.1`` before ``ip:10.0.0.2``); SQLite compares bytes already."""
    return actor.collate("C") if connection.dialect.name == "postgresql" else actor


def callers_of_a_day(session: Session, day: date) -> Callers:
    """:meth:`CallerSums.top_callers` for one day: the first ``TOP_CALLERS`` users and IPs of the day by
    calls, read in order from ``idx_stats_daily_callers_top`` (SQLite) or
    ``idx_stats_daily_callers_top_bytewise`` (PostgreSQL: its ``actor COLLATE "C"`` is this order's, as
    ``_bytewise`` writes it), and the day's rows counted, without ranking every caller of the day (the
    default range, today: 3,115 callers at 10M calls) nor sorting those tied at the tenth place."""
    connection = session.connection()
    actor, calls = col(DailyCaller.actor), col(DailyCaller.calls)
    top: dict[str, list[tuple[str, int]]] = {}
    for prefix in PREFIXES:
        rows = connection.execute(
            sa_select(actor, calls)
            .where(col(DailyCaller.day) == day, actor.startswith(prefix))
            .order_by(calls.desc(), _bytewise(connection, actor))
            .limit(TOP_CALLERS)
        ).all()
        ordered = sorted(rows, key=lambda row: (-int(row[1]), row[0]))
        top[prefix] = [(name[len(prefix) :], int(n)) for name, n in ordered]
    count = connection.execute(sa_select(func.count()).where(col(DailyCaller.day) == day)).scalar_one()
    return top, int(count)
