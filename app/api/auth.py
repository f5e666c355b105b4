"""/api/auth: registration, user login, admin login, the current user.

Handlers are plain functions so FastAPI runs them (and bcrypt) in its thread pool, off the event loop.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from app.api.deps import ClientIP, CurrentUser, SessionDep, StateDep
from app.schemas import AdminCredentials, Credentials, ErrorBody, MessageResponse, TokenResponse, UserPublic
from services import auth
from services.errors import AuthenticationFailed

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageResponse,
    responses={409: {"model": ErrorBody, "description": "email already registered"}},
)
def register(body: Credentials, session: SessionDep) -> MessageResponse:
    auth.register_user(session=session, email=body.email, password=body.password)
    return MessageResponse(message="注册成功")


@router.post(
    "/login", response_model=TokenResponse, responses={401: {"model": ErrorBody}, 429: {"model": ErrorBody}}
)
async def login(body: Credentials, session: SessionDep, state: StateDep, ip: ClientIP) -> TokenResponse:
    await state.limiter.check_login_allowed(kind="user", account=body.email, ip=ip)
    try:
        user = await run_in_threadpool(
            auth.authenticate_user, session=session, email=body.email, password=body.password
        )
    except AuthenticationFailed:
        await state.limiter.record_login_failure(kind="user", account=body.email, ip=ip)
        raise
    lifetime = timedelta(hours=state.settings.user_token_hours)
    token = auth.issue_user_token(user, secret=state.secret_key, lifetime=lifetime)
    return TokenResponse(access_token=token, expires_in=int(lifetime.total_seconds()))


@router.post(
    "/admin/login",
    response_model=TokenResponse,
    responses={401: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)
async def admin_login(
    body: AdminCredentials, session: SessionDep, state: StateDep, ip: ClientIP
) -> TokenResponse:
    await state.limiter.check_login_allowed(kind="admin", account=body.username, ip=ip)
    try:
        admin = await run_in_threadpool(
            auth.authenticate_admin, session=session, username=body.username, password=body.password
        )
    except AuthenticationFailed:
        await state.limiter.record_login_failure(kind="admin", account=body.username, ip=ip)
        raise
    token = auth.issue_admin_token(admin, secret=state.secret_key)
    return TokenResponse(access_token=token, expires_in=int(auth.ADMIN_TOKEN_LIFETIME.total_seconds()))


@router.get("/me", response_model=UserPublic, responses={401: {"model": ErrorBody}})
def me(user: CurrentUser) -> UserPublic:
    assert user.id is not None
    return UserPublic(id=user.id, email=user.email)
