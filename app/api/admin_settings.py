"""/api/admin/config, /api/admin/blocked-ips and /api/admin/blocked-attempts (admin token required)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from app.api.deps import AdminActor, AdminUser, RowId, SessionDep, StateDep
from app.schemas import (
    BlockedAttemptPublic,
    BlockedIPCreate,
    BlockedIPPublic,
    ErrorBody,
    SystemConfigBody,
    SystemConfigUpdate,
)
from services import ip_block
from services.settings import read_settings

router = APIRouter(prefix="/admin", responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


@router.get("/config", response_model=SystemConfigBody, tags=["admin: settings"])
def get_config(_admin: AdminUser, session: SessionDep, state: StateDep) -> SystemConfigBody:
    current = read_settings(session=session, defaults=state.setting_defaults)
    return SystemConfigBody(**vars(current))


@router.put(
    "/config",
    response_model=SystemConfigBody,
    tags=["admin: settings"],
    responses={422: {"model": ErrorBody}},
)
def put_config(
    body: SystemConfigUpdate, actor: AdminActor, session: SessionDep, state: StateDep
) -> SystemConfigBody:
    changes = body.model_dump(exclude_none=True)
    current = state.system_settings.update(session=session, changes=changes, actor=actor)
    return SystemConfigBody(**vars(current))


@router.get("/blocked-ips", response_model=list[BlockedIPPublic], tags=["admin: IP block list"])
def list_blocked_ips(_admin: AdminUser, session: SessionDep) -> list[BlockedIPPublic]:
    return [
        BlockedIPPublic.model_validate(row, from_attributes=True)
        for row in ip_block.list_rules(session=session)
    ]


@router.post(
    "/blocked-ips",
    response_model=BlockedIPPublic,
    status_code=status.HTTP_201_CREATED,
    tags=["admin: IP block list"],
    responses={409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
def add_blocked_ip(
    body: BlockedIPCreate, actor: AdminActor, session: SessionDep, state: StateDep
) -> BlockedIPPublic:
    row = state.block_list.add(
        session=session,
        ip_address=body.ip_address,
        reason=body.reason,
        confirm_all=body.confirm_all,
        actor=actor,
    )
    return BlockedIPPublic.model_validate(row, from_attributes=True)


@router.delete(
    "/blocked-ips/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["admin: IP block list"],
    responses={404: {"model": ErrorBody}},
)
def delete_blocked_ip(rule_id: RowId, actor: AdminActor, session: SessionDep, state: StateDep) -> Response:
    state.block_list.remove(session=session, rule_id=rule_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/blocked-attempts", response_model=list[BlockedAttemptPublic], tags=["admin: IP block list"])
def list_blocked_attempts(
    _admin: AdminUser,
    session: SessionDep,
    state: StateDep,
    limit: int = Query(default=200, ge=1, le=1000, description="newest first"),
) -> list[BlockedAttemptPublic]:
    state.block_list.flush()  # include what arrived in the last second
    return [
        BlockedAttemptPublic.model_validate(row, from_attributes=True)
        for row in ip_block.list_attempts(session=session, limit=limit)
    ]
