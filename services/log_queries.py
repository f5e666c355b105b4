"""Reading the call log: filters and server-side pages (the CSV export is services/log_export.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal_column
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
STATUSES = ("ok", "upstream_error", "client_aborted", "timeout", "server_shutdown")
GUEST_KEY = "log_queries.guest"  # the user column of a guest's call
DELETED_USER_KEY = "log_queries.deleted_user"  # … of a call whose account the admin deleted since
GUEST_LABEL = translate(GUEST_KEY)  # in the fallback language (Chinese): 访客
DELETED_USER_LABEL = translate(DELETED_USER_KEY)  # 已删除用户


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
