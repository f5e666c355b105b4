"""Dependencies shared by the routers, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app.api.observe import note_user
from app.models import Admin
from app.state import AppState
from services import auth
from services.audit import Actor
from services.client_ip import client_ip
from services.errors import AuthenticationFailed, AuthenticationRequired, PermissionDenied
from services.identity import Identity
from services.security import decode_token

_bearer = HTTPBearer(
    auto_error=False,
    description="JWT from /api/auth/login or /api/auth/admin/login, or a personal API key (sk-…)",
)


async def get_state(request: Request) -> AppState:  # async: no thread-pool hop on the hot path
    state: AppState = request.app.state.pyaichat
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def user_for_token(state: AppState, token: str | None, ip: str) -> Identity | None:
    """None for a guest; the user of a login token or a personal key, decided from the identity cache
    (no database round trip); an invalid credential is refused (``services.identity``)."""
    if token is None:
        return None
    return await state.identity.authenticate(token, ip=ip)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (any other scheme is no token, as HTTPBearer)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def get_optional_user(request: Request, state: StateDep, credentials: BearerDep) -> Identity | None:
    token = credentials.credentials if credentials else None
    user = await user_for_token(state, token, client_ip(request.scope))
    if user is not None:
        note_user(request.scope, user.id)
    return user


async def get_current_user(user: Annotated[Identity | None, Depends(get_optional_user)]) -> Identity:
    if user is None:
        raise AuthenticationFailed()
    return user


def get_admin(session: SessionDep, state: StateDep, credentials: BearerDep) -> Admin:
    if credentials is None:
        raise AuthenticationFailed("errors.admin_required")
    try:
        return auth.admin_from_token(session=session, token=credentials.credentials, secret=state.secret_key)
    except AuthenticationFailed:
        try:  # a valid user token is a known caller without the right to be here
            decode_token(credentials.credentials, secret=state.secret_key, kind="user")
        except AuthenticationFailed:
            raise AuthenticationFailed("errors.admin_required") from None
        raise PermissionDenied("errors.admin_only") from None


async def get_client_ip(request: Request) -> str:
    return client_ip(request.scope)


ClientIP = Annotated[str, Depends(get_client_ip)]

# a row id in a path: the databases' 64-bit integer keys (larger numbers overflow SQLite's driver)
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the row's id")]
OptionalUser = Annotated[Identity | None, Depends(get_optional_user)]
CurrentUser = Annotated[Identity, Depends(get_current_user)]
AdminUser = Annotated[Admin, Depends(get_admin)]


def get_admin_actor(admin: AdminUser, ip: ClientIP) -> Actor:
    """The admin and client IP that an admin change is recorded under (services/audit.py)."""
    return Actor(admin=admin.username, ip_address=ip)


# the admin check of a route that changes something: pass it on to the service as ``actor=``
AdminActor = Annotated[Actor, Depends(get_admin_actor)]


async def get_chat_user(state: StateDep, user: OptionalUser) -> Identity | None:
    """The caller of a model list: a user, or a guest while guests are allowed (the setting as it is
    now, on every instance); the chat call itself is checked in ``services.chat``."""
    if user is None and not (await state.system_settings.for_decision()).guest_enabled:
        raise AuthenticationRequired()
    return user


ChatUser = Annotated[Identity | None, Depends(get_chat_user)]
