"""Reading the admin audit log: filters (time range, admin, action or action group) and pages."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import AuditLog
from services.audit import MAX_ADMIN_CHARS
from services.errors import InvalidInput
from services.log_queries import MAX_PAGE, MAX_PAGE_SIZE, parse_moment
from services.text import has_control_characters

# ``channel.update`` (one action) or ``channel`` (its group); the names are lower-case ASCII
ACTION_PATTERN = re.compile(r"[a-z][a-z_]{0,30}(\.[a-z][a-z_]{0,30})?")


@dataclass(frozen=True)
class AuditFilter:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    admin: str | None = None  # exact name
    action: str | None = None  # an action, or a group (no dot): every action of it


def _moment(field: str, text: str | None, zone: ZoneInfo, *, end: bool) -> datetime | None:
    if not text or not text.strip():
        return None
    try:
        return parse_moment(text, zone, end=end)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}：{exc.message}") from None


def parse_filter(
    *, start: str | None, end: str | None, admin: str | None, action: str | None, zone: ZoneInfo
) -> AuditFilter:
    """Validate raw filter values (API query or page form); the message of InvalidInput names the field."""
    start_at = _moment("start", start, zone, end=False)
    end_at = _moment("end", end, zone, end=True)
    if start_at and end_at and start_at >= end_at:
        raise InvalidInput("errors.end_after_start")
    admin_value = (admin or "").strip() or None
    if admin_value is not None and (
        len(admin_value) > MAX_ADMIN_CHARS or has_control_characters(admin_value)
    ):
        raise InvalidInput("errors.audit_admin", count=MAX_ADMIN_CHARS)
    action_value = (action or "").strip() or None
    if action_value is not None and not ACTION_PATTERN.fullmatch(action_value):
        raise InvalidInput("errors.audit_action")
    return AuditFilter(start_at, end_at, admin_value, action_value)


def _where(query: Any, flt: AuditFilter) -> Any:
    if flt.start is not None:
        query = query.where(col(AuditLog.created_at) >= flt.start)
    if flt.end is not None:
        query = query.where(col(AuditLog.created_at) < flt.end)
    if flt.admin is not None:
        query = query.where(AuditLog.admin == flt.admin)
    if flt.action is not None:
        if "." in flt.action:
            query = query.where(AuditLog.action == flt.action)
        else:  # a group: the pattern allows no LIKE wildcard but "_", which is escaped
            escaped = flt.action.replace("_", "\\_")
            query = query.where(col(AuditLog.action).like(f"{escaped}.%", escape="\\"))
    return query


def load_changes(text: str) -> dict[str, Any]:
    """The stored ``changes`` as an object ({} for anything else: a row is never unreadable)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class AuditPage:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def list_entries(*, session: Session, flt: AuditFilter, page: int, page_size: int) -> AuditPage:
    """Newest first; ``page_size`` is capped like the call log's."""
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput("errors.page_range_colon", high=MAX_PAGE)
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    total = session.exec(_where(select(func.count()).select_from(AuditLog), flt)).one()
    query = (
        _where(select(AuditLog), flt)
        .order_by(col(AuditLog.created_at).desc(), col(AuditLog.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = [
        {
            "id": row.id,
            "created_at": row.created_at,
            "admin": row.admin,
            "ip_address": row.ip_address,
            "action": row.action,
            "target": row.target,
            "changes": load_changes(row.changes),
        }
        for row in session.exec(query).all()
    ]
    return AuditPage(items=items, total=total, page=page, page_size=page_size)
