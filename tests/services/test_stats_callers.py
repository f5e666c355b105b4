"""The dashboard's top users, top IPs and count of callers (services/stats_callers.py) against a sum over
every stored row, on a real SQLite file and a real PostgreSQL server: ranges of one and several days,
ties at the cut, sums kept between requests and dropped when a closed day changes (a late row, another
writer, a rebuild) or callers are forgotten, ranges that end in the future, and the bounds on what is
kept."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.models import DailyCaller, DailyModelStats, PeriodActor, SystemConfig
from services.logs import CallRecord
from services.rollups import ZONE_KEY, Rollup, prune_actors
from services.stats import dashboard
from services.stats_callers import TOP_CALLERS, CallerSums, callers_of_a_day

UTC_ZONE = ZoneInfo("UTC")
DAYS = [date(2026, 3, 1) + timedelta(days=n) for n in range(6)]
Ledger = dict[tuple[date, str], int]  # (day, actor) → calls, what the tables should hold


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A new engine on emptied rollup tables."""
    from app.db import make_engine

    engine = make_engine(database_url)
    with engine.begin() as connection:
        for table in (DailyCaller, DailyModelStats, PeriodActor):
            connection.execute(delete(table))
        connection.execute(delete(SystemConfig).where(col(SystemConfig.key) == ZONE_KEY))
    yield engine
    engine.dispose()


def _write(engine: Engine, ledger: Ledger, calls: list[tuple[date, int | str]]) -> None:
    """Count ``calls`` ((day, user id or guest IP)) into the rollups as the log writer does, one
    transaction for all, and into ``ledger``."""
    rollup = Rollup()
    rollup.add_rows(
        [
            CallRecord(
                user_id=who if isinstance(who, int) else None,
                username=None,
                ip_address=who if isinstance(who, str) else "10.255.0.1",
                channel_id=None,
                model_id=f"m-{n % 3}",
                prompt_tokens=1,
                completion_tokens=1,
                created_at=datetime.combine(day, time(12), tzinfo=UTC),
                status="ok",
                tokens_estimated=False,
                duration_ms=10,
                error=None,
                ttft_ms=None,
            )
            for n, (day, who) in enumerate(calls)
        ],
        UTC_ZONE,
    )
    with engine.begin() as connection:
        rollup.apply(connection)
    for day, who in calls:
        actor = f"u:{who}" if isinstance(who, int) else f"ip:{who}"
        ledger[(day, actor)] = ledger.get((day, actor), 0) + 1


def _expected(ledger: Ledger, begin: date, last: date) -> dict[str, Any]:
    """The tops and the count, summed in Python over every row of the range."""
    sums: dict[str, int] = defaultdict(int)
    for (day, actor), n in ledger.items():
        if begin <= day <= last:
            sums[actor] += n
    ranked = sorted(sums.items(), key=lambda item: (-item[1], item[0]))
    users = [(int(a[2:]), n) for a, n in ranked if a.startswith("u:")][:TOP_CALLERS]
    ips = [(a[3:], n) for a, n in ranked if a.startswith("ip:")][:TOP_CALLERS]
    return {"users": users, "ips": ips, "count": len(sums)}


def _shown(
    engine: Engine, begin: date, last: date, sums: CallerSums | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    with Session(engine) as session:
        figures = dashboard(session=session, zone=UTC_ZONE, now=now, start=begin, end=last, caller_sums=sums)
    return {
        "users": [(row["user_id"], row["calls"]) for row in figures["top_users"]],
        "ips": [(row["ip_address"], row["calls"]) for row in figures["top_ips"]],
        "count": figures["range"]["active_users"],
    }


def _insert_behind_the_rollups(engine: Engine, rows: list[tuple[date, str, int]]) -> None:
    """Caller rows whose calls ``stats_daily_models`` does not count: what no writer does, so that a
    test can tell kept sums (which do not see them) from sums read anew (which do)."""
    with engine.begin() as connection:
        connection.execute(
            DailyCaller.__table__.insert(),  # type: ignore[attr-defined]
            [{"day": day, "actor": actor, "calls": n} for day, actor, n in rows],
        )


LAST_DAY_NOON = datetime.combine(DAYS[-1], time(12), tzinfo=UTC)  # today: the last of DAYS


def _check_every_range(engine: Engine, ledger: Ledger, sums: CallerSums) -> None:
    """Ranges that end today (today read on every request) and ranges wholly past (every day kept)."""
    for i, begin in enumerate(DAYS):
        for last in DAYS[i:]:
            expected = _expected(ledger, begin, last)
            assert _shown(engine, begin, last, sums, now=LAST_DAY_NOON) == expected, (begin, last)
            assert _shown(engine, begin, last, sums, now=LAST_DAY_NOON) == expected, (begin, last)  # kept


def test_every_range_matches_a_sum_over_every_row_while_rows_arrive(engine: Engine) -> None:
    """Six days of random callers with many ties: every range of one to six days, asked twice (the
    second from kept sums), then again after late rows in closed days, new callers and callers who
    overtake the tops on the last day, then after the earliest days' callers are forgotten. Every
    range's sums stay kept in between, so each check after a change is one the kept sums must pass."""
    rng = random.Random(20261130)
    sums = CallerSums(ranges=len(DAYS) ** 2)
    ledger: Ledger = {}
    people: list[int | str] = [*range(1, 40), *(f"10.0.{n % 4}.{n}" for n in range(40))]
    _write(engine, ledger, [(rng.choice(DAYS), rng.choice(people)) for _ in range(900)])
    _check_every_range(engine, ledger, sums)

    late: list[tuple[date, int | str]] = [(DAYS[1], 7), (DAYS[2], "10.0.3.3"), (DAYS[0], 500)]
    _write(engine, ledger, late)  # a late row in closed days, one of them from a new caller
    overtakers = [(DAYS[-1], "10.9.9.9")] * 120 + [(DAYS[-1], 77)] * 90  # new callers, today
    overtakers += [(DAYS[-1], 5)] * 80 + [(DAYS[-1], "10.0.1.5")] * 70  # known ones, far below the tops
    _write(engine, ledger, overtakers)
    _check_every_range(engine, ledger, sums)

    with engine.begin() as connection:
        prune_actors(connection, DAYS[2])
    for key in [key for key in ledger if key[0] < DAYS[2]]:
        del ledger[key]
    _check_every_range(engine, ledger, sums)


def test_a_tie_at_the_cut_with_a_caller_new_on_the_last_day(engine: Engine) -> None:
    """Ten callers with 5 calls on the closed days and one with 5 on the last day only: ties go by id
    as text, so the newcomer ``u:1`` comes first and ``u:9`` drops out."""
    ledger: Ledger = {}
    _write(engine, ledger, [(DAYS[0], n) for n in range(2, 12) for _ in range(5)])
    _write(engine, ledger, [(DAYS[1], 1)] * 5)
    expected = _expected(ledger, DAYS[0], DAYS[1])
    assert [uid for uid, _ in expected["users"]] == [1, 10, 11, 2, 3, 4, 5, 6, 7, 8]
    sums = CallerSums()
    assert _shown(engine, DAYS[0], DAYS[1], sums) == expected
    assert _shown(engine, DAYS[0], DAYS[1], sums) == expected


def test_callers_of_today_at_the_floor_the_best_absent_set(engine: Engine) -> None:
    """With ten or more callers of a kind absent today, a caller of today with fewer calls than the
    tenth of them cannot reach that kind's top, and is passed over unranked. Each kind has its own floor
    (users 36 calls here, IPs 11), and a caller of today that ties it comes before the absent one when
    its name is lower as text: ``u:100`` ties ``u:6`` and ``ip:10.1.0.100`` ties ``ip:10.1.0.6``
    (below the users' floor: a floor shared by both kinds would pass it over)."""
    ledger: Ledger = {}
    closed = [(DAYS[0], n) for n in range(1, 16) for _ in range(30 + n)]  # users 1..15: 31..45 calls
    closed += [(DAYS[1], f"10.1.0.{n}") for n in range(1, 16) for _ in range(5 + n)]  # IPs: 6..20
    _write(engine, ledger, closed)
    today: list[tuple[date, int | str]] = [(DAYS[-1], 100)] * 36 + [(DAYS[-1], 101)] * 35
    today += [(DAYS[-1], "10.1.0.100")] * 11 + [(DAYS[-1], 1)]  # u:1 (32 calls) stays below the floor
    _write(engine, ledger, today)
    expected = _expected(ledger, DAYS[0], DAYS[-1])
    assert (100, 36) in expected["users"] and (6, 36) not in expected["users"]
    assert ("10.1.0.100", 11) in expected["ips"] and ("10.1.0.6", 11) not in expected["ips"]
    sums = CallerSums()
    assert _shown(engine, DAYS[0], DAYS[-1], sums, now=LAST_DAY_NOON) == expected
    assert _shown(engine, DAYS[0], DAYS[-1], sums, now=LAST_DAY_NOON) == expected  # from kept sums


def test_with_fewer_than_ten_absent_every_caller_of_today_is_ranked(engine: Engine) -> None:
    """Three users absent today leave room in the top for one with 2 calls today: there is no floor."""
    ledger: Ledger = {}
    _write(engine, ledger, [(DAYS[0], n) for n in (1, 2, 3) for _ in range(10)] + [(DAYS[-1], 4)] * 2)
    expected = _expected(ledger, DAYS[0], DAYS[-1])
    assert expected["users"] == [(1, 10), (2, 10), (3, 10), (4, 2)]
    assert _shown(engine, DAYS[0], DAYS[-1], CallerSums(), now=LAST_DAY_NOON) == expected


def test_kept_sums_are_reused_while_their_fingerprint_holds(engine: Engine) -> None:
    """A caller row written behind the rollups' back into a closed day is not seen where the sums were
    kept, which proves they are reused; today is read on every request; another process (another
    ``CallerSums``) sums for itself."""
    ledger: Ledger = {}
    _write(engine, ledger, [(DAYS[0], 1), (DAYS[1], 2), (DAYS[2], 3)])
    sums, now = CallerSums(), datetime.combine(DAYS[2], time(12), tzinfo=UTC)  # today: DAYS[2]
    assert _shown(engine, DAYS[0], DAYS[2], sums, now=now)["count"] == 3
    _insert_behind_the_rollups(engine, [(DAYS[1], "u:9", 50), (DAYS[2], "u:8", 40)])
    after = _shown(engine, DAYS[0], DAYS[2], sums, now=now)
    assert after["users"] == [(8, 40), (1, 1), (2, 1), (3, 1)] and after["count"] == 4  # u:9 is not read
    assert _shown(engine, DAYS[0], DAYS[2], CallerSums(), now=now)["users"][:2] == [(9, 50), (8, 40)]


def test_a_rebuild_drops_kept_sums_even_where_each_days_calls_stay(engine: Engine) -> None:
    """A rebuild for another time zone recounts every row; a day may keep its number of calls while its
    callers change. The zone the rollups were rebuilt for is part of the fingerprint."""
    ledger: Ledger = {}
    _write(engine, ledger, [(DAYS[0], 1), (DAYS[1], 2), (DAYS[2], 3)])
    sums = CallerSums()
    assert _shown(engine, DAYS[0], DAYS[2], sums)["users"] == [(1, 1), (2, 1), (3, 1)]
    with engine.begin() as connection:  # what a rebuild could leave: the same calls, another caller
        connection.execute(
            DailyCaller.__table__.update()  # type: ignore[attr-defined]
            .where(col(DailyCaller.day) == DAYS[1], col(DailyCaller.actor) == "u:2")
            .values(actor="u:99")
        )
        connection.execute(
            SystemConfig.__table__.insert(),  # type: ignore[attr-defined]
            [{"key": ZONE_KEY, "value": "Asia/Tokyo", "updated_at": datetime.now(UTC)}],
        )
    assert _shown(engine, DAYS[0], DAYS[2], sums)["users"] == [(1, 1), (3, 1), (99, 1)]


def test_forgetting_callers_drops_every_kept_sum(engine: Engine) -> None:
    """When the retention run deletes the earliest days' callers, no kept sum is used again, including
    those of ranges it did not touch (they may name forgotten addresses)."""
    ledger: Ledger = {}
    _write(engine, ledger, [(day, "10.0.0.1") for day in DAYS])
    sums = CallerSums()
    _shown(engine, DAYS[0], DAYS[2], sums)
    _shown(engine, DAYS[3], DAYS[5], sums)
    assert sums.kept() == [(DAYS[0], DAYS[2]), (DAYS[3], DAYS[5])]  # past ranges: every day kept
    with engine.begin() as connection:
        prune_actors(connection, DAYS[1])
    _shown(engine, DAYS[3], DAYS[5], sums)
    assert sums.kept() == [(DAYS[3], DAYS[5])]


def test_sums_read_before_callers_are_forgotten_are_not_kept_after(engine: Engine) -> None:
    """A request sums a range; before it stores the sums the retention run forgets the earliest day's
    callers and another request notices. The sums, which name a forgotten caller, are not used again."""
    from sqlalchemy import event

    ledger: Ledger = {}
    _write(engine, ledger, [(DAYS[0], "10.0.0.1"), (DAYS[1], 2), (DAYS[2], 3), (DAYS[3], 4)])
    sums = CallerSums()
    pruned = []

    def prune_after_the_sum(_conn, _cursor, statement: str, *_: object) -> None:
        if not pruned and "GROUP BY stats_daily_callers.actor" in statement:
            pruned.append(True)
            with engine.begin() as connection:
                prune_actors(connection, DAYS[1])
            _shown(engine, DAYS[2], DAYS[3], sums)  # another request: sees the earliest day move

    event.listen(engine, "after_cursor_execute", prune_after_the_sum)
    try:
        assert _shown(engine, DAYS[0], DAYS[2], sums)["ips"] == [("10.0.0.1", 1)]  # read before the prune
    finally:
        event.remove(engine, "after_cursor_execute", prune_after_the_sum)
    del ledger[(DAYS[0], "ip:10.0.0.1")]
    assert pruned and _shown(engine, DAYS[0], DAYS[2], sums) == _expected(ledger, DAYS[0], DAYS[2])


def test_a_range_that_ends_in_the_future_keeps_only_the_days_before_today(engine: Engine) -> None:
    """Today is read on every request even when the range goes on past it, so a busy today does not undo
    the kept sums; the figures match the rows as they arrive."""
    ledger: Ledger = {}
    today, now = DAYS[3], datetime.combine(DAYS[3], time(18), tzinfo=UTC)
    _write(engine, ledger, [(day, n) for day in DAYS[:4] for n in range(1, 4)])
    sums = CallerSums()
    assert _shown(engine, DAYS[0], DAYS[5], sums, now=now) == _expected(ledger, DAYS[0], DAYS[5])
    _write(engine, ledger, [(today, 7)] * 3)  # today goes on
    _insert_behind_the_rollups(engine, [(DAYS[1], "u:9", 50)])  # not seen if the closed sums are kept
    shown = _shown(engine, DAYS[0], DAYS[5], sums, now=now)
    assert shown == _expected(ledger, DAYS[0], DAYS[5])
    assert sums.kept() == [(DAYS[0], DAYS[2])]


def test_top_callers_and_active_callers_of_a_range(engine: Engine) -> None:
    """More users and IPs than the tops hold, ties broken by id / address, calls summed over the days of
    the range only, every distinct caller counted once."""
    first, second, outside = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 5)
    calls = {f"u:{n}": n for n in range(1, 15)} | {f"ip:10.0.0.{n}": 3 for n in range(12)}
    with Session(engine) as session:
        for actor, n in calls.items():  # split over the two days of the range
            session.add(DailyCaller(day=first, actor=actor, calls=n - n // 2))
            if n // 2:
                session.add(DailyCaller(day=second, actor=actor, calls=n // 2))
        session.add(DailyCaller(day=outside, actor="u:1", calls=1000))  # not in the range
        session.add(DailyCaller(day=outside, actor="ip:10.9.9.9", calls=1000))
        session.commit()
        figures = dashboard(session=session, zone=UTC_ZONE, start=first, end=second)
    assert [u["user_id"] for u in figures["top_users"]] == list(range(14, 14 - TOP_CALLERS, -1))
    assert figures["top_users"][0]["calls"] == 14
    ips = sorted(f"10.0.0.{n}" for n in range(12))[:TOP_CALLERS]  # a tie: by address
    assert figures["top_ips"] == [{"ip_address": ip, "calls": 3} for ip in ips]
    assert figures["range"]["active_users"] == 14 + 12


def test_one_days_callers_read_in_order_match_the_sum(engine: Engine, database_url: str) -> None:
    """The default range (one day) reads its top callers in order from an index instead of ranking every
    caller of the day: the same tops (ties at the cut included) and the same count as the sum over every
    row; on SQLite the plan reads the index and nothing else."""
    ledger: Ledger = {}
    with Session(engine) as session:
        for n in range(40):  # ties around the cut: many callers share a count
            ledger[(DAYS[0], f"u:{n}")] = n % 7 + 1
            ledger[(DAYS[0], f"ip:10.0.{n % 3}.{n}")] = (n * 5) % 4 + 1
        for n in range(5):  # fewer than the tops hold, users only
            ledger[(DAYS[1], f"u:{100 + n}")] = n + 1
        for (day, actor), n in ledger.items():
            session.add(DailyCaller(day=day, actor=actor, calls=n))
        session.commit()
        for day in DAYS[:3]:  # the third is empty
            top, count = callers_of_a_day(session, day)
            shown = {"users": [(int(uid), n) for uid, n in top["u:"]], "ips": top["ip:"], "count": count}
            assert shown == _expected(ledger, day, day)
        top, count = callers_of_a_day(session, DAYS[0])
        assert count == 80 and [calls for _, calls in top["u:"]] == [7] * 5 + [6] * 5
        if database_url.startswith("sqlite"):
            plan = session.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT actor, calls FROM stats_daily_callers WHERE day = :day "
                    "AND actor LIKE 'u:%' ORDER BY calls DESC, actor LIMIT 10"
                ),
                {"day": DAYS[0].isoformat()},
            ).all()
            index = "USING COVERING INDEX idx_stats_daily_callers_top"
            assert [index in row[-1] for row in plan] == [True]


# eleven guests with the same calls: the ten first by address as Python orders text (bytes) leave "::1"
# out (":" after the digits), a language's collation skips punctuation and puts it first
TIED_IPS = ["10.0.0.2", "100.0.0.1", "10.1.0.1", "101.0.0.1", "1.0.0.9", "10.0.0.10", "9.9.9.9", "19.0.0.1"]
TIED_IPS += ["100.0.0.10", "1.10.0.1", "::1"]


def test_ties_order_as_python_does_under_a_language_collation(database_url: str) -> None:
    """On PostgreSQL, in a database whose collation is a language's (ICU en-US, punctuation ignored),
    tied callers still order by address as bytes: for one day read in order from the index, and for a
    range ranked in the database. (SQLite compares text as bytes already.)"""
    from app.db import make_engine
    from app.migrate import upgrade
    from tests.postgres_server import create_database

    url = database_url
    if url.startswith("postgresql"):
        url = create_database(url, "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US-u-ka-shifted'")
        upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(delete(DailyCaller))
        ledger: Ledger = {}
        _write(engine, ledger, [(day, ip) for day in DAYS[:2] for ip in TIED_IPS])
        expected = sorted(TIED_IPS)[:TOP_CALLERS]
        with Session(engine) as session:
            assert [ip for ip, _ in callers_of_a_day(session, DAYS[0])[0]["ip:"]] == expected
        ranked_there = CallerSums(callers=0)  # too many to keep: summed once, then ranked in the database
        for _ in range(2):
            assert [ip for ip, _ in _shown(engine, DAYS[0], DAYS[1], ranked_there)["ips"]] == expected
    finally:
        engine.dispose()


def test_kept_ranges_are_bounded_least_recently_asked_first(engine: Engine) -> None:
    ledger: Ledger = {}
    _write(engine, ledger, [(day, 1) for day in DAYS])
    sums = CallerSums(ranges=3)
    ranges = [(DAYS[0], DAYS[n]) for n in range(2, 6)]  # past ranges: kept whole
    for begin, last in ranges[:3]:
        _shown(engine, begin, last, sums)
    _shown(engine, *ranges[0], sums)  # asked again: now the most recent
    _shown(engine, *ranges[3], sums)
    assert sums.kept() == [(DAYS[0], DAYS[4]), (DAYS[0], DAYS[2]), (DAYS[0], DAYS[5])]  # (.., DAYS[3]) went


def test_kept_callers_are_bounded_and_a_range_with_more_is_ranked_in_the_database(engine: Engine) -> None:
    """At most ``callers`` callers are kept over all ranges, the least recently asked dropped first; a
    range with more is ranked in the database on every request (it sees every row), with the same
    figures."""
    ledger: Ledger = {}
    _write(engine, ledger, [(day, who) for day in DAYS for who in (1, 2, "10.0.0.1")])
    sums = CallerSums(callers=4)
    _shown(engine, DAYS[0], DAYS[2], sums)
    _shown(engine, DAYS[1], DAYS[3], sums)  # 3 + 3 callers: the first range is dropped
    assert sums.kept() == [(DAYS[1], DAYS[3])]

    few = CallerSums(callers=2)
    for _ in range(2):  # summed once (not kept), then ranked in the database
        assert _shown(engine, DAYS[0], DAYS[4], few) == _expected(ledger, DAYS[0], DAYS[4])
        assert few.kept() == []
    _insert_behind_the_rollups(engine, [(DAYS[1], "u:9", 50)])
    assert _shown(engine, DAYS[0], DAYS[4], few)["users"][0] == (9, 50)


def _store(engine: Engine, rows: Ledger) -> None:
    """Caller rows as they are after the log writer's batches, and today's actors (the day's count of
    callers): what a fresh ``CallerSums`` reads."""
    with engine.begin() as connection:
        for table in (DailyCaller, DailyModelStats, PeriodActor):
            connection.execute(delete(table))
        connection.execute(
            DailyCaller.__table__.insert(),  # type: ignore[attr-defined]
            [{"day": day, "actor": actor, "calls": n} for (day, actor), n in rows.items()],
        )
        connection.execute(
            PeriodActor.__table__.insert(),  # type: ignore[attr-defined]
            [{"kind": "d", "start": day, "actor": actor} for day, actor in rows if day == DAYS[-1]],
        )


@pytest.mark.parametrize("leading", [1, 4, 50])
def test_ranges_ending_today_read_only_the_callers_that_can_reach_a_top(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, leading: int
) -> None:
    """Random callers of both kinds (weights even, heavy-tailed or tied; a share of them absent from
    some days or from today; newcomers of today, some of them heavy): every range ending today matches
    the sum over every row, whether today's callers were read by bound (``_tops_reading_few``) or all of
    them, and both ways are taken. ``LEADING`` is lowered to take bounds after one and four callers."""
    from services import stats_callers

    monkeypatch.setattr(stats_callers, "LEADING", leading)
    read_few = stats_callers._tops_reading_few
    outcomes: list[bool] = []

    def spied(*args: Any) -> Any:
        found = read_few(*args)
        outcomes.append(found is not None)
        return found

    monkeypatch.setattr(stats_callers, "_tops_reading_few", spied)
    rng = random.Random(leading)
    for _ in range(12):
        people = [f"u:{n}" for n in range(1, rng.randrange(5, 300))]
        people += [f"ip:10.{n // 200}.{n % 200}.{rng.randrange(9)}" for n in range(rng.randrange(5, 300))]
        shape = rng.choice(["even", "heavy", "tied"])
        scale, today_share = rng.choice([3, 40]), rng.choice([0.05, 0.3, 1.0])
        rows: Ledger = {}
        for actor in people:
            weight = (
                1.0 if shape == "even" else rng.paretovariate(1.3) if shape == "heavy" else rng.choice([1, 2])
            )
            for day in DAYS[:-1]:
                if rng.random() < 0.8:
                    rows[(day, actor)] = max(1, round(weight * scale * rng.uniform(0.5, 1.5)))
            today = round(weight * scale * today_share * rng.uniform(0, 2))
            if today and rng.random() < 0.9:
                rows[(DAYS[-1], actor)] = today
        for n in range(rng.randrange(4)):  # newcomers of today
            rows[(DAYS[-1], rng.choice(["u:", "ip:10.99.0."]) + str(1000 + n))] = rng.randrange(1, 20 * scale)
        _store(engine, rows)
        sums = CallerSums()
        for begin in DAYS[:-1]:
            expected = _expected(rows, begin, DAYS[-1])
            assert _shown(engine, begin, DAYS[-1], sums, now=LAST_DAY_NOON) == expected, begin
    assert any(outcomes) and not all(outcomes), outcomes


@pytest.mark.parametrize(
    ("closed_calls", "x_closed", "read_few"),
    [
        (100, 90, True),  # ip:10.0.0.1 has the bound's calls today and the floor less the bound before
        (5, 0, False),  # ip:10.0.0.1 is new today with the floor's calls, which is the bound's
    ],
)
def test_a_caller_at_the_bound_ties_the_tenth_and_wins_it_by_address(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, closed_calls: int, x_closed: int, read_few: bool
) -> None:
    """Ten IPs with ``closed_calls`` before today (the floor); today ``ip:10.0.0.0`` (the one caller
    read in order, ``LEADING`` lowered to 1) and ``ip:10.0.0.1`` have the bound's calls each, and
    ``ip:10.0.0.1`` totals the floor: as text it comes before the ten, and takes the tenth's place."""
    from services import stats_callers

    monkeypatch.setattr(stats_callers, "LEADING", 1)
    bound = closed_calls - x_closed
    rows: Ledger = {(DAYS[0], f"ip:10.0.0.{n}"): closed_calls for n in range(10, 20)}
    rows |= {(DAYS[0], f"u:{n}"): 50 for n in range(1, 11)}
    rows |= {(DAYS[-1], "ip:10.0.0.0"): bound, (DAYS[-1], "ip:10.0.0.1"): bound}
    rows |= {(DAYS[-1], f"ip:10.9.0.{n}"): 1 for n in range(60)}  # enough callers today to read few
    if x_closed:
        rows[(DAYS[0], "ip:10.0.0.1")] = x_closed
    _store(engine, rows)
    outcomes: list[bool] = []
    spied = stats_callers._tops_reading_few
    monkeypatch.setattr(
        stats_callers, "_tops_reading_few", lambda *a: outcomes.append(bool(found := spied(*a))) or found
    )
    expected = _expected(rows, DAYS[0], DAYS[-1])
    assert ("10.0.0.1", closed_calls) in expected["ips"] and ("10.0.0.19", closed_calls) not in expected[
        "ips"
    ]
    assert _shown(engine, DAYS[0], DAYS[-1], CallerSums(), now=LAST_DAY_NOON) == expected
    assert outcomes == [read_few]
