"""Reading the call log: filters, server-side pages, and a streamed CSV export in constant memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models import Channel, ChatLog
from services.client_ip import parse_ip
from services.errors import InvalidInput

MAX_PAGE_SIZE = 200
EXPORT_BATCH = 2_000
STATUSES = ("ok", "upstream_error", "client_aborted", "timeout")
CSV_HEADER = [
    "id",
    "time",
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
        else:
            query = query.where(ChatLog.username == flt.user)
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


def export_csv(*, engine: Engine, flt: LogFilter, zone: ZoneInfo) -> Iterator[bytes]:
    """The filtered rows as RFC 4180 CSV (UTF-8 with BOM), newest first, read in batches (keyset on id)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    last_id: int | None = None
    while True:
        query = _where(
            select(
                ChatLog.id,
                ChatLog.created_at,
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
            ).join(Channel, col(Channel.id) == col(ChatLog.channel_id), isouter=True),
            flt,
        )
        if last_id is not None:
            query = query.where(col(ChatLog.id) < last_id)
        with Session(engine) as session:
            rows = session.exec(query.order_by(col(ChatLog.id).desc()).limit(EXPORT_BATCH)).all()
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow(
                [
                    row[0],
                    row[1].astimezone(zone).isoformat(timespec="seconds"),
                    neutralize(row[2]),
                    neutralize(row[3] or "访客"),
                    neutralize(row[4]),
                    "" if row[5] is None else row[5],
                    neutralize(row[6]),
                    row[7],
                    "" if row[8] is None else row[8],
                    "" if row[9] is None else row[9],
                    "yes" if row[10] else "no",
                    "" if row[11] is None else row[11],
                ]
            )
        yield buffer.getvalue().encode()
        last_id = rows[-1][0]
