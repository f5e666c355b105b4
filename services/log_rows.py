"""Inserting call-log rows: one DBAPI ``executemany`` of plain tuples per batch (the writer's hot loop)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, or_, update
from sqlalchemy.engine import Connection
from sqlmodel import col

from app.models import CallLogJournal, ChatLog, User
from services.call_record import CallRecord

_FIELDS = CallRecord.__slots__  # dataclasses.asdict() deep-copies and costs several times more per row
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
# the column names are CallRecord's fields, never input
_INSERT_SQL = "INSERT INTO chat_logs (" + ", ".join(_FIELDS) + ") VALUES ({marks})"  # noqa: S608


SQLITE_INSERT = _INSERT_SQL.format(marks=", ".join("?" * len(_FIELDS)))


def sqlite_row(c: CallRecord) -> tuple[object, ...]:
    """The row in ``_FIELDS`` order as SQLAlchemy stores it on SQLite: the time in UTC as
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (no offset), the flag as 0/1. One tuple, no per-column calls (a test
    compares the stored rows with SQLAlchemy's own insert)."""
    at = c.created_at  # calls are stamped in UTC; any other zone is converted first
    return (
        c.user_id,
        c.username,
        c.ip_address,
        c.channel_id,
        c.model_id,
        c.prompt_tokens,
        c.completion_tokens,
        (at if at.tzinfo is UTC else at.astimezone(UTC)).isoformat(" ", "microseconds")[:26],
        c.status,
        1 if c.tokens_estimated else 0,
        c.duration_ms,
        c.error,
        c.api_key_id,
        c.ttft_ms,
    )


def insert_rows(connection: Connection, batch: list[CallRecord]) -> None:
    """One DBAPI ``executemany`` of plain tuples: on SQLite built in one step, elsewhere each column
    passed through its type's bind processor.

    ``connection.execute(insert(ChatLog), dicts)`` does the same with SQLAlchemy's per-row parameter
    processing, which was most of the writer's time in benchmark 5.
    """
    dialect = connection.dialect
    if dialect.name == "sqlite":
        connection.exec_driver_sql(SQLITE_INSERT, [sqlite_row(call) for call in batch])
        return
    mark = _MARKS.get(dialect.paramstyle)
    if mark is None:
        connection.execute(insert(ChatLog), [{name: getattr(c, name) for name in _FIELDS} for c in batch])
        return
    columns = ChatLog.__table__.c  # type: ignore[attr-defined]
    processors = [
        (index, process)
        for index, name in enumerate(_FIELDS)
        if (process := columns[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    sql = _INSERT_SQL.format(marks=", ".join([mark] * len(_FIELDS)))
    rows: list[tuple[object, ...]] = []
    for call in batch:
        values = [getattr(call, name) for name in _FIELDS]
        for index, process in processors:
            values[index] = process(values[index])
        rows.append(tuple(values))
    connection.exec_driver_sql(sql, rows)


# built once: a statement built per batch costs more in SQLAlchemy's handling than its execution
_TOUCH_USERS = (
    update(User)
    .where(
        col(User.id) == bindparam("user_id"),
        or_(col(User.last_active_at).is_(None), col(User.last_active_at) < bindparam("at")),
    )
    .values(last_active_at=bindparam("at"))
)


def touch_users(connection: Connection, batch: list[CallRecord]) -> None:
    """``users.last_active_at``: the newest call of each user in the batch (never moved back, so a
    journal replayed late changes nothing). Guests' calls cost nothing here."""
    newest: dict[int, datetime] = {}
    for call in batch:
        user_id = call.user_id
        if user_id is not None and (user_id not in newest or newest[user_id] < call.created_at):
            newest[user_id] = call.created_at
    if newest:
        # in id order: two writers (replicas) touching the same users lock them in one order
        connection.execute(_TOUCH_USERS, [{"user_id": uid, "at": at} for uid, at in sorted(newest.items())])


_MARK_SQL = "UPDATE call_log_journals SET seq = {m}, updated_at = {m} WHERE journal_id = {m} AND seq = {m}"


def move_mark(connection: Connection, journal_id: str, previous: int, last: int, now: datetime) -> bool:
    """Move a journal's mark from ``previous`` to ``last``; False when it was not at ``previous``.

    Plain driver SQL: built with ``update()`` each batch, SQLAlchemy's statement handling cost as much
    as the whole rollup update (benchmark 5's commit-per-row writer)."""
    dialect = connection.dialect
    mark = _MARKS.get(dialect.paramstyle, "?")
    moment = CallLogJournal.__table__.c.updated_at.type  # type: ignore[attr-defined]
    process = moment.dialect_impl(dialect).bind_processor(dialect)
    at: object = process(now) if process is not None else now
    result = connection.exec_driver_sql(_MARK_SQL.format(m=mark), (last, at, journal_id, previous))
    return result.rowcount == 1
