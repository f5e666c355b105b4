"""/api/admin/channels: channel CRUD and the connectivity test (admin token required)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool

from app.api.deps import AdminActor, AdminUser, RowId, SessionDep, StateDep
from app.models import ChannelCreate, ChannelPublic, ChannelUpdate
from app.schemas import ChannelTestResult, ErrorBody
from services import channels
from services.channel_test import probe_channel

router = APIRouter(
    prefix="/admin/channels",
    tags=["admin: channels"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)


@router.get("", response_model=list[ChannelPublic])
def list_channels(_admin: AdminUser, session: SessionDep, state: StateDep) -> list[ChannelPublic]:
    return [channels.to_public(row, state.cipher) for row in channels.list_channels(session=session)]


@router.post(
    "",
    response_model=ChannelPublic,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"model": ErrorBody}},
)
def create_channel(
    body: ChannelCreate, actor: AdminActor, session: SessionDep, state: StateDep
) -> ChannelPublic:
    channel = state.directory.create(session=session, data=body, actor=actor)
    return channels.to_public(channel, state.cipher)


@router.put("/{channel_id}", response_model=ChannelPublic, responses={404: {"model": ErrorBody}})
def update_channel(
    channel_id: RowId, body: ChannelUpdate, actor: AdminActor, session: SessionDep, state: StateDep
) -> ChannelPublic:
    channel = state.directory.update(session=session, channel_id=channel_id, data=body, actor=actor)
    return channels.to_public(channel, state.cipher)


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": ErrorBody}})
def delete_channel(channel_id: RowId, actor: AdminActor, session: SessionDep, state: StateDep) -> Response:
    state.directory.delete(session=session, channel_id=channel_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{channel_id}/resume", response_model=ChannelPublic, responses={404: {"model": ErrorBody}})
def resume_channel(
    channel_id: RowId, actor: AdminActor, session: SessionDep, state: StateDep
) -> ChannelPublic:
    """Resume an auto-paused channel by hand: it serves again at once, its failure count reset."""
    channel = state.directory.resume(session=session, channel_id=channel_id, actor=actor)
    return channels.to_public(channel, state.cipher)


@router.post("/{channel_id}/test", response_model=ChannelTestResult, responses={404: {"model": ErrorBody}})
async def test(
    channel_id: RowId, actor: AdminActor, session: SessionDep, state: StateDep
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
    return ChannelTestResult.model_validate(result)
