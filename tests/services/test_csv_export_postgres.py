"""The CSV export on a real PostgreSQL server: ``COPY … TO STDOUT`` gives byte for byte what Python's csv
module writes from the same rows, for awkward cells, every filter, several zones (across changes of
offset) and both languages, over many small batches; and no COPY stays open between batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.models import Channel, ChatLog, User
from services import log_export
from services.log_export import export_csv
from services.log_queries import LogFilter, parse_filter

# every way a cell can trip a CSV writer or a spreadsheet: formula starts, quotes, delimiters, line
# breaks (alone, CRLF, at either end), empty, spaces, backslashes, COPY's end marker, non-ASCII
AWKWARD = [
    "=SUM(A1)",
    "+cmd",
    "-1+2",
    "@home",
    "\tindent",
    "\rreturn",
    "\nnewline",
    'say "hi", then\r\nleave',
    "a,b",
    '"',
    "",
    " padded ",
    "back\\slash\\N",
    "\\.",
    "trailing\r",
    "trailing\n",
    "普通渠道 ✓ ß",
    "'quoted already",
    "NULL",
    "\r",  # a carriage return alone: guarded, then quoted
    " ",
    '""',
    "plain,then=",  # quoted for its comma only
]
START = datetime(2026, 3, 28, 20, 7, 13, 123456, tzinfo=UTC)  # Berlin and New York change offset after it
STEP = timedelta(hours=5, minutes=11, seconds=7, microseconds=654321)
ROWS = 160
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    from app.db import make_engine
    from app.migrate import upgrade
    from tests.postgres_server import run_postgres

    with run_postgres() as url:
        upgrade(url)
        engine = make_engine(url)
        _fill(engine)
        yield engine
        engine.dispose()


def _fill(engine: Engine) -> None:
    with Session(engine) as session:
        users = [User(email=f"user{n}@example.com", password_hash="x") for n in range(3)]
        channels = [
            Channel(name=name or "-", base_url="http://u", api_key="k", model_id="m") for name in AWKWARD
        ]
        session.add_all([*users, *channels])
        session.commit()
        user_ids = [u.id for u in users] + [9_999]  # the last: an account deleted since
        channel_ids = [c.id for c in channels] + [8_888, None]  # a channel deleted since, none
        for n in range(ROWS):
            awkward = AWKWARD[n % len(AWKWARD)]
            user_id = None if n % 4 == 0 else user_ids[n % len(user_ids)]
            session.add(
                ChatLog(
                    user_id=user_id,
                    username=None if user_id is None or n % 7 == 0 else f"{awkward}{n}@example.com",
                    ip_address=["10.0.0.1", "::1", "2001:db8::7", "unknown", awkward][n % 5],
                    channel_id=channel_ids[n % len(channel_ids)],
                    model_id=AWKWARD[(n * 3) % len(AWKWARD)],
                    prompt_tokens=None if n % 6 == 0 else n,
                    completion_tokens=None if n % 9 == 0 else 2 * n,
                    created_at=START + n * STEP,
                    status=["ok", "upstream_error", "timeout", 'we"ird,one'][n % 4],
                    tokens_estimated=bool(n % 2),
                    duration_ms=None if n % 5 == 0 else n * 10,
                    error=[None, "http_5xx", "", "a,b\r\nc"][n % 4],
                )
            )
        # one row on the change itself, a quarter second after it (Berlin, 2026-03-29 01:00 UTC)
        session.add(
            ChatLog(
                ip_address="10.0.0.2",
                model_id="m",
                created_at=datetime(2026, 3, 29, 1, 0, 0, 250_000, tzinfo=UTC),
                status="ok",
            )
        )
        session.commit()


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_export, "EXPORT_BATCH", 7)  # many batches: the keyset and each batch's end


def _python(engine: Engine, flt: LogFilter, zone: ZoneInfo, language: str) -> bytes:
    return b"".join(log_export._export_python(engine, flt, zone, log_export._columns(language)))


def _copy(engine: Engine, flt: LogFilter, zone: ZoneInfo, language: str) -> bytes:
    return b"".join(log_export._export_postgres(engine, flt, zone, log_export._columns(language)))


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_copy_gives_the_bytes_of_the_csv_module(engine: Engine, zone_name: str, language: str) -> None:
    zone = ZoneInfo(zone_name)
    expected = _python(engine, LogFilter(), zone, language)
    assert expected.count(b"\r\n") >= ROWS + 1  # a line per row, and line breaks inside cells
    assert _copy(engine, LogFilter(), zone, language) == expected


def _filters(engine: Engine, zone: ZoneInfo) -> list[LogFilter]:
    with engine.connect() as connection:
        channel = connection.execute(text("SELECT min(id) FROM channels")).scalar_one()
        some_user = connection.execute(text("SELECT min(id) FROM users")).scalar_one()

    def parsed(**values: str | None) -> LogFilter:
        fields: dict[str, str | None] = dict.fromkeys(("start", "end", "user", "ip", "model", "status"))
        return parse_filter(zone=zone, **{**fields, **values})

    return [
        parsed(start="2026-03-29", end="2026-04-02"),
        parsed(start="2026-03-29T02:30:00"),
        parsed(end="2026-04-01T12:00:00+05:30"),
        parsed(user="guest"),
        parsed(user=str(some_user)),
        parsed(user="9999"),  # a deleted account, by its id
        parsed(user="USER1@example.com"),
        parsed(ip="::1"),
        parsed(ip="2001:db8::7"),
        parsed(model="=SUM(A1)"),
        LogFilter(model='say "hi", then\r\nleave'),  # stored, though no filter form takes a line break
        parsed(status="timeout"),
        LogFilter(channel=channel),
        LogFilter(channel=8_888),
        LogFilter(start=START + 40 * STEP, user="guest", status="ok"),
        LogFilter(model="no such model"),
    ]


def test_every_filter_selects_the_same_bytes(engine: Engine) -> None:
    zone = ZoneInfo("Europe/Berlin")
    sizes = []
    for flt in _filters(engine, zone):
        expected = _python(engine, flt, zone, "en")
        assert _copy(engine, flt, zone, "en") == expected, flt
        sizes.append(expected.count(b"\r\n"))
    assert 0 in sizes and sum(1 for size in sizes if size > 7) >= 3  # empty results and several batches


def test_export_csv_takes_copy_on_postgresql(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    zone = ZoneInfo("America/New_York")
    expected = b"".join(export_csv(engine=engine, flt=LogFilter(), zone=zone, language="en"))

    def refused(*_: object) -> Iterator[bytes]:
        raise AssertionError("the csv module's renderer on PostgreSQL")

    monkeypatch.setattr(log_export, "_export_python", refused)
    copied = b"".join(export_csv(engine=engine, flt=LogFilter(), zone=zone, language="en"))
    assert copied == expected and copied.startswith("\ufeffid,time (America/New_York),ip,".encode())
    lines = copied.decode("utf-8-sig").split("\r\n")
    assert "'=SUM(A1)" in copied.decode() and "Deleted user" in copied.decode() and "Guest" in lines[-2]


def test_no_copy_stays_open_between_batches(engine: Engine) -> None:
    """A client that goes away mid-export stops asking for batches: nothing may be left running or
    holding a transaction on the server while the export waits between them."""
    chunks = export_csv(engine=engine, flt=LogFilter(), zone=ZoneInfo("UTC"))
    next(chunks)  # the header
    first = next(chunks)
    assert first.count(b"\r\n") >= 7
    with engine.connect() as connection:
        busy = connection.execute(
            text(
                "SELECT state, query FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND datname = current_database() AND state <> 'idle'"
            )
        ).all()
    assert busy == []
    chunks.close()
