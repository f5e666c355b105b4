"""/api/admin/audit: the admin audit log, filtered and paged (admin token required)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AdminUser, SessionDep, StateDep
from app.schemas import AuditEntryPublic, AuditPageResponse, ErrorBody
from services import audit_queries
from services.log_queries import MAX_PAGE, MAX_PAGE_SIZE

router = APIRouter(
    prefix="/admin",
    tags=["admin: audit log"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)


@router.get("/audit", response_model=AuditPageResponse)
def list_audit(
    _admin: AdminUser,
    session: SessionDep,
    state: StateDep,
    start: Annotated[
        str | None, Query(description="from (inclusive): 2026-11-24 or 2026-11-24T08:00, in TZ")
    ] = None,
    end: Annotated[str | None, Query(description="until: a date includes that whole day")] = None,
    admin: Annotated[str | None, Query(description="the admin's name (exact)")] = None,
    action: Annotated[
        str | None, Query(description="an action (channel.update) or a group (channel: every channel.*)")
    ] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, description=f"capped at {MAX_PAGE_SIZE}")] = 20,
) -> AuditPageResponse:
    """Newest first. ``changes`` names each changed field with its old and new value; a secret (API key,
    proxy, header value, password) only as "set", "changed" or "removed"."""
    flt = audit_queries.parse_filter(
        start=start, end=end, admin=admin, action=action, zone=state.settings.zone
    )
    result = audit_queries.list_entries(session=session, flt=flt, page=page, page_size=page_size)
    return AuditPageResponse(
        items=[AuditEntryPublic(**item) for item in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
    )
