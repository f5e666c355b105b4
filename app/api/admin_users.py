"""/api/admin/users: the user list, create, disable / enable and own RPM, temporary password, delete
(admin token required). The rules are ``services.users``'."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from app.api.deps import AdminActor, AdminUser, RowId, SessionDep, StateDep
from app.schemas import (
    AdminPasswordReset,
    AdminUserPage,
    AdminUserPublic,
    AdminUserUpdate,
    Credentials,
    ErrorBody,
)
from services import users
from services.users import KEEP, UserSort

router = APIRouter(
    prefix="/admin/users",
    tags=["admin: users"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no such user"}}


@router.get("", response_model=AdminUserPage)
def list_users(
    _admin: AdminUser,
    session: SessionDep,
    q: Annotated[
        str | None, Query(max_length=users.MAX_QUERY_CHARS, description="part of the e-mail")
    ] = None,
    page: Annotated[int, Query(ge=1, le=users.MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=users.MAX_PAGE_SIZE)] = 20,
    sort: Annotated[
        UserSort, Query(description="created or last_active; a leading - sorts descending (newest first)")
    ] = users.DEFAULT_SORT,
) -> AdminUserPage:
    result = users.list_users(session=session, q=q, page=page, page_size=page_size, sort=sort)
    return AdminUserPage(
        items=[AdminUserPublic.model_validate(row) for row in result.items],
        total=result.total,
        page=result.page,
        page_size=result.page_size,
    )


@router.post(
    "",
    response_model=AdminUserPublic,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorBody, "description": "email already registered"}},
)
def create_user(
    body: Credentials, actor: AdminActor, session: SessionDep, state: StateDep
) -> AdminUserPublic:
    """The registration's rules; works while registration is closed."""
    row = state.users.create(session=session, email=body.email, password=body.password, actor=actor)
    return AdminUserPublic.model_validate(row)


@router.patch("/{user_id}", response_model=AdminUserPublic, responses=NOT_FOUND)
def update_user(
    user_id: RowId, body: AdminUserUpdate, actor: AdminActor, session: SessionDep, state: StateDep
) -> AdminUserPublic:
    """``disabled: true`` refuses the user's sign-ins and ends their sessions; ``rpm_limit: null`` is the
    global ``user_rpm`` again. A field left out keeps its value."""
    row = state.users.update(
        session=session,
        user_id=user_id,
        disabled=body.disabled,
        rpm_limit=body.rpm_limit if "rpm_limit" in body.model_fields_set else KEEP,
        actor=actor,
    )
    return AdminUserPublic.model_validate(row)


@router.post("/{user_id}/password", response_model=AdminUserPublic, responses=NOT_FOUND)
def reset_password(
    user_id: RowId, body: AdminPasswordReset, actor: AdminActor, session: SessionDep, state: StateDep
) -> AdminUserPublic:
    """Sets a temporary password (the registration's rules); the user's older tokens stop working."""
    row = state.users.set_password(session=session, user_id=user_id, password=body.password, actor=actor)
    return AdminUserPublic.model_validate(row)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_user(user_id: RowId, actor: AdminActor, session: SessionDep, state: StateDep) -> Response:
    """The account goes; its call-log rows stay (shown as 已删除用户)."""
    state.users.delete(session=session, user_id=user_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
