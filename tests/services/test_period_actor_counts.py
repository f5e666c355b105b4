"""The active users per period that the database keeps (``stats_period_actor_counts``, revision 0012's
triggers on ``stats_period_actors``) against ``count(*)`` of the period's actors, on a real SQLite file and
a real PostgreSQL server: after the log writer's inserts (duplicates included), inserts of an older
writer, a rebuild and prunes; on PostgreSQL also two transactions inserting into the same period at once."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col

from app.models import (
    ChatLog,
    DailyCaller,
    DailyChannelStats,
    DailyCount,
    DailyLatency,
    DailyModelStats,
    PeriodActor,
    SystemConfig,
)
from services.caller_days import relink_caller_days
from services.rollups import (
    ZONE_KEY,
    Rollup,
    insert_period_actors,
    period_starts,
    prune_actors,
    rebuild_rollups,
)
from services.stats import dashboard
from tests.helpers import HANG_SECONDS, wait_until

UTC_ZONE = ZoneInfo("UTC")
# across the end of a month and three weeks
DAYS = [date(2026, 2, 24) + timedelta(days=n) for n in range(14)]
Period = tuple[str, date]
# two writers at once: SQLite has one at a time
ONLY_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A new engine on an emptied call log and rollups (the period actors deleted: the counts go too)."""
    from app.db import make_engine

    engine = make_engine(database_url)
    with engine.begin() as connection:
        for table in (
            ChatLog,
            DailyCaller,
            DailyChannelStats,
            DailyCount,
            DailyLatency,
            DailyModelStats,
            PeriodActor,
        ):
            connection.execute(delete(table))
        connection.execute(delete(SystemConfig).where(col(SystemConfig.key) == ZONE_KEY))
    assert _kept(engine) == {}
    yield engine
    engine.dispose()


def _counted(engine: Engine) -> dict[Period, int]:
    """count(*) of each period's actors."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT kind, start, count(*) FROM stats_period_actors GROUP BY kind, start")
        ).all()
    return {(kind, _day(start)): n for kind, start, n in rows}


def _kept(engine: Engine) -> dict[Period, int]:
    """What the database keeps in stats_period_actor_counts."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT kind, start, actors FROM stats_period_actor_counts")).all()
    return {(kind, _day(start)): n for kind, start, n in rows}


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)  # SQLite's text


def _log_calls(engine: Engine, rng: random.Random, n: int) -> None:
    """``n`` calls by users and guests on DAYS, into chat_logs and, as the log writer does (every period
    actor inserted with ON CONFLICT DO NOTHING: most are there already), into the rollups."""
    calls = []
    for _ in range(n):
        day = rng.choice(DAYS)
        guest = rng.random() < 0.4
        calls.append(
            ChatLog(
                user_id=None if guest else rng.randrange(40),
                ip_address=f"10.0.0.{rng.randrange(30)}",
                model_id="m",
                created_at=datetime.combine(day, time(rng.randrange(24), rng.randrange(60)), tzinfo=UTC),
                status="ok",
                duration_ms=10,
                prompt_tokens=1,
                completion_tokens=1,
            )
        )
    rollup = Rollup()
    rollup.add_rows(calls, UTC_ZONE)
    with Session(engine) as session:
        session.add_all(calls)
        rollup.apply(session.connection())
        session.commit()


def _active_users(engine: Engine, today: date) -> dict[str, int]:
    with Session(engine) as session:
        figures = dashboard(session=session, zone=UTC_ZONE, now=datetime.combine(today, time(12), tzinfo=UTC))
    return dict(figures["active_users"])


def _active_counted(engine: Engine, today: date) -> dict[str, int]:
    counted = _counted(engine)
    (_, day), (_, week), (_, month) = period_starts(today)
    return {
        "today": counted.get(("d", day), 0),
        "week": counted.get(("w", week), 0),
        "month": counted.get(("m", month), 0),
    }


def test_the_counts_follow_the_writers_a_rebuild_and_prunes(engine: Engine) -> None:
    rng = random.Random(12)
    for batch in (300, 50, 400, 1):
        _log_calls(engine, rng, batch)
        assert _kept(engine) == _counted(engine)
    # an older writer's own statement, with duplicates of rows there and within itself
    existing = sorted(_counted(engine))[:3]
    rows = [{"kind": k, "start": s, "actor": f"u:{n}"} for k, s in existing for n in range(35, 60)]
    with engine.begin() as connection:
        connection.execute(_insert_ignoring(connection), rows + rows[:10])
    counted = _counted(engine)
    assert _kept(engine) == counted and len(counted) == 14 + 3 + 2  # days, weeks, months
    for today in (DAYS[0], DAYS[4], DAYS[5], DAYS[-1], DAYS[-1] + timedelta(days=1)):
        assert _active_users(engine, today) == _active_counted(engine, today)
    assert _active_users(engine, DAYS[-1] + timedelta(days=1))["today"] == 0, "a period with no row"

    assert rebuild_rollups(engine, UTC_ZONE) == 751
    rebuilt = _counted(engine)
    assert _kept(engine) == rebuilt and len(rebuilt) == 19
    assert rebuilt != counted, "the older writer's actors are not in chat_logs: they are gone"

    with engine.begin() as connection:
        prune_actors(connection, DAYS[6])  # the days before, their weeks and months ended long before
    pruned = _counted(engine)
    assert _kept(engine) == pruned and ("d", DAYS[5]) not in pruned and ("d", DAYS[6]) in pruned
    assert _active_users(engine, DAYS[-1]) == _active_counted(engine, DAYS[-1])
    with engine.begin() as connection:
        prune_actors(connection, DAYS[-1] + timedelta(days=60))
    assert _kept(engine) == _counted(engine) == {}


def _insert_ignoring(connection: Connection) -> object:
    """INSERT … ON CONFLICT DO NOTHING into stats_period_actors, as the log writer's (and a previous
    version's) statement is."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(PeriodActor.__table__).on_conflict_do_nothing()  # type: ignore[attr-defined]


def test_a_rebuild_of_many_actors_counts_them_in_one_go(engine: Engine) -> None:
    """A rebuild deletes and inserts every period actor: the counts end as count(*) of what it wrote."""
    _log_calls(engine, random.Random(5), 3000)
    before = _counted(engine)
    rebuild_rollups(engine, UTC_ZONE)
    assert _kept(engine) == _counted(engine) == before


@ONLY_POSTGRESQL
def test_two_transactions_adding_to_the_same_period_at_once_count_exactly(engine: Engine) -> None:
    """Two real concurrent transactions on PostgreSQL: the second inserts actors of the same day while the
    first still holds its uncommitted rows and counter rows (some actors in both, some its own), waits,
    and adds what it really inserted."""
    day = DAYS[3]
    first = {(k, s, f"u:{n}") for k, s in period_starts(day) for n in range(0, 60)}
    second = {(k, s, f"u:{n}") for k, s in period_starts(day) for n in range(40, 100)}
    errors: list[BaseException] = []
    with engine.connect() as one:
        one.begin()
        insert_period_actors(one, first)

        def run_second() -> None:
            try:
                with engine.begin() as two:
                    insert_period_actors(two, second)
            except BaseException as exc:  # reported by the test below
                errors.append(exc)

        thread = threading.Thread(target=run_second)
        thread.start()
        _wait_for_a_lock_wait(engine)
        assert thread.is_alive()
        one.commit()
    thread.join(timeout=HANG_SECONDS)
    assert not thread.is_alive() and errors == []
    assert _kept(engine) == _counted(engine) == {period: 100 for period in period_starts(day)}


@ONLY_POSTGRESQL
def test_many_concurrent_writers_leave_the_counts_exact(engine: Engine) -> None:
    """Four threads, each 40 transactions of random actors (overlapping) of the periods of three days, at
    once, inserted as the log writer inserts them."""
    errors: list[BaseException] = []

    def write(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                day = rng.choice(DAYS[:3])
                actors = {f"ip:10.0.{rng.randrange(3)}.{rng.randrange(200)}" for _ in range(20)}
                with engine.begin() as connection:
                    insert_period_actors(
                        connection, {(k, s, a) for k, s in period_starts(day) for a in actors}
                    )
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    _at_once(write, 4)
    assert errors == []
    counted = _counted(engine)
    assert _kept(engine) == counted and sum(counted.values()) > 1000


def _at_once(write: Callable[[int], None], threads: int) -> None:
    """``write(0)`` .. ``write(threads - 1)``, each in its own thread at once, all ended."""
    running = [threading.Thread(target=write, args=(seed,)) for seed in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout=HANG_SECONDS)
    assert not any(thread.is_alive() for thread in running), "a writer still runs"


def _wait_for_a_lock_wait(engine: Engine) -> None:
    """Until another session of the database waits for a lock (the second transaction's insert)."""
    with engine.connect() as connection:

        def waiting() -> bool:
            found = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar()
            connection.rollback()
            return bool(found)

        wait_until(waiting, poll=0.02, what="the second transaction waiting for the first")


def _caller_days(engine: Engine) -> list[tuple[str, date, date | None]]:
    """Every caller day with its ``prev_day`` (revision 0013), by caller and day."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT actor, day, prev_day FROM stats_daily_callers ORDER BY actor, day")
        ).all()
    return [(actor, _day(day), None if prev is None else _day(prev)) for actor, day, prev in rows]


def _links_hold(engine: Engine) -> bool:
    """Each caller day's ``prev_day`` is its caller's kept day before it, or none."""
    rows = _caller_days(engine)
    return all(
        prev == (rows[i - 1][1] if i and rows[i - 1][0] == actor else None)
        for i, (actor, _, prev) in enumerate(rows)
    )


def test_each_callers_days_stay_linked_through_writers_a_rebuild_and_prunes(engine: Engine) -> None:
    """The log writer's batches land on days in any order (late rows among them); a rebuild deletes and
    recounts them; retention deletes the earliest days (the days after unlinked from them), and late rows
    come back before its cut."""
    rng = random.Random(13)
    for batch in (300, 50, 400, 1, 200):
        _log_calls(engine, rng, batch)
        assert _links_hold(engine)
    linked = _caller_days(engine)
    assert sum(prev is not None for _, _, prev in linked) > 300
    assert rebuild_rollups(engine, UTC_ZONE) == 951
    assert _caller_days(engine) == linked
    with engine.begin() as connection:
        prune_actors(connection, DAYS[6])
    assert _links_hold(engine) and min(day for _, day, _ in _caller_days(engine)) == DAYS[6]
    _log_calls(engine, rng, 100)
    assert _links_hold(engine)


def test_links_anew_what_a_rebuild_could_not_see(engine: Engine) -> None:
    """On PostgreSQL a log writer's transaction still open when a rebuild's reset runs keeps its rows,
    linked to days the reset deleted; the rebuild's last step links every row anew (here the links are
    broken by hand, which the trigger never does)."""
    _log_calls(engine, random.Random(14), 300)
    linked = _caller_days(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE stats_daily_callers SET prev_day = NULL WHERE actor LIKE 'u:1%'"))
        connection.execute(
            text("UPDATE stats_daily_callers SET prev_day = :late WHERE actor LIKE 'ip:%'"),
            {"late": DAYS[-1]},
        )
    assert _caller_days(engine) != linked
    with engine.begin() as connection:
        relink_caller_days(connection)
    assert _caller_days(engine) == linked


@ONLY_POSTGRESQL
def test_concurrent_writers_adding_caller_days_in_any_order_do_not_deadlock(engine: Engine) -> None:
    """Four threads, each 30 batches of the log writer's rollups at once, their calls in any order: two
    write today's calls of every caller, two late rows of their own callers on earlier days (first rows of
    those days, whose trigger also locks the caller's next day: today's). Those share no daily model or
    channel row with today's (which serialize the writers of one day): without the writers' lock on
    caller days, the links of one caller's two new days went wrong in 4 runs of 4; with each table's rows
    in the order of the batch's calls, the writers deadlocked."""
    errors: list[BaseException] = []
    _log_calls(engine, random.Random(15), 200)  # days to come late before
    start = threading.Barrier(4, timeout=HANG_SECONDS)

    def write(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()  # all four at once
            for _ in range(30):
                if seed % 2:  # late rows only: first rows of earlier days of this thread's own callers
                    owned = range(100 + 20 * seed, 120 + 20 * seed)
                    days = [(rng.choice(DAYS[:-1]), user) for user in rng.sample(owned, 8)]
                else:  # today only, callers of every thread
                    days = [(DAYS[-1], user) for user in rng.sample([*range(40), *range(100, 180)], 12)]
                calls = [
                    ChatLog(
                        user_id=user,
                        ip_address="10.0.0.1",
                        model_id=rng.choice(["m", "n", "o"]),
                        created_at=datetime.combine(day, time(12), tzinfo=UTC),
                        status="ok",
                        duration_ms=10,
                        prompt_tokens=1,
                        completion_tokens=1,
                    )
                    for day, user in days
                ]
                rollup = Rollup()
                rollup.add_rows(calls, UTC_ZONE)
                with engine.begin() as connection:
                    rollup.apply(connection)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    _at_once(write, 4)
    assert errors == []
    assert _links_hold(engine)
