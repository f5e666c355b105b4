"""The call log as a streamed CSV file in constant memory: the columns and how each cell is written
(:data:`EXPORT_COLUMNS`), rendered by the database on SQLite and PostgreSQL, by Python's csv module
elsewhere."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Integer,
    Interval,
    String,
    TypeDecorator,
    bindparam,
    case,
    cast,
    func,
    literal,
    type_coerce,
)
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from app.models import Channel, ChatLog, User
from services.i18n import FALLBACK, translate
from services.log_queries import DELETED_USER_KEY, GUEST_KEY, LogFilter, _where, _with_accounts
from services.pg_copy import copy_rows, crlf

EXPORT_BATCH = 5_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CODES = [ord(c) for c in _FORMULA_START]


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
        if minutes_at(following) != current:  # a transition inside this day: find its second
            # on whole seconds, as offsets change: ``high`` ends as the change itself, which a search
            # from times with microseconds (the rows') only came within a minute of
            low = day.replace(microsecond=0)
            high = following.replace(microsecond=0) + timedelta(seconds=1 if following.microsecond else 0)
            while high - low > timedelta(seconds=1):
                middle = low + timedelta(seconds=(high - low) // timedelta(seconds=2))
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


def _spans(engine: Engine, flt: LogFilter, zone: ZoneInfo) -> list[tuple[datetime, int]] | None:
    """The UTC offsets of ``zone`` over the filtered rows' times (:func:`_offset_spans`); None when no
    row matches."""
    with engine.connect() as connection:
        first, last = connection.execute(
            _where(select(func.min(ChatLog.created_at), func.max(ChatLog.created_at)), flt)
        ).one()
    return None if first is None else _offset_spans(zone, first, last)


def _export_sqlite(
    engine: Engine, flt: LogFilter, zone: ZoneInfo, columns: tuple[ExportColumn, ...] = EXPORT_COLUMNS
) -> Iterator[bytes]:
    spans = _spans(engine, flt, zone)
    if spans is None:
        return
    base = _where(_from_logs(_sqlite_csv_line(spans, columns)), flt)
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
    cell is written are :data:`EXPORT_COLUMNS`. The database renders the rows from them where it can,
    several times faster than formatting rows in Python: on SQLite one string per line, on PostgreSQL
    (psycopg) ``COPY … TO STDOUT`` with every cell written in SQL; other databases use Python's csv module.
    Every renderer gives the same bytes as the csv module (the tests compare them).
    """
    header = io.StringIO()
    csv.writer(header, lineterminator="\r\n").writerow(
        [c.header.format(zone=zone.key) for c in EXPORT_COLUMNS]
    )
    yield "\ufeff".encode() + header.getvalue().encode()
    columns = _columns(language)
    if engine.dialect.name == "sqlite":
        yield from _export_sqlite(engine, flt, zone, columns)
    elif engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        yield from _export_postgres(engine, flt, zone, columns)
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


# ---- PostgreSQL: COPY, read below psycopg's Copy object --------------------------------------------------
# ``COPY (SELECT …) TO STDOUT WITH (FORMAT csv)`` quotes a cell exactly when Python's csv module does (it
# holds a comma, a quote, CR or LF; inner quotes doubled), with two differences made good here: it quotes
# an empty string (``""``, as NULL is the empty cell), so empty text is sent as NULL; and it ends a line
# with LF, which becomes CRLF in Python (one ``replace`` per batch; a row per line of COPY when a cell
# holds a line break). The server only builds the cells; PostgreSQL's C code writes the CSV.
#
# COPY sends a message per line, which psycopg's ``Copy`` read for about 2 µs of Python each:
# services.pg_copy takes them straight from libpq for about 0.3 µs.

# rows per batch, in EXPORT_BATCHes: a batch costs a query's planning and round trips
_POSTGRES_BATCHES = 4


def _postgres_cell(column: ExportColumn, spans: list[tuple[datetime, int]]) -> Any:
    """The column's cell as a column of the ``COPY`` query."""
    read = column.read
    if column.kind == "plain":
        return func.nullif(read, "") if _is_text(read) else read
    if column.kind == "time":
        return _postgres_local_time(read, spans)
    if column.kind == "flag":
        return case((read, literal("yes")), else_=literal("no"))
    text = func.coalesce(read, literal(column.when_null))
    return case((func.ascii(text).in_(_FORMULA_CODES), literal("'") + text), else_=func.nullif(text, ""))


def _is_text(expression: Any) -> bool:
    """Whether ``expression`` reads text (SQLModel's string columns decorate SQLAlchemy's String)."""
    kind = expression.type
    return isinstance(kind.impl_instance if isinstance(kind, TypeDecorator) else kind, String)


def _postgres_local_time(stored: Any, spans: list[tuple[datetime, int]]) -> Any:
    """A stored time (``timestamptz``) as local time to the second, the offset taken from the span it
    falls in (the spans Python's zoneinfo gives, as on SQLite: the same offsets as the csv module's
    times, whatever time zone data the server has); newest span first, as the rows come."""

    def local(minutes: int) -> Any:
        # as text: a negative timedelta would be sent as "-1 days +20:00:00", which PostgreSQL refuses
        return func.timezone(cast(literal(f"{minutes:+d} minutes"), Interval), stored)

    starts = [until for until, _ in spans[:-1]]  # where each span after the first begins
    when = [(stored >= starts[n], local(spans[n + 1][1])) for n in reversed(range(len(starts)))]
    shifted = case(*when, else_=local(spans[0][1])) if when else local(spans[0][1])
    return func.date_trunc("second", shifted)  # written as YYYY-MM-DD HH:MM:SS with DateStyle ISO


def _copy_statement(engine: Engine, query: Any) -> tuple[str, dict[str, Any]]:
    """``query`` inside ``COPY … TO STDOUT`` (the file in UTF-8 whatever the connection's encoding) and
    its parameters, which psycopg binds client-side."""
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    return f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, ENCODING 'UTF8')", dict(compiled.params)


def _export_postgres(
    engine: Engine, flt: LogFilter, zone: ZoneInfo, columns: tuple[ExportColumn, ...] = EXPORT_COLUMNS
) -> Iterator[bytes]:
    """Each batch is one ``COPY`` of rows (keyset on id, the first column) read to its end before it is
    passed on: no COPY stays open on the server between batches, so a client that goes away mid-export
    leaves nothing running (the next batch is simply never asked for)."""
    from psycopg import pq  # the postgres extra

    spans = _spans(engine, flt, zone)
    if spans is None:
        return
    size = EXPORT_BATCH * _POSTGRES_BATCHES
    base = _where(_with_accounts(select(*(_postgres_cell(c, spans) for c in columns))), flt)
    first_batch = _copy_statement(engine, base.order_by(col(ChatLog.id).desc()).limit(size))
    after = base.where(col(ChatLog.id) < bindparam("last_id", 0, Integer))
    next_batch = _copy_statement(engine, after.order_by(col(ChatLog.id).desc()).limit(size))
    last_id: int | None = None
    while True:
        sql, params = first_batch if last_id is None else next_batch
        with engine.connect() as connection:  # rolled back when it goes back to the pool
            driver = connection.connection.driver_connection
            assert driver is not None  # a live pooled connection
            try:
                with driver.cursor() as cursor:
                    cursor.execute("SELECT set_config('datestyle', 'ISO', true)")  # how times are written
                    # psycopg starts the COPY (binding the parameters); on an error while it is read,
                    # its Copy cancels it and reads it to its end
                    with cursor.copy(sql, params if last_id is None else {**params, "last_id": last_id}):
                        data, ends = copy_rows(driver)
            except BaseException:
                if driver.info.transaction_status == pq.TransactionStatus.ACTIVE:
                    connection.invalidate()  # a command still running: never back to the pool
                raise
        if not ends:
            return
        yield crlf(data, ends)
        oldest = ends[-2] if len(ends) > 1 else 0  # where the last row starts
        last_id = int(data[oldest : data.index(b",", oldest)])
