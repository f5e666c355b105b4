"""/api/auth: registration, user login, admin login, the current user."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, status

from app.api.deps import ClientIP, CurrentUser, StateDep
from app.api.errors import request_language
from app.schemas import AdminCredentials, Credentials, ErrorBody, MessageResponse, TokenResponse, UserPublic
from app.schemas_keys import PasswordChange
from services import auth
from services import login as login_flow
from services.i18n import translate

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageResponse,
    responses={
        403: {"model": ErrorBody, "description": "registration_closed: registration is switched off"},
        409: {"model": ErrorBody, "description": "email already registered"},
        429: {"model": ErrorBody, "description": "too many registrations from this IP in the last hour"},
    },
)
async def register(body: Credentials, state: StateDep, ip: ClientIP, request: Request) -> MessageResponse:
    await login_flow.register_user(
        engine=state.engine,
        throttle=state.throttle,
        email=body.email,
        password=body.password,
        ip=ip,
        rules=await state.system_settings.for_decision(),
    )
    return MessageResponse(message=translate("errors.registered", request_language(request)))


@router.post(
    "/login", response_model=TokenResponse, responses={401: {"model": ErrorBody}, 429: {"model": ErrorBody}}
)
async def login(body: Credentials, state: StateDep, ip: ClientIP) -> TokenResponse:
    lifetime = timedelta(hours=state.settings.user_token_hours)
    _user, token = await login_flow.sign_in_user(
        engine=state.engine,
        throttle=state.throttle,
        email=body.email,
        password=body.password,
        ip=ip,
        secret=state.secret_key,
        lifetime=lifetime,
    )
    return TokenResponse(access_token=token, expires_in=int(lifetime.total_seconds()))


@router.post(
    "/admin/login",
    response_model=TokenResponse,
    responses={401: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)
async def admin_login(body: AdminCredentials, state: StateDep, ip: ClientIP) -> TokenResponse:
    _admin, token = await login_flow.sign_in_admin(
        engine=state.engine,
        throttle=state.throttle,
        username=body.username,
        password=body.password,
        ip=ip,
        secret=state.secret_key,
    )
    return TokenResponse(access_token=token, expires_in=int(auth.ADMIN_TOKEN_LIFETIME.total_seconds()))


@router.get("/me", response_model=UserPublic, responses={401: {"model": ErrorBody}})
def me(user: CurrentUser) -> UserPublic:
    return UserPublic(id=user.id, email=user.email)


@router.post(
    "/password",
    response_model=TokenResponse,
    responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)
async def change_password(
    body: PasswordChange, user: CurrentUser, state: StateDep, ip: ClientIP
) -> TokenResponse:
    """Change one's own password (the old one required). Every other session ends (their tokens are
    refused from now on, on every instance); the answer is a fresh token for this one. Personal API
    keys stay valid."""
    lifetime = timedelta(hours=state.settings.user_token_hours)
    token = await login_flow.change_password(
        engine=state.engine,
        throttle=state.throttle,
        identity=state.identity,
        user_id=user.id,
        email=user.email,
        old_password=body.old_password,
        new_password=body.new_password,
        ip=ip,
        secret=state.secret_key,
        lifetime=lifetime,
    )
    return TokenResponse(access_token=token, expires_in=int(lifetime.total_seconds()))
