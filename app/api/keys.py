"""/api/keys (a user's own personal API keys, with a login token or a key) and /api/admin/keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from app.api.deps import AdminActor, AdminUser, CurrentUser, RowId, SessionDep, StateDep
from app.models import ApiKey
from app.schemas import ErrorBody
from app.schemas_keys import AdminApiKey, AdminApiKeyPage, ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from app.state import AppState
from services import api_keys
from services.audit import Actor
from services.errors import NotFound

router = APIRouter(prefix="/keys", tags=["personal API keys"], responses={401: {"model": ErrorBody}})
admin_router = APIRouter(
    prefix="/admin/keys",
    tags=["admin: personal API keys"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)
KEY_NOT_FOUND = "errors.key_not_found"


def _public(key: ApiKey) -> ApiKeyPublic:
    assert key.id is not None
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses={409: {"model": ErrorBody, "description": "already 20 active keys"}},
)
def create_key(body: ApiKeyCreate, user: CurrentUser, session: SessionDep, state: StateDep) -> ApiKeyCreated:
    """A new key for the caller; ``key`` is in this answer only (it is stored as a SHA-256 hash)."""
    row, plain = api_keys.create_key(
        session=session, user_id=user.id, name=body.name, expires_at=body.expires_at
    )
    state.identity.keys_changed()
    assert row.id is not None
    return ApiKeyCreated(
        id=row.id,
        name=row.name,
        key=plain,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


@router.get("", response_model=list[ApiKeyPublic])
def list_keys(user: CurrentUser, session: SessionDep) -> list[ApiKeyPublic]:
    """The caller's keys that are not revoked, newest first."""
    return [_public(key) for key in api_keys.list_keys(session=session, user_id=user.id)]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": ErrorBody}})
async def revoke_key(key_id: RowId, user: CurrentUser, state: StateDep) -> Response:
    """Revoke one of the caller's keys (another user's key is not found, as an unknown one)."""
    await run_in_threadpool(_revoke, state, key_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _revoke(state: AppState, key_id: int, user_id: int | None, actor: Actor | None = None) -> None:
    with Session(state.engine) as session:
        if not api_keys.revoke_key(session=session, key_id=key_id, user_id=user_id, actor=actor):
            raise NotFound(KEY_NOT_FOUND)
    state.identity.keys_changed()


@admin_router.get("", response_model=AdminApiKeyPage)
def admin_list_keys(
    _admin: AdminUser,
    session: SessionDep,
    user_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="one user's keys")] = None,
    include_revoked: bool = False,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AdminApiKeyPage:
    """Every user's keys (or one user's), newest first."""
    rows, total = api_keys.admin_list_keys(
        session=session, user_id=user_id, page=page, page_size=page_size, include_revoked=include_revoked
    )
    items = [
        AdminApiKey(**_public(key).model_dump(), user_id=key.user_id, email=email, revoked_at=key.revoked_at)
        for key, email in rows
    ]
    return AdminApiKeyPage(items=items, total=total, page=page, page_size=page_size)


@admin_router.delete(
    "/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": ErrorBody}}
)
async def admin_revoke_key(key_id: RowId, actor: AdminActor, state: StateDep) -> Response:
    await run_in_threadpool(_revoke, state, key_id, None, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
