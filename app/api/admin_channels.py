"""/api/admin/channels: channel CRUD and the connectivity test (admin token required)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from app.api.deps import AdminActor, AdminUser, RowId, SessionDep, StateDep
from app.api.errors import request_language
from app.models import ChannelCreate, ChannelPublic, ChannelUpdate
from app.schemas import ChannelListPage, ChannelTestResult, ErrorBody
from services import channel_list, channels
from services.channel_test import probe_channel

router = APIRouter(
    prefix="/admin/channels",
    tags=["admin: channels"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)


@router.get(
    "",
    response_model=list[ChannelPublic] | ChannelListPage,
    responses={422: {"model": ErrorBody}},
)
def list_channels(
    http_request: Request,
    _admin: AdminUser,
    session: SessionDep,
    state: StateDep,
    page: Annotated[int | None, Query(description="1-based page")] = None,
    page_size: Annotated[
        int | None, Query(description=f"1 to {channel_list.MAX_PAGE_SIZE} (default 20)")
    ] = None,
    q: Annotated[
        str | None, Query(description="a part of the name, a model id or the base URL (host)")
    ] = None,
    sort: Annotated[
        str | None,
        Query(description=f"one of {', '.join(channel_list.CHANNEL_SORTS)}; a leading - sorts descending"),
    ] = None,
    status: Annotated[str | None, Query(description="enabled, auto_paused or disabled")] = None,
) -> list[ChannelPublic] | ChannelListPage:
    """Without paging parameters: every channel (a plain list). With any of page, page_size, q, sort,
    status: ``{items, total, page, page_size}``, each item with ``calls_today``. ``last_error`` is in
    words in the request's language."""
    language = request_language(http_request)
    if page is None and page_size is None and q is None and sort is None and status is None:
        rows = channels.list_channels(session=session)
        return [channels.to_public(row, state.cipher, language) for row in rows]
    request = channel_list.channel_query(
        page=1 if page is None else page,
        page_size=20 if page_size is None else page_size,
        q=q,
        status=status,
        sort=sort or "id",
    )
    items, total = channel_list.list_page(
        session=session, request=request, cipher=state.cipher, zone=state.settings.zone, language=language
    )
    return ChannelListPage(items=items, total=total, page=request.page, page_size=request.page_size)


@router.post(
    "",
    response_model=ChannelPublic,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"model": ErrorBody}},
)
def create_channel(
    request: Request, body: ChannelCreate, actor: AdminActor, session: SessionDep, state: StateDep
) -> ChannelPublic:
    channel = state.directory.create(session=session, data=body, actor=actor)
    return channels.to_public(channel, state.cipher, request_language(request))


@router.put("/{channel_id}", response_model=ChannelPublic, responses={404: {"model": ErrorBody}})
def update_channel(
    request: Request,
    channel_id: RowId,
    body: ChannelUpdate,
    actor: AdminActor,
    session: SessionDep,
    state: StateDep,
) -> ChannelPublic:
    channel = state.directory.update(session=session, channel_id=channel_id, data=body, actor=actor)
    return channels.to_public(channel, state.cipher, request_language(request))


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": ErrorBody}})
def delete_channel(channel_id: RowId, actor: AdminActor, session: SessionDep, state: StateDep) -> Response:
    state.directory.delete(session=session, channel_id=channel_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{channel_id}/resume", response_model=ChannelPublic, responses={404: {"model": ErrorBody}})
def resume_channel(
    request: Request, channel_id: RowId, actor: AdminActor, session: SessionDep, state: StateDep
) -> ChannelPublic:
    """Resume an auto-paused channel by hand: it serves again at once, its failure count reset."""
    channel = state.directory.resume(session=session, channel_id=channel_id, actor=actor)
    return channels.to_public(channel, state.cipher, request_language(request))


@router.post("/{channel_id}/test", response_model=ChannelTestResult, responses={404: {"model": ErrorBody}})
async def test(
    request: Request, channel_id: RowId, actor: AdminActor, session: SessionDep, state: StateDep
) -> ChannelTestResult:
    """A test changes nothing (and is not audited) unless it passes on an auto-paused channel, which it
    resumes: that is ``channel.resume`` in the audit log."""
    channel = await run_in_threadpool(channels.get_channel, session=session, channel_id=channel_id)
    wait = state.settings.upstream_first_byte_timeout
    result = await probe_channel(
        channel=channel, cipher=state.cipher, client=state.http_client, wait_seconds=wait
    )
    if result.ok and channel.auto_paused:  # a passing test resumes an auto-paused channel
        await run_in_threadpool(state.health.resumed, channel_id, result.latency_ms, actor)
    return ChannelTestResult(
        ok=result.ok,
        latency_ms=result.latency_ms,
        status_code=result.status_code,
        error=result.error_text(request_language(request)),  # in the request's language
        stream_ok=result.stream_ok,
    )
