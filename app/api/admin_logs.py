"""/api/admin/logs, /api/admin/logs/export and /api/admin/stats (admin token required)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from app.api.deps import AdminUser, SessionDep, StateDep
from app.api.errors import request_language
from app.downloads import log_csv_response
from app.schemas import ChatLogPublic, ErrorBody, LogPageResponse, StatsResponse
from services import log_queries, stats
from services.log_queries import LogFilter

router = APIRouter(
    prefix="/admin",
    tags=["admin: logs and statistics"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)


def log_filter(
    state: StateDep,
    start: Annotated[
        str | None, Query(description="from (inclusive): 2026-11-24 or 2026-11-24T08:00, in TZ")
    ] = None,
    end: Annotated[str | None, Query(description="until: a date includes that whole day")] = None,
    user: Annotated[str | None, Query(description="email, user id, or 'guest'")] = None,
    ip: Annotated[str | None, Query(description="exact client IP")] = None,
    model: Annotated[str | None, Query(description="model id")] = None,
    status: Annotated[
        str | None, Query(description="ok, upstream_error, client_aborted, timeout or server_shutdown")
    ] = None,
    channel: Annotated[str | None, Query(description="channel id")] = None,
) -> LogFilter:
    return log_queries.parse_filter(
        start=start,
        end=end,
        user=user,
        ip=ip,
        model=model,
        status=status,
        channel=channel,
        zone=state.settings.zone,
    )


FilterDep = Annotated[LogFilter, Depends(log_filter)]


@router.get("/logs", response_model=LogPageResponse)
def list_logs(
    request: Request,
    _admin: AdminUser,
    session: SessionDep,
    flt: FilterDep,
    page: Annotated[int, Query(ge=1, le=log_queries.MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, description=f"capped at {log_queries.MAX_PAGE_SIZE}")] = 20,
    sort: Annotated[
        str | None,
        Query(
            description="time (default -time: newest first), duration or tokens; a leading - sorts descending"
        ),
    ] = None,
) -> LogPageResponse:
    result = log_queries.list_logs(
        session=session,
        flt=flt,
        page=page,
        page_size=page_size,
        sort=log_queries.check_log_sort(sort),
        language=request_language(request),
    )
    return LogPageResponse(
        items=[ChatLogPublic(**item) for item in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
        total_capped=result.total_capped,
    )


@router.get(
    "/logs/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with BOM"}},
)
def export_logs(request: Request, _admin: AdminUser, state: StateDep, flt: FilterDep) -> StreamingResponse:
    """The filtered calls as CSV; a guest and a deleted user are named in the request's language."""
    return log_csv_response(state, flt, request_language(request))


@router.get("/stats", response_model=StatsResponse)
def get_stats(
    request: Request,
    _admin: AdminUser,
    session: SessionDep,
    state: StateDep,
    start: Annotated[str | None, Query(description="first day (YYYY-MM-DD, in TZ); default: the end")] = None,
    end: Annotated[
        str | None,
        Query(description=f"last day, inclusive; default today; at most {stats.MAX_RANGE_DAYS} days"),
    ] = None,
) -> StatsResponse:
    zone, language = state.settings.zone, request_language(request)
    # no range: today, with the last 7 days' trend
    first, last = (None, None) if start is None and end is None else stats.parse_range(start, end, zone=zone)
    figures = stats.dashboard(
        session=session, zone=zone, start=first, end=last, caller_sums=state.caller_sums, language=language
    )
    return StatsResponse(**figures)
