"""Reading the call log: filters, server-side pages, and a streamed CSV export in constant memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, bindparam, case, func, literal, type_coerce
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import Channel, ChatLog, User
from services.client_ip import parse_ip
from services.errors import InvalidInput

MAX_PAGE_SIZE = 200
EXPORT_BATCH = 5_000
STATUSES = ("ok", "upstream_error", "client_aborted", "timeout")
CSV_HEADER = [
    "id",
    "time ({zone})",
    "ip",
    "user",
    "model",
    "channel_id",
    "channel",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "tokens_estimated",
    "duration_ms",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CODES = [ord(c) for c in _FORMULA_START]
GUEST_LABEL = "访客"  # the user column of a guest's call


@dataclass(frozen=True)
class LogFilter:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    user: str | None = None  # an email, a user id, or "guest"
    ip: str | None = None
    model: str | None = None
    status: str | None = None


def _parse_moment(text: str, zone: ZoneInfo, *, end: bool) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:  # a date: the whole local day
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time.min, tzinfo=zone)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise InvalidInput(f"时间格式不正确：{text[:40]}（例如 2026-11-24 或 2026-11-24T08:00）") from None
    return moment


def parse_filter(
    *,
    start: str | None,
    end: str | None,
    user: str | None,
    ip: str | None,
    model: str | None,
    status: str | None,
    zone: ZoneInfo,
) -> LogFilter:
    """Validate raw filter values (API query or page form); raises InvalidInput with a readable message."""
    start_at = _parse_moment(start, zone, end=False) if start and start.strip() else None
    end_at = _parse_moment(end, zone, end=True) if end and end.strip() else None
    if start_at and end_at and start_at >= end_at:
        raise InvalidInput("开始时间必须早于结束时间")
    ip_value = None
    if ip and ip.strip():
        address = parse_ip(ip)
        if address is None:
            raise InvalidInput(f"不是有效的 IP 地址：{ip.strip()[:64]}")
        ip_value = str(address)
    if status and status not in STATUSES:
        raise InvalidInput(f"状态只能是 {', '.join(STATUSES)}")
    user_value = user.strip().lower() if user and user.strip() else None
    return LogFilter(start_at, end_at, user_value, ip_value, (model or "").strip() or None, status or None)


def _where(query: Any, flt: LogFilter) -> Any:
    if flt.start is not None:
        query = query.where(col(ChatLog.created_at) >= flt.start)
    if flt.end is not None:
        query = query.where(col(ChatLog.created_at) < flt.end)
    if flt.user is not None:
        if flt.user == "guest":
            query = query.where(col(ChatLog.user_id).is_(None))
        elif flt.user.isdigit():
            query = query.where(ChatLog.user_id == int(flt.user))
        else:  # an e-mail: accounts are never deleted nor renamed, so it names one user id for good
            account = select(User.id).where(User.email == flt.user).scalar_subquery()
            query = query.where(ChatLog.user_id == account)
    if flt.ip is not None:
        query = query.where(ChatLog.ip_address == flt.ip)
    if flt.model is not None:
        query = query.where(ChatLog.model_id == flt.model)
    if flt.status is not None:
        query = query.where(ChatLog.status == flt.status)
    return query


@dataclass(frozen=True)
class LogPage:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def _row_dict(log: ChatLog, channel_name: str | None) -> dict[str, Any]:
    return {
        "id": log.id,
        "created_at": log.created_at,
        "ip_address": log.ip_address,
        "user_id": log.user_id,
        "username": log.username,
        "model_id": log.model_id,
        "channel_id": log.channel_id,
        "channel_name": channel_name,
        "status": log.status,
        "prompt_tokens": log.prompt_tokens,
        "completion_tokens": log.completion_tokens,
        "tokens_estimated": log.tokens_estimated,
        "duration_ms": log.duration_ms,
    }


def list_logs(*, session: Session, flt: LogFilter, page: int, page_size: int) -> LogPage:
    if page < 1:
        raise InvalidInput("page 必须是正整数")
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    total = session.exec(_where(select(func.count()).select_from(ChatLog), flt)).one()
    query = (
        _where(
            select(ChatLog, Channel.name).join(
                Channel, col(Channel.id) == col(ChatLog.channel_id), isouter=True
            ),
            flt,
        )
        .order_by(col(ChatLog.created_at).desc(), col(ChatLog.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = [_row_dict(log, name) for log, name in session.exec(query).all()]
    return LogPage(items=items, total=total, page=page, page_size=page_size)


def neutralize(value: Any) -> str:
    """A CSV cell that spreadsheet programs will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _local_time(value: Any, zone: ZoneInfo) -> str:
    """A stored time (text in SQLite, a datetime elsewhere) as local ``YYYY-MM-DD HH:MM:SS``."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _offset_spans(zone: ZoneInfo, first: datetime, last: datetime) -> list[tuple[datetime, int]]:
    """``(until, minutes)``: the zone's UTC offset in minutes up to each ``until`` (UTC), covering
    first..last. One span for zones without daylight saving time."""

    def minutes_at(moment: datetime) -> int:
        offset = moment.astimezone(zone).utcoffset()
        return int(offset.total_seconds() // 60) if offset else 0

    spans: list[tuple[datetime, int]] = []
    current = minutes_at(first)
    day = first
    while day < last:
        following = min(day + timedelta(days=1), last)
        if minutes_at(following) != current:  # a transition inside this day: find its minute
            low, high = day, following
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if minutes_at(middle) == current else (low, middle)
            spans.append((high, current))
            current = minutes_at(following)
        day = following
    spans.append((last + timedelta(days=1), current))
    return spans


def _offset_label(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _sqlite_csv_line(spans: list[tuple[datetime, int]]) -> Any:
    """One SQL expression that renders a whole CSV line, so SQLite does the per-row work.

    A single ``printf`` builds the line (a chain of ``||`` allocates a string per piece and ran at half
    the speed); ``%w`` doubles the quotes inside the free-text cells (user, model, channel name), which
    are always quoted and get a leading ``'`` when they start like a formula. IPs, statuses and numbers
    never need quoting.
    """

    def local(minutes: int) -> Any:
        if minutes == 0:
            return func.substr(ChatLog.created_at, 1, 19)
        return func.strftime("%Y-%m-%d %H:%M:%S", ChatLog.created_at, f"{minutes:+d} minutes")

    def guard(value: Any) -> Any:
        return case((func.unicode(value).in_(_FORMULA_CODES), literal("'")), else_=literal(""))

    stored = type_coerce(ChatLog.created_at, String)
    when = [
        (stored < until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), local(m)) for until, m in spans[:-1]
    ]
    time_text = case(*when, else_=local(spans[-1][1])) if when else local(spans[-1][1])
    user = func.coalesce(ChatLog.username, GUEST_LABEL)
    channel = func.coalesce(Channel.name, "")
    return func.printf(
        '%d,%s,%s,"%s%w","%s%w",%s,"%s%w",%s,%s,%s,%s,%s',
        ChatLog.id,
        time_text,
        ChatLog.ip_address,
        guard(user),
        user,
        guard(ChatLog.model_id),
        ChatLog.model_id,
        func.coalesce(ChatLog.channel_id, ""),
        guard(channel),
        channel,
        ChatLog.status,
        func.coalesce(ChatLog.prompt_tokens, ""),
        func.coalesce(ChatLog.completion_tokens, ""),
        case((col(ChatLog.tokens_estimated), "yes"), else_="no"),
        func.coalesce(ChatLog.duration_ms, ""),
    )


def _export_sqlite(engine: Engine, flt: LogFilter, zone: ZoneInfo) -> Iterator[bytes]:
    with engine.connect() as connection:
        first, last = connection.execute(
            _where(select(func.min(ChatLog.created_at), func.max(ChatLog.created_at)), flt)
        ).one()
    if first is None:
        return
    line = _sqlite_csv_line(_offset_spans(zone, first, last))
    base = _where(
        select(ChatLog.id, line).join(Channel, col(Channel.id) == col(ChatLog.channel_id), isouter=True), flt
    )
    first_batch = _positional(engine, base.order_by(col(ChatLog.id).desc()).limit(EXPORT_BATCH))
    after = base.where(col(ChatLog.id) < bindparam("last_id", 0))
    next_batch = _positional(engine, after.order_by(col(ChatLog.id).desc()).limit(EXPORT_BATCH))
    last_id: int | None = None
    while True:
        sql, params = first_batch if last_id is None else next_batch
        with engine.connect() as connection:  # plain tuples from the driver: no Row object per line
            cursor = connection.connection.cursor()
            try:
                cursor.execute(sql, [last_id if p is _LAST_ID else p for p in params])
                rows = cursor.fetchall()
            finally:
                cursor.close()
        if not rows:
            return
        yield ("\r\n".join([row[1] for row in rows]) + "\r\n").encode()
        last_id = rows[-1][0]


_LAST_ID = object()


def _positional(engine: Engine, query: Any) -> tuple[str, list[Any]]:
    """A query as the SQLite driver takes it: SQL with ``?`` and its parameters in order (the keyset
    bound, ``last_id``, as a placeholder to fill in per batch)."""
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.params
    return str(compiled), [_LAST_ID if name == "last_id" else values[name] for name in compiled.positiontup]


def export_csv(*, engine: Engine, flt: LogFilter, zone: ZoneInfo) -> Iterator[bytes]:
    """The filtered rows as RFC 4180 CSV (UTF-8 with BOM), newest first, read in batches (keyset on id).

    Times are local to ``zone`` as ``YYYY-MM-DD HH:MM:SS`` (what spreadsheets read as a date), with the
    zone named in the header. On SQLite the database renders each line (one string per row), which is
    several times faster than formatting rows in Python; other databases use Python's csv module.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([name.format(zone=zone.key) for name in CSV_HEADER])
    yield "\ufeff".encode() + buffer.getvalue().encode()
    if engine.dialect.name == "sqlite":
        yield from _export_sqlite(engine, flt, zone)
        return
    yield from _export_python(engine, flt, zone, buffer, writer)


def _export_python(
    engine: Engine, flt: LogFilter, zone: ZoneInfo, buffer: io.StringIO, writer: Any
) -> Iterator[bytes]:
    columns = select(
        ChatLog.id,
        type_coerce(ChatLog.created_at, String),
        ChatLog.ip_address,
        ChatLog.username,
        ChatLog.model_id,
        ChatLog.channel_id,
        Channel.name,
        ChatLog.status,
        ChatLog.prompt_tokens,
        ChatLog.completion_tokens,
        ChatLog.tokens_estimated,
        ChatLog.duration_ms,
    ).join(Channel, col(Channel.id) == col(ChatLog.channel_id), isouter=True)
    last_id: int | None = None
    while True:
        query = _where(columns, flt)
        if last_id is not None:
            query = query.where(col(ChatLog.id) < last_id)
        with engine.connect() as connection:
            rows = connection.execute(query.order_by(col(ChatLog.id).desc()).limit(EXPORT_BATCH)).all()
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(
            (
                row_id,
                _local_time(created, zone),
                neutralize(ip),
                neutralize(user or GUEST_LABEL),
                neutralize(model),
                _blank(channel_id),
                neutralize(channel),
                status,
                _blank(prompt),
                _blank(completion),
                "yes" if estimated else "no",
                _blank(duration),
            )
            for (
                row_id,
                created,
                ip,
                user,
                model,
                channel_id,
                channel,
                status,
                prompt,
                completion,
                estimated,
                duration,
            ) in rows
        )
        yield buffer.getvalue().encode()
        last_id = rows[-1][0]
