"""The admin's paged list of channels: search, filter by status, sort, and each channel's calls today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, or_
from sqlmodel import Session, col, select

from app.models import Channel, ChannelListItem, ChannelStatus, ChatLog
from services.channels import to_public
from services.errors import InvalidInput
from services.i18n import FALLBACK
from services.security import KeyCipher
from services.text import has_control_characters

MAX_PAGE_SIZE = 200
MAX_PAGE = 10_000_000  # far past any real list; beyond it an offset means nothing (and could overflow)
MAX_QUERY_CHARS = 200
# a sort key is a column name, ``-`` in front for descending; ``status`` orders enabled, auto_paused, disabled
CHANNEL_SORTS: dict[str, Any] = {
    "id": col(Channel.id),
    "name": col(Channel.name),
    "priority": col(Channel.priority),
    "weight": col(Channel.weight),
    "rpm_limit": col(Channel.rpm_limit),
    "latency_ms": col(Channel.latency_ms),
    "consecutive_failures": col(Channel.consecutive_failures),
    "last_success_at": col(Channel.last_success_at),
    "last_error_at": col(Channel.last_error_at),
    "created_at": col(Channel.created_at),
    "updated_at": col(Channel.updated_at),
    "status": None,  # derived from is_enabled and auto_paused
}


@dataclass(frozen=True)
class ChannelQuery:
    """A validated request for one page of channels."""

    page: int = 1
    page_size: int = 20
    q: str | None = None  # a part of the name, of a model id or of the base URL (e.g. its host)
    status: ChannelStatus | None = None
    sort: str = "id"


def channel_query(
    *, page: int = 1, page_size: int = 20, q: str | None = None, status: str | None = None, sort: str = "id"
) -> ChannelQuery:
    """Check the list parameters; raises InvalidInput (422) naming the parameter."""
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput("errors.page_range", high=MAX_PAGE)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput("errors.page_size_range", high=MAX_PAGE_SIZE)
    text = (q or "").strip() or None
    if text is not None and (len(text) > MAX_QUERY_CHARS or has_control_characters(text)):
        raise InvalidInput("errors.channel_q", count=MAX_QUERY_CHARS)
    if status is not None and status not in ChannelStatus.__members__:
        raise InvalidInput("errors.status_one_of", choices=", ".join(ChannelStatus.__members__))
    if sort.removeprefix("-") not in CHANNEL_SORTS:
        raise InvalidInput("errors.sort_one_of_desc", choices=", ".join(CHANNEL_SORTS))
    return ChannelQuery(page, page_size, text, ChannelStatus(status) if status else None, sort)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(query: Any, request: ChannelQuery) -> Any:
    if request.q is not None:
        pattern = _like(request.q)
        query = query.where(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (
                        col(Channel.name),
                        col(Channel.models),
                        col(Channel.model_id),
                        col(Channel.base_url),
                    )
                )
            )
        )
    if request.status is ChannelStatus.disabled:
        query = query.where(col(Channel.is_enabled).is_(False))
    elif request.status is ChannelStatus.auto_paused:
        query = query.where(col(Channel.is_enabled).is_(True), col(Channel.auto_paused).is_(True))
    elif request.status is ChannelStatus.enabled:
        query = query.where(col(Channel.is_enabled).is_(True), col(Channel.auto_paused).is_(False))
    return query


def _order(sort: str) -> list[Any]:
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    if key == "status":  # enabled, auto_paused, disabled (or the reverse)
        rank = case((col(Channel.is_enabled).is_(False), 2), (col(Channel.auto_paused).is_(True), 1), else_=0)
        columns = [rank]
    else:
        columns = [CHANNEL_SORTS[key]]
    ident = col(Channel.id)
    if descending:
        return [*(c.desc() for c in columns), ident.desc()]
    return [*(c.asc() for c in columns), ident.asc()]


@dataclass(frozen=True)
class ChannelPage:
    items: list[Channel]
    total: int
    page: int
    page_size: int


def page_channels(*, session: Session, request: ChannelQuery) -> ChannelPage:
    """One page of channels matching the search and status, in the asked order (id breaks ties)."""
    total = session.exec(_filtered(select(func.count()).select_from(Channel), request)).one()
    query = (
        _filtered(select(Channel), request)
        .order_by(*_order(request.sort))
        .offset((request.page - 1) * request.page_size)
        .limit(request.page_size)
    )
    return ChannelPage(list(session.exec(query).all()), total, request.page, request.page_size)


def calls_today(*, session: Session, channel_ids: list[int], since: datetime) -> dict[int, int]:
    """Call-log rows per channel since ``since`` (the local midnight), for the channels of one page."""
    if not channel_ids:
        return {}
    query = (
        select(ChatLog.channel_id, func.count())
        .where(col(ChatLog.created_at) >= since, col(ChatLog.channel_id).in_(channel_ids))
        .group_by(col(ChatLog.channel_id))
    )
    return {int(channel_id): int(count) for channel_id, count in session.exec(query).all() if channel_id}


def list_page(
    *,
    session: Session,
    request: ChannelQuery,
    cipher: KeyCipher,
    zone: ZoneInfo,
    now: datetime | None = None,
    language: str = FALLBACK,
) -> tuple[list[ChannelListItem], int]:
    """One page as the admin sees it (keys masked, calls today, words in ``language``) and the number of
    matching channels."""
    found = page_channels(session=session, request=request)
    local = (now or datetime.now(UTC)).astimezone(zone)
    midnight = datetime.combine(local.date(), time.min, tzinfo=zone)
    ids = [row.id for row in found.items if row.id is not None]
    calls = calls_today(session=session, channel_ids=ids, since=midnight)
    items = [
        ChannelListItem(
            **to_public(row, cipher, language).model_dump(), calls_today=calls.get(row.id or 0, 0)
        )
        for row in found.items
    ]
    return items, found.total
