"""The CSV export's two renderers agree cell for cell: SQLite's ``printf`` line and Python's csv module."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from app.models import Channel, ChatLog
from services import log_export
from services.log_export import export_csv
from services.log_queries import LogFilter
from tests.helpers import migrated_engine

AWKWARD = [
    'say "hi", then\r\nleave',
    "-1+2",
    "=SUM(A1)",
    "@home",
    "\tindent",
    "+cmd",
    "\rreturn",
    "普通渠道",
    "",
]
# what services.client_ip decides (IPv4, IPv6 that starts with ":", "unknown"): all the column holds
IPS = ["10.0.0.1", "::1", "2001:db8::7", "unknown"]


def _parse(chunks: list[bytes]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "Asia/Kolkata", "UTC"])
def test_sqlite_and_python_renderers_agree(tmp_path: Path, zone_name: str) -> None:
    engine = migrated_engine(tmp_path / "chat.db")
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # across Berlin's change to summer time
    with Session(engine) as session:
        channels = [Channel(name=n or "x", base_url="http://u", api_key="k", model_id="m") for n in AWKWARD]
        session.add_all(channels)
        session.commit()
        for n in range(120):
            text = AWKWARD[n % len(AWKWARD)]
            session.add(
                ChatLog(
                    user_id=n % 3 or None,
                    username=None if n % 3 == 0 else f"{text if n % 2 else n}@example.com",
                    ip_address=IPS[n % len(IPS)],
                    channel_id=channels[n % len(channels)].id if n % 5 else None,
                    model_id=text or "m",
                    prompt_tokens=n if n % 4 else None,
                    completion_tokens=2 * n,
                    created_at=start + timedelta(minutes=17 * n),
                    status="ok",
                    tokens_estimated=bool(n % 2),
                    duration_ms=n * 10,
                )
            )
        session.commit()
    zone = ZoneInfo(zone_name)
    for flt in (LogFilter(), LogFilter(model="-1+2")):
        header, *from_sqlite = _parse(list(export_csv(engine=engine, flt=flt, zone=zone)))
        assert header[1] == f"time ({zone_name})" and from_sqlite
        from_python = _parse(list(log_export._export_python(engine, flt, zone)))  # other databases'
        assert from_sqlite == from_python
    rows = _parse(list(export_csv(engine=engine, flt=LogFilter(), zone=zone)))
    assert {row[3] for row in rows[1:] if "@" not in row[3]} == {"访客", "已删除用户"}  # no users table rows
    english = _parse(list(export_csv(engine=engine, flt=LogFilter(), zone=zone, language="en")))
    python_english = log_export._export_python(engine, LogFilter(), zone, log_export._columns("en"))
    assert english[1:] == _parse(list(python_english))
    assert {row[3] for row in english[1:] if "@" not in row[3]} == {"Guest", "Deleted user"}
    cells = {cell for row in rows for cell in row}
    assert "'=SUM(A1)" in cells and "'-1+2" in cells and 'say "hi", then\r\nleave' in cells
    assert {"'@home", "'\tindent", "'+cmd", "'\rreturn", "普通渠道"} <= cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t")) for cell in cells)
    assert {row[2] for row in rows[1:]} == set(IPS), "addresses stay as they are"


def test_the_header_names_every_column_and_the_zone(tmp_path: Path) -> None:
    engine = migrated_engine(tmp_path / "chat.db")
    [header] = _parse(list(export_csv(engine=engine, flt=LogFilter(), zone=ZoneInfo("Asia/Shanghai"))))
    assert header == [c.header.format(zone="Asia/Shanghai") for c in log_export.EXPORT_COLUMNS]
    assert header[:3] == ["id", "time (Asia/Shanghai)", "ip"] and len(header) == 13
    assert header[-1] == "error"


def test_times_just_after_a_change_of_offset_take_the_new_one(tmp_path: Path) -> None:
    """The change is found to the second, however the first row's time falls: a search from a time with
    microseconds came only within a minute of it, and rows in that minute took the old offset."""
    engine = migrated_engine(tmp_path / "chat.db")
    change = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # Berlin: 03:00 summer time becomes 02:00
    moments = [
        datetime(2026, 10, 24, 13, 14, 15, 866782, tzinfo=UTC),
        change - timedelta(microseconds=500_000),
        change + timedelta(microseconds=250_000),
        change + timedelta(seconds=30, microseconds=700_000),
        datetime(2026, 10, 26, 9, 0, 1, 5, tzinfo=UTC),
    ]
    with Session(engine) as session:
        for at in moments:
            session.add(ChatLog(ip_address="10.0.0.1", model_id="m", created_at=at, status="ok"))
        session.commit()
    zone = ZoneInfo("Europe/Berlin")
    rows = _parse(list(export_csv(engine=engine, flt=LogFilter(), zone=zone)))[1:]
    assert [row[1] for row in reversed(rows)] == [
        "2026-10-24 15:14:15",
        "2026-10-25 02:59:59",
        "2026-10-25 02:00:00",
        "2026-10-25 02:00:30",
        "2026-10-26 10:00:01",
    ]
    assert rows == _parse(list(log_export._export_python(engine, LogFilter(), zone)))
