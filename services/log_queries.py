"""Reading the call log: filters, server-side pages, and a streamed CSV export in constant memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import String, bindparam, case, func, literal, literal_column, type_coerce
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import TOKENS_SQL, Channel, ChatLog, DailyModelStats, User
from services.client_ip import parse_ip
from services.errors import InvalidInput, Word
from services.i18n import FALLBACK, translate
from services.text import has_control_characters

MAX_PAGE_SIZE = 200
# Rows counted past a page's last row: the total reads "more than" beyond it. An exact count of a table
# of 10M calls is a scan of them all (about 115 ms on SQLite, longer on PostgreSQL), on every page and
# sort; counting this far ahead keeps a page's cost the same at 100k and at 10M rows and still says how
# far the pages go (paging on moves the horizon with it).
COUNT_AHEAD = 10_000
MIN_FILTER_YEAR, MAX_FILTER_YEAR = 1970, 9998
MAX_USER_ID = 2**63 - 1
MAX_FILTER_CHARS = 254  # the longest e-mail; model ids are shorter still
MAX_PAGE = 10_000_000  # 2 billion rows at the largest page size; beyond it an offset means nothing
EXPORT_BATCH = 5_000
STATUSES = ("ok", "upstream_error", "client_aborted", "timeout", "server_shutdown")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CODES = [ord(c) for c in _FORMULA_START]
GUEST_KEY = "log_queries.guest"  # the user column of a guest's call
DELETED_USER_KEY = "log_queries.deleted_user"  # … of a call whose account the admin deleted since
GUEST_LABEL = translate(GUEST_KEY)  # in the fallback language (Chinese): 访客
DELETED_USER_LABEL = translate(DELETED_USER_KEY)  # 已删除用户


def user_label(language: str = FALLBACK) -> Any:
    """The user column in ``language``, read with ``users`` joined on the call's user id
    (``_with_accounts``): a join looks the account up once per row, where a correlated EXISTS in the cell
    was evaluated twice (the cell and its formula guard) and made the SQLite export a third slower."""
    return case(
        (col(ChatLog.user_id).is_(None), literal(translate(GUEST_KEY, language))),
        (col(User.id).is_(None), literal(translate(DELETED_USER_KEY, language))),
        else_=func.coalesce(col(ChatLog.username), literal("")),
    )


USER_LABEL = user_label()


def _with_accounts(query: Any) -> Any:
    """``query`` with the channel and the account of each call (either may be gone: outer joins)."""
    return query.join(Channel, col(Channel.id) == col(ChatLog.channel_id), isouter=True).join(
        User, col(User.id) == col(ChatLog.user_id), isouter=True
    )


@dataclass(frozen=True)
class LogFilter:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    user: str | None = None  # an email, a user id, or "guest"
    ip: str | None = None
    model: str | None = None
    status: str | None = None
    channel: int | None = None  # a channel id


# A sort key names a column (``-`` in front: descending); ``tokens`` is prompt + completion tokens.
LOG_SORTS = ("time", "duration", "tokens")
DEFAULT_LOG_SORT = "-time"


def check_log_sort(sort: str | None) -> str:
    """The sort key, or InvalidInput (422) naming ``sort``."""
    value = (sort or "").strip() or DEFAULT_LOG_SORT
    if value.removeprefix("-") not in LOG_SORTS:
        raise InvalidInput("errors.sort_one_of_desc", choices=", ".join(LOG_SORTS))
    return value


def _log_order(sort: str) -> list[Any]:
    """Each sort follows an index of ``chat_logs`` (app/models.py): the tokens' expression is the
    index's own text, as SQLite uses an expression index only for the same expression."""
    key = sort.removeprefix("-")
    column: Any = {
        "time": col(ChatLog.created_at),
        "duration": col(ChatLog.duration_ms),
        "tokens": literal_column(TOKENS_SQL),
    }[key]
    ident = col(ChatLog.id)
    descending = sort.startswith("-")
    ordered = column.desc() if descending else column.asc()
    if key == "duration":  # rows without a duration (NULL) last either way
        ordered = ordered.nulls_last()
    return [ordered, ident.desc() if descending else ident.asc()]


def parse_moment(text: str, zone: ZoneInfo, *, end: bool) -> datetime:
    """A date (the whole local day: its start, or with ``end`` the next day's start) or a date and time
    in ``zone`` unless it names its own offset; raises InvalidInput."""
    text = text.strip()
    try:
        parsed: date = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        shown = text[:40].encode("unicode_escape").decode("ascii")
        raise InvalidInput("errors.time_format", value=shown) from None
    if not MIN_FILTER_YEAR <= parsed.year <= MAX_FILTER_YEAR:  # and so no overflow below
        raise InvalidInput("errors.time_years", low=MIN_FILTER_YEAR, high=MAX_FILTER_YEAR)
    if not isinstance(parsed, datetime):  # a date: the whole local day
        return datetime.combine(parsed + timedelta(days=1) if end else parsed, time.min, tzinfo=zone)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def parse_filter(
    *,
    start: str | None,
    end: str | None,
    user: str | None,
    ip: str | None,
    model: str | None,
    status: str | None,
    zone: ZoneInfo,
    channel: str | int | None = None,
) -> LogFilter:
    """Validate raw filter values (API query or page form); raises InvalidInput with a readable message."""
    start_at = parse_moment(start, zone, end=False) if start and start.strip() else None
    end_at = parse_moment(end, zone, end=True) if end and end.strip() else None
    if start_at and end_at and start_at >= end_at:
        raise InvalidInput("errors.start_before_end")
    ip_value = None
    if ip and ip.strip():
        address = parse_ip(ip)
        if address is None:
            raise InvalidInput("errors.ip_invalid", value=ip.strip()[:64])
        ip_value = str(address)
    if status and status not in STATUSES:
        raise InvalidInput("errors.log_status_one_of", choices=", ".join(STATUSES))
    user_value = _user_filter(user)
    model_value = (model or "").strip() or None
    if model_value is not None:
        _check_text("errors.what.model", model_value)
    channel_value = None
    if channel is not None and str(channel).strip():
        text = str(channel).strip()
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_USER_ID):
            raise InvalidInput("errors.channel_id")
        channel_value = int(text)
    return LogFilter(start_at, end_at, user_value, ip_value, model_value, status or None, channel_value)


def _check_text(what: str, value: str) -> None:
    if len(value) > MAX_FILTER_CHARS:
        raise InvalidInput("errors.too_long", what=Word(what), count=MAX_FILTER_CHARS)
    if has_control_characters(value):
        raise InvalidInput("errors.control_characters", what=Word(what))


def _user_filter(user: str | None) -> str | None:
    """``guest``, a user id (ASCII digits in the id range) or an e-mail, lower-cased."""
    value = (user or "").strip().lower()
    if not value:
        return None
    _check_text("errors.what.user", value)
    if value.isascii() and value.isdigit() and not 1 <= int(value) <= MAX_USER_ID:
        raise InvalidInput("errors.user_id_range", high=MAX_USER_ID)
    return value


def _where(query: Any, flt: LogFilter) -> Any:
    if flt.start is not None:
        query = query.where(col(ChatLog.created_at) >= flt.start)
    if flt.end is not None:
        query = query.where(col(ChatLog.created_at) < flt.end)
    if flt.user is not None:
        if flt.user == "guest":
            query = query.where(col(ChatLog.user_id).is_(None))
        elif flt.user.isascii() and flt.user.isdigit():
            query = query.where(ChatLog.user_id == int(flt.user))
        else:  # an e-mail names the account that has it now (accounts are never renamed; a deleted one's
            # calls are found by its user id)
            account = select(User.id).where(User.email == flt.user).scalar_subquery()
            query = query.where(ChatLog.user_id == account)
    if flt.ip is not None:
        query = query.where(ChatLog.ip_address == flt.ip)
    if flt.model is not None:
        query = query.where(ChatLog.model_id == flt.model)
    if flt.status is not None:
        query = query.where(ChatLog.status == flt.status)
    if flt.channel is not None:
        query = query.where(ChatLog.channel_id == flt.channel)
    return query


@dataclass(frozen=True)
class LogPage:
    items: list[dict[str, Any]]
    total: int  # exact, or the rows counted when ``total_capped`` (there are more)
    page: int
    page_size: int
    total_capped: bool = False


def known_models(*, session: Session) -> list[str]:
    """The model ids that have calls (from the daily rollup, never a scan of the log)."""
    query = select(DailyModelStats.model_id).distinct().order_by(col(DailyModelStats.model_id))
    return list(session.exec(query).all())


def _row_dict(log: ChatLog, channel_name: str | None, account_gone: bool, language: str) -> dict[str, Any]:
    deleted = log.user_id is not None and account_gone
    return {
        "id": log.id,
        "created_at": log.created_at,
        "ip_address": log.ip_address,
        "user_id": log.user_id,
        "username": translate(DELETED_USER_KEY, language) if deleted else log.username,
        "user_deleted": deleted,
        "model_id": log.model_id,
        "channel_id": log.channel_id,
        "channel_name": channel_name,
        "status": log.status,
        "error": log.error,
        "prompt_tokens": log.prompt_tokens,
        "completion_tokens": log.completion_tokens,
        "tokens_estimated": log.tokens_estimated,
        "duration_ms": log.duration_ms,
        "api_key_id": log.api_key_id,
    }


def page_query(flt: LogFilter, page: int, page_size: int, sort: str) -> Any:
    """The rows of a page of calls, with their channel's name and whether the account still exists."""
    return (
        _where(_with_accounts(select(ChatLog, Channel.name, User.id)), flt)
        .order_by(*_log_order(sort))
        .offset((page - 1) * page_size)
        .limit(page_size)
    )


def list_logs(
    *,
    session: Session,
    flt: LogFilter,
    page: int,
    page_size: int,
    sort: str = DEFAULT_LOG_SORT,
    language: str = FALLBACK,
) -> LogPage:
    """A page of calls; a deleted account's calls name their user in ``language``."""
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput("errors.page_range", high=MAX_PAGE)
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    horizon = page * page_size + COUNT_AHEAD
    counted = _where(select(ChatLog.id), flt).limit(horizon + 1).subquery()
    total = session.exec(select(func.count()).select_from(counted)).one()
    rows = session.exec(page_query(flt, page, page_size, check_log_sort(sort))).all()
    items = [_row_dict(log, name, account is None, language) for log, name, account in rows]
    return LogPage(
        items=items,
        total=min(total, horizon),
        page=page,
        page_size=page_size,
        total_capped=total > horizon,
    )


# ---- CSV export ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportColumn:
    """A column of the CSV export: its header, what is read for it, and how a cell is written:

    - ``plain``: as it is, empty for NULL; for numbers and for words of a closed set (the status),
      which never need quotes and never start like a formula
    - ``time``: the stored UTC time as local ``YYYY-MM-DD HH:MM:SS`` (what spreadsheets read as a date)
    - ``flag``: ``yes`` or ``no``
    - ``text``: ``when_null`` for NULL; quoted as RFC 4180 asks, and with a leading ``'`` when it
      starts with ``= + - @``, a tab or a carriage return, so that no spreadsheet runs it as a formula
    """

    header: str
    kind: Literal["plain", "time", "flag", "text"]
    read: Any  # the ORM attribute read for it (SQLModel types it as the field's value)
    when_null: str = ""


# The IP is a ``plain`` cell: every row holds an address in canonical text or ``unknown``
# (services.client_ip decides every caller's address that way), which never needs quotes and never starts
# like a formula (an IPv6 address may start with ``:``, which is no formula). Guarding it like the free
# text cost an eighth of the SQLite export's time.
EXPORT_COLUMNS = (
    ExportColumn("id", "plain", ChatLog.id),
    ExportColumn("time ({zone})", "time", ChatLog.created_at),
    ExportColumn("ip", "plain", ChatLog.ip_address),  # an address or "unknown"
    ExportColumn("user", "text", USER_LABEL),  # the e-mail, guest or deleted user (see _columns)
    ExportColumn("model", "text", ChatLog.model_id),
    ExportColumn("channel_id", "plain", ChatLog.channel_id),
    ExportColumn("channel", "text", Channel.name),
    ExportColumn("status", "plain", ChatLog.status),  # one of STATUSES
    ExportColumn("prompt_tokens", "plain", ChatLog.prompt_tokens),
    ExportColumn("completion_tokens", "plain", ChatLog.completion_tokens),
    ExportColumn("tokens_estimated", "flag", ChatLog.tokens_estimated),
    ExportColumn("duration_ms", "plain", ChatLog.duration_ms),
    # last, so that readers of the earlier columns by position are not shifted
    ExportColumn("error", "plain", ChatLog.error),  # a reason code (services/reasons.py) or empty
)


def _columns(language: str) -> tuple[ExportColumn, ...]:
    """:data:`EXPORT_COLUMNS` with the user column's words in ``language``."""
    label = user_label(language)
    return tuple(replace(c, read=label) if c.read is USER_LABEL else c for c in EXPORT_COLUMNS)


def neutralize(value: Any) -> str:
    """A text cell that spreadsheet programs will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _local_time(value: Any, zone: ZoneInfo) -> str:
    """A stored time (text in SQLite, a datetime elsewhere) as local ``YYYY-MM-DD HH:MM:SS``."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _python_cell(column: ExportColumn, zone: ZoneInfo) -> Any:
    """How Python's csv module gets the column's cell (it quotes what RFC 4180 asks it to)."""
    if column.kind == "time":
        return lambda value: _local_time(value, zone)
    if column.kind == "flag":
        return lambda value: "yes" if value else "no"
    if column.kind == "plain":
        return lambda value: "" if value is None else value
    when_null = column.when_null
    return lambda value: neutralize(when_null if value is None else value)


def _sqlite_cell(column: ExportColumn, spans: list[tuple[datetime, int]]) -> tuple[str, list[Any]]:
    """The same cell as a piece of a SQLite ``printf`` format and its arguments (``%s`` writes a NULL
    as nothing; a text cell is always quoted, ``%w`` doubling the quotes inside). Each function per row
    and cell counts: a guarded, quoted text cell costs roughly a tenth of the export's time."""
    if column.kind == "plain":
        return "%s", [column.read]
    if column.kind == "time":
        return "%s", [_sqlite_local_time(column.read, spans)]
    if column.kind == "flag":
        return "%s", [case((column.read, "yes"), else_="no")]
    table = getattr(column.read, "class_", None)  # None for an expression (the user column: never NULL)
    nullable = table is not None and (table is not ChatLog or column.read.property.columns[0].nullable)
    text = func.coalesce(column.read, column.when_null) if nullable else column.read  # Channel: outer join
    guard = case((func.unicode(text).in_(_FORMULA_CODES), literal("'")), else_=literal(""))
    return '"%s%w"', [guard, text]


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


def _sqlite_local_time(stored: Any, spans: list[tuple[datetime, int]]) -> Any:
    """A stored UTC time (SQLite's text) as local text, the offset taken from the span it falls in."""

    def local(minutes: int) -> Any:
        if minutes == 0:
            return func.substr(stored, 1, 19)
        # the same text as strftime('%Y-%m-%d %H:%M:%S', ...) in a third of the time (~0.2 against ~0.55 µs)
        return func.datetime(stored, f"{minutes:+d} minutes")

    as_text = type_coerce(stored, String)
    when = [
        (as_text < until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), local(m)) for until, m in spans[:-1]
    ]
    return case(*when, else_=local(spans[-1][1])) if when else local(spans[-1][1])


def _sqlite_csv_line(spans: list[tuple[datetime, int]], columns: tuple[ExportColumn, ...]) -> Any:
    """One SQL expression that renders a whole CSV line, so SQLite does the per-row work.

    A single ``printf`` builds the line (a chain of ``||`` allocates a string per piece and ran at half
    the speed).
    """
    pieces = [_sqlite_cell(column, spans) for column in columns]
    return func.printf(",".join(piece for piece, _ in pieces), *(arg for _, args in pieces for arg in args))


def _from_logs(*columns: Any) -> Any:
    return _with_accounts(select(ChatLog.id, *columns))


def _export_sqlite(
    engine: Engine, flt: LogFilter, zone: ZoneInfo, columns: tuple[ExportColumn, ...] = EXPORT_COLUMNS
) -> Iterator[bytes]:
    with engine.connect() as connection:
        first, last = connection.execute(
            _where(select(func.min(ChatLog.created_at), func.max(ChatLog.created_at)), flt)
        ).one()
    if first is None:
        return
    base = _where(_from_logs(_sqlite_csv_line(_offset_spans(zone, first, last), columns)), flt)
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


def export_csv(
    *, engine: Engine, flt: LogFilter, zone: ZoneInfo, language: str = FALLBACK
) -> Iterator[bytes]:
    """The filtered rows as RFC 4180 CSV (UTF-8 with BOM), newest first, read in batches (keyset on id).

    Times are local to ``zone``, which the header names; a guest and a deleted user are named in
    ``language`` (the headers are fixed names, the same in every language). The columns and how each
    cell is written are :data:`EXPORT_COLUMNS`; on SQLite the database renders each line from them (one
    string per row, several times faster than formatting rows in Python), other databases use Python's
    csv module.
    """
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(
        [c.header.format(zone=zone.key) for c in EXPORT_COLUMNS]
    )
    yield "\ufeff".encode() + header.getvalue().encode()
    columns = _columns(language)
    if engine.dialect.name == "sqlite":
        yield from _export_sqlite(engine, flt, zone, columns)
    else:
        yield from _export_python(engine, flt, zone, columns)


def _export_python(
    engine: Engine, flt: LogFilter, zone: ZoneInfo, columns: tuple[ExportColumn, ...] = EXPORT_COLUMNS
) -> Iterator[bytes]:
    cells = [_python_cell(column, zone) for column in columns]
    # times as the stored text where the driver gives text: no datetime processing by SQLAlchemy per row
    reads = [type_coerce(c.read, String) if c.kind == "time" else c.read for c in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    last_id: int | None = None
    while True:
        query = _where(_from_logs(*reads), flt)
        if last_id is not None:
            query = query.where(col(ChatLog.id) < last_id)
        with engine.connect() as connection:
            rows = connection.execute(query.order_by(col(ChatLog.id).desc()).limit(EXPORT_BATCH)).all()
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([cell(value) for cell, value in zip(cells, row[1:], strict=True)] for row in rows)
        yield buffer.getvalue().encode()
        last_id = rows[-1][0]
